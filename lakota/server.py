"""``lakota serve``: share repositories over HTTP with the POD protocol of SPEC §5.

Each repository is mounted at ``BASE/NAME`` and answers ``GET|POST BASE/NAME/<action>``
for the actions ``ls``, ``read``, ``write``, ``rm``, ``mv`` and ``walk``, with the JSON
shapes of lakota 0.7.1 so that its clients keep working. One more action, ``raw``,
returns a file's bytes as they are (``application/octet-stream``) instead of base64 in
JSON; `lakota.pod.http.HttpPOD` uses it. Compared with 0.7.1 the server also:

* requires ``Authorization: Bearer <token>`` on every request when a token is set
  (401 otherwise), compared in constant time;
* refuses changes (``write``, ``rm``, ``mv``) with 403 when read-only;
* rejects paths that leave the repository (absolute, ``..`` above the root) with 400:
  every POD method checks its paths with `lakota.pod.base.split_path`;
* answers 404 with the real path (``Path "a/b" not found``), 400 for a missing
  parameter, and 409 with an ``X-Lakota-Errno`` header for other storage errors
  (not empty, not a folder...);
* serves a read-only web interface at ``BASE/ui`` (`lakota.web`, docs/web.md).

```python
app = build_app({"prices": POD.from_uri("/srv/prices")}, token="s3cr3t")
serve(["prices /srv/prices"], "http://127.0.0.1:8080", token="s3cr3t")  # blocks
```
"""

from __future__ import annotations

import base64
import hmac
import html
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from lakota.errors import UnsafePathError
from lakota.pod import POD
from lakota.web import web_routes

__all__ = ["build_app", "parse_repo_map", "parse_web_uri", "serve"]

CHANGES = frozenset({"write", "rm", "mv"})


class MissingParameter(ValueError):
    """A required query parameter is absent (answered with 400)."""


def parse_repo_map(spec: str) -> tuple[str, list[str]]:
    """``"NAME URI [URI…]"`` → ``(NAME, [URI, …])``; several URIs make a cache chain."""
    try:
        words = shlex.split(spec)
    except ValueError as exc:
        raise ValueError(f"Cannot parse repository map {spec!r}: {exc}") from None
    if len(words) < 2:
        raise ValueError(f'Repository map {spec!r} must look like "NAME URI [URI...]"')
    return words[0], words[1:]


def parse_web_uri(web_uri: str) -> tuple[str, int, str]:
    """``http://HOST:PORT/BASE`` → ``(host, port, base)``; only plain http is served."""
    split = urlsplit(web_uri)
    if split.scheme != "http":
        raise ValueError(f"The web URI must start with http://, not {web_uri!r}")
    try:
        port = split.port if split.port is not None else 8080
    except ValueError:
        raise ValueError(f"Invalid port in web URI {web_uri!r}") from None
    return split.hostname or "127.0.0.1", port, _clean_prefix(split.path)


def _clean_prefix(*pieces: str) -> str:
    """Join URL pieces with single slashes: ``("/base/", "/x")`` → ``"/base/x"``."""
    joined = re.sub("/+", "/", "/" + "/".join(pieces))
    return joined.rstrip("/")


def build_app(
    repos: Mapping[str, POD],
    base: str = "",
    token: str | None = None,
    read_only: bool = False,
) -> Starlette:
    """The ASGI application serving each POD at ``base/name`` (``"/"`` serves at base)."""
    prefixes: dict[str, POD] = {}
    for name, pod in repos.items():
        prefix = _clean_prefix(base, name)
        if prefix in prefixes:
            raise ValueError(f"Two repositories would be served at {prefix or '/'!r}")
        prefixes[prefix] = pod
    ui = _ui_prefix(base, prefixes)
    routes = [Route("/", _index(list(prefixes), ui), methods=["GET"])]
    routes += web_routes(repos, ui, token)
    for prefix, pod in prefixes.items():
        routes.append(
            Route(prefix + "/{action}", _endpoint(pod, read_only), methods=["GET", "POST"])
        )
    middleware = [Middleware(BearerAuth, token=token, exempt=ui)] if token else []
    return Starlette(routes=routes, middleware=middleware)


def _ui_prefix(base: str, prefixes: Mapping[str, POD]) -> str:
    """Where the web interface is served: ``BASE/ui``, which no repository may hide."""
    ui = _clean_prefix(base, "ui")
    for prefix in prefixes:
        if prefix == ui or prefix.startswith(ui + "/"):
            raise ValueError(f"A repository served at {prefix!r} would hide the web interface")
    return ui


