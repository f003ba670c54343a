"""``lakota ui``: serve an application on a free loopback port and open it in a browser.

```python
from lakota.pod import POD
from lakota.server import build_app
from lakota.web.launch import run_local
app = build_app({"/": POD.from_uri("demo-repo")}, read_only=True)
run_local(app, "/ui/repo?repo=%2F")  # blocks until Ctrl-C
```
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable

__all__ = ["run_local"]


def run_local(app: Callable, page: str, open_browser: bool = True) -> None:
    """Serve `app` on 127.0.0.1 (a port the system picks) and open `page` once it answers."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{page}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    print(f"Web interface at {url} (read-only; Ctrl-C to stop)", file=sys.stderr, flush=True)
    if open_browser:
        threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
    server.run(sockets=[sock])


def _open_when_started(server: object, url: str) -> None:
    deadline = time.monotonic() + 30
    while not getattr(server, "started", False) and time.monotonic() < deadline:
        time.sleep(0.05)
    webbrowser.open(url)
