"""``lakota ui``: serve an application on a free loopback port and open it in a browser.

```python
from lakota.pod import POD
from lakota.server import Policy, build_app
from lakota.web.launch import run_local
app = build_app({"/": POD.from_uri("demo-repo")}, policy=Policy(read_only=True))
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
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}{page}"
    guarded = LoopbackHostOnly(app, port)
    server = uvicorn.Server(uvicorn.Config(guarded, log_level="warning"))
    print(f"Web interface at {url} (read-only; Ctrl-C to stop)", file=sys.stderr, flush=True)
    if open_browser:
        threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
    server.run(sockets=[sock])


class LoopbackHostOnly:
    """ASGI middleware: refuse requests whose Host is not this machine (DNS rebinding).

    Without a token, a page of another site could otherwise point its own host name at
    127.0.0.1 and read the repository through the visitor's browser.
    """

    def __init__(self, app: Callable, port: int) -> None:
        self.app = app
        self.hosts = {f"{name}:{port}".encode() for name in ("127.0.0.1", "localhost")}

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"")
            if host not in self.hosts:
                from starlette.responses import PlainTextResponse

                await PlainTextResponse("Unknown Host", 421)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _open_when_started(server: object, url: str) -> None:
    deadline = time.monotonic() + 30
    while not getattr(server, "started", False) and time.monotonic() < deadline:
        time.sleep(0.05)
    webbrowser.open(url)