class BearerAuth:
    """ASGI middleware: every request needs ``Authorization: Bearer <token>``.

    Paths under `exempt` (the web interface) are let through: their routes accept the
    bearer token or a login session cookie themselves (`lakota.web.session`).
    """

    def __init__(self, app: Callable, token: str, exempt: str | None = None) -> None:
        self.app = app
        self.token = token.encode("utf-8")
        self.exempt = exempt

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and not self._exempt(scope) and not self._authorized(scope):
            response = PlainTextResponse(
                "Unauthorized", 401, headers={"WWW-Authenticate": 'Bearer realm="lakota"'}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _exempt(self, scope: dict) -> bool:
        path, exempt = scope["path"], self.exempt
        return exempt is not None and (path == exempt or path.startswith(exempt + "/"))

    def _authorized(self, scope: dict) -> bool:
        supplied = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                supplied = value
        scheme, _, credentials = supplied.partition(b" ")
        valid = hmac.compare_digest(credentials.strip(), self.token)
        return scheme.lower() == b"bearer" and valid


def _index(prefixes: list[str], ui: str) -> Callable:
    async def index(request: Request) -> HTMLResponse:
        items = "".join(
            f'<li><a href="{html.escape(p or "/")}">{html.escape(p or "/")}</a></li>'
            for p in prefixes
        )
        link = f'<p><a href="{html.escape(ui)}/">Web interface</a></p>'
        return HTMLResponse(f"<h4>Available endpoints:</h4><ul>{items}</ul>{link}")

    return index


def _endpoint(pod: POD, read_only: bool) -> Callable:
    async def endpoint(request: Request) -> Response:
        action = request.path_params["action"]
        handler = _ACTIONS.get(action)
        if handler is None:
            return PlainTextResponse(f'Action "{action}" not supported', 404)
        if read_only and action in CHANGES:
            return PlainTextResponse(f'Action "{action}" refused: read-only server', 403)
        params = request.query_params
        body = await request.body() if action == "write" else b""
        try:
            return await run_in_threadpool(handler, pod, params, body)
        except (MissingParameter, UnsafePathError) as exc:
            return PlainTextResponse(str(exc), 400)
        except FileNotFoundError:
            return PlainTextResponse(f'Path "{_subject(params)}" not found', 404)
        except OSError as exc:
            headers = {"X-Lakota-Errno": str(exc.errno)} if exc.errno else {}
            message = f'Path "{_subject(params)}": {exc.strerror or exc}'
            return PlainTextResponse(message, 409, headers=headers)
        except ValueError as exc:
            return PlainTextResponse(str(exc), 400)

    return endpoint


def _subject(params: Mapping[str, str]) -> str:
    """The path an error is about, as the client sent it."""
    return params.get("path") or params.get("from_path") or "."


def _param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise MissingParameter(f'Missing parameter "{name}"')
    return value


def _flag(params: Mapping[str, str], name: str) -> bool:
    """Booleans are true only for the case-insensitive string "true"."""
    return params.get(name, "").lower() == "true"


def _ls(pod: POD, params: Mapping[str, str], body: bytes) -> Response:
    return JSONResponse({"body": pod.ls(params.get("path", "."))})


def _read(pod: POD, params: Mapping[str, str], body: bytes) -> Response:
    data = pod.read(_param(params, "path"))
    return JSONResponse({"body": base64.b64encode(data).decode("ascii"), "b64encoded": True})


def _raw(pod: POD, params: Mapping[str, str], body: bytes) -> Response:
    return Response(pod.read(_param(params, "path")), media_type="application/octet-stream")


def _write(pod: POD, params: Mapping[str, str], body: bytes) -> Response:
    written = pod.write(_param(params, "path"), body, force=_flag(params, "force"))
    return JSONResponse({"body": written})


def _rm(pod: POD, params: Mapping[str, str], body: bytes) -> Response:
    pod.rm(
        _param(params, "path"),
        recursive=_flag(params, "recursive"),
        missing_ok=_flag(params, "missing_ok"),
    )
    return JSONResponse({"status": "ok"})


def _mv(pod: POD, params: Mapping[str, str], body: bytes) -> Response:
    from_path, to_path = _param(params, "from_path"), _param(params, "to_path")
    pod.mv(from_path, to_path, missing_ok=_flag(params, "missing_ok"))
    return JSONResponse({"status": "ok"})


def _walk(pod: POD, params: Mapping[str, str], body: bytes) -> Response:
    path = params.get("path") or "."
    text = params.get("max_depth") or None
    if text is not None and not re.fullmatch(r"-?\d+", text):
        raise MissingParameter(f'Parameter "max_depth" must be an integer, not {text!r}')
    max_depth = int(text) if text is not None else None
    return JSONResponse({"body": list(pod.cd(path).walk(max_depth=max_depth))})


_ACTIONS: dict[str, Callable[[POD, Mapping[str, str], bytes], Response]] = {
    "ls": _ls,
    "read": _read,
    "raw": _raw,
    "write": _write,
    "rm": _rm,
    "mv": _mv,
    "walk": _walk,
}


def serve(
    repo_maps: list[str],
    web_uri: str = "http://127.0.0.1:8080",
    token: str | None = None,
    read_only: bool = False,
    verbose: bool = False,
) -> None:
    """Serve the repositories until interrupted (``repo_maps`` as in `parse_repo_map`)."""
    import uvicorn

    host, port, base = parse_web_uri(web_uri)
    repos: dict[str, Any] = {}
    for spec in repo_maps:
        name, uris = parse_repo_map(spec)
        if name in repos:
            raise ValueError(f"Repository name {name!r} is given twice")
        repos[name] = POD.from_uri(uris)
    app = build_app(repos, base, token=token, read_only=read_only)
    mode = ", read-only" if read_only else ""
    auth = ", token required" if token else ""
    for name in repos:
        url = f"http://{host}:{port}{_clean_prefix(base, name)}"
        print(f"Serving {name} at {url}{mode}{auth}", file=sys.stderr, flush=True)
    uvicorn.run(
        app, host=host, port=port, log_level="info" if verbose else "warning", access_log=verbose
    )
