"""The web interface of ``lakota serve``: browse, plot, table and time travel in a browser.

```python
from lakota.pod import POD
from lakota.web import web_routes
routes = web_routes({"prices": POD.from_uri("memory://")}, "/ui", token=None)
```

`web_routes` gives the routes `lakota.server.build_app` mounts at ``BASE/ui``: the pages
(Jinja2 templates), their JSON routes and the static files (with a vendored uPlot), all
read-only. `docs/web.md` describes them. Modules: `views` (routes), `data` (the queries),
`m4` (downsampling for the chart), `session` (login cookie), `launch` (``lakota ui``).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route

from lakota.pod import POD

__all__ = ["web_routes"]


def web_routes(repos: Mapping[str, POD], mount: str, token: str | None) -> list[BaseRoute]:
    """Routes serving the interface for `repos` (name → POD) at the URL path `mount`."""
    from lakota.web.views import web_app

    async def to_home(request: object) -> RedirectResponse:
        return RedirectResponse(f"{mount}/", 307)

    return [Route(mount, to_home, methods=["GET"]), Mount(mount, app=web_app(repos, mount, token))]
