"""The pages and JSON routes of the web interface, as one Starlette application.

```python
from lakota.pod import POD
from lakota.web.views import web_app
app = web_app({"prices": POD.from_uri("/srv/prices")}, mount="/ui", token=None)
```

`lakota.server.build_app` mounts it at ``BASE/ui``; `docs/web.md` lists the routes. Every
route only reads. With a token, each one wants a session cookie (see `lakota.web.session`)
or the ``Authorization: Bearer`` header; pages send a browser without either to the
login form, JSON routes answer 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from lakota.collection import Collection
from lakota.io import encode_name, frame_bytes
from lakota.pod import POD
from lakota.repo import Repo
from lakota.series import Series
from lakota.web import data
from lakota.web.session import COOKIE, LIFETIME, Sessions, bearer_token

__all__ = ["web_app", "CONTENT_SECURITY_POLICY"]

HERE = Path(__file__).parent
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_SIZE = 50
MAX_DOWNLOAD_ROWS = 2_000_000
MAX_LOGIN_BODY = 4096
Handler = Callable[["Context", Request], Response]


class Context:
    """What every route needs: the repositories, the mount path, the sessions."""

    def __init__(self, repos: Mapping[str, POD], mount: str, token: str | None) -> None:
        self.pods = dict(repos)
        self.mount = mount
        self.sessions = Sessions(token) if token else None
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True),
        )
        self.templates.globals["url"] = self.url

    def url(self, page: str = "", **params: str | int | None) -> str:
        """The URL of a page or route of the interface, with its query parameters."""
        query = urlencode({k: v for k, v in params.items() if v is not None and v != ""})
        return f"{self.mount}/{page}" + (f"?{query}" if query else "")

    def allowed(self, request: Request) -> bool:
        if self.sessions is None:
            return True
        if self.sessions.valid(request.cookies.get(COOKIE)):
            return True
        supplied = bearer_token(request.headers.get("authorization"))
        return supplied is not None and self.sessions.token_ok(supplied)

    def render(self, template: str, status: int = 200, **values: object) -> HTMLResponse:
        page = self.templates.get_template(template)
        text = page.render(logged_in=self.sessions is not None, **values)
        return HTMLResponse(text, status)

    def repo(self, request: Request) -> tuple[str, Repo]:
        name = _param(request, "repo")
        if name not in self.pods:
            raise KeyError(f"Repository {name!r} not found")
        return name, Repo(pod=self.pods[name])

    def collection(self, request: Request) -> Collection:
        _, repo = self.repo(request)
        label = _param(request, "collection")
        found = repo.collection(label)
        if found is None:
            raise KeyError(f"Collection {label!r} not found")
        return found

    def series(self, request: Request) -> Series:
        return self.collection(request).series(_param(request, "series"))


class SecurityHeaders:
    """ASGI middleware: a strict Content-Security-Policy and friends on every response."""

    HEADERS = [
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"x-content-type-options", b"nosniff"),
        # not "no-referrer": with it, the login form would post `Origin: null`, refused
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
    ]

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *self.HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _param(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if value is None:
        raise ValueError(f'Missing parameter "{name}"')
    return value


def _int(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f'Parameter "{name}" must be an integer, not {text!r}') from None


def _range(request: Request) -> tuple[str | None, str | None]:
    return request.query_params.get("start"), request.query_params.get("stop")


# --- pages --------------------------------------------------------------------------------


def repos_page(ctx: Context, request: Request) -> Response:
    return ctx.render("repos.html", repos=list(ctx.pods))


def repo_page(ctx: Context, request: Request) -> Response:
    name, repo = ctx.repo(request)
    return ctx.render("repo.html", repo=name, collections=data.collections_info(repo))


def collection_page(ctx: Context, request: Request) -> Response:
    name, _ = ctx.repo(request)
    clct = ctx.collection(request)
    query = request.query_params.get("q", "")
    page = data.series_page(clct, query, _int(request, "offset", 0), PAGE_SIZE)
    return ctx.render(
        "collection.html",
        repo=name,
        collection=clct.label,
        schema=data.schema_info(clct.schema),
        query=query,
        page=page,
    )


def series_page(ctx: Context, request: Request) -> Response:
    name, _ = ctx.repo(request)
    series = ctx.series(request)
    schema = series.schema
    index = schema[schema.idx[0]]
    return ctx.render(
        "series.html",
        repo=name,
        collection=series.collection.label,
        series=series.label,
        plottable=data.plottable(schema) if index.dt.kind in "biufM" else [],
        time=index.dt.kind == "M",
        api=ctx.url("api"),
    )


# --- JSON routes --------------------------------------------------------------------------


def api_repos(ctx: Context, request: Request) -> Response:
    return JSONResponse({"repos": list(ctx.pods)})


def api_collections(ctx: Context, request: Request) -> Response:
    _, repo = ctx.repo(request)
    return JSONResponse({"collections": data.collections_info(repo)})


def api_series(ctx: Context, request: Request) -> Response:
    clct = ctx.collection(request)
    offset, limit = _int(request, "offset", 0), _int(request, "limit", PAGE_SIZE)
    rev = request.query_params.get("rev")
    query = request.query_params.get("q", "")
    return JSONResponse(data.series_page(clct, query, offset, limit, rev))


def api_revisions(ctx: Context, request: Request) -> Response:
    return JSONResponse({"revisions": data.revisions(ctx.collection(request))})


def api_plot(ctx: Context, request: Request) -> Response:
    series = ctx.series(request)
    commit = data.pick_commit(series.collection, request.query_params.get("rev"))
    columns = request.query_params.get("columns")
    picked = [c for c in columns.split(",") if c] if columns else None
    width = _int(request, "width", 1000)
    return JSONResponse(data.plot(series, commit, *_range(request), width, picked))


def api_rows(ctx: Context, request: Request) -> Response:
    series = ctx.series(request)
    commit = data.pick_commit(series.collection, request.query_params.get("rev"))
    offset, limit = _int(request, "offset", 0), _int(request, "limit", PAGE_SIZE)
    return JSONResponse(data.table(series, commit, *_range(request), offset, limit))


def api_download(ctx: Context, request: Request) -> Response:
    series = ctx.series(request)
    commit = data.pick_commit(series.collection, request.query_params.get("rev"))
    file_type = request.query_params.get("format", "csv")
    frame = data.range_frame(series, commit, *_range(request), limit=MAX_DOWNLOAD_ROWS + 1)
    if len(frame) > MAX_DOWNLOAD_ROWS:
        raise ValueError(
            f"The range has more than {MAX_DOWNLOAD_ROWS} rows: narrow it to download it"
        )
    where = f"{series.collection.label}/{series.label}"
    body = frame_bytes(frame, file_type, where)
    filename = quote(f"{encode_name(series.label)}.{file_type}")
    media = "text/csv; charset=utf-8" if file_type == "csv" else "application/vnd.apache.parquet"
    disposition = f"attachment; filename*=UTF-8''{filename}"
    return Response(body, media_type=media, headers={"Content-Disposition": disposition})


# --- login --------------------------------------------------------------------------------


def _safe_next(ctx: Context, target: str | None) -> str:
    """Where to go after login: a page of this interface only (no open redirect)."""
    home = f"{ctx.mount}/"
    if not target or not target.startswith(home) or "\\" in target or "//" in target:
        return home
    return target


async def login_form(ctx: Context, request: Request) -> Response:
    target = _safe_next(ctx, request.query_params.get("next"))
    if ctx.sessions is None:
        return RedirectResponse(target, 303)
    return ctx.render("login.html", target=target, error=None)


async def login(ctx: Context, request: Request) -> Response:
    if ctx.sessions is None:
        return RedirectResponse(f"{ctx.mount}/", 303)
    form = await _small_form(request)
    target = _safe_next(ctx, form.get("next"))
    session = ctx.sessions.login(form.get("token", ""))
    if session is None:
        return ctx.render("login.html", 401, target=target, error="Wrong token.")
    response = RedirectResponse(target, 303)
    response.set_cookie(
        COOKIE,
        session,
        max_age=LIFETIME,
        path=f"{ctx.mount}/",
        secure=request.url.scheme == "https",  # behind a TLS proxy that says so
        httponly=True,
        samesite="strict",
    )
    return response


async def logout(ctx: Context, request: Request) -> Response:
    if ctx.sessions is not None:
        ctx.sessions.logout(request.cookies.get(COOKIE))
    response = RedirectResponse(f"{ctx.mount}/login", 303)
    response.delete_cookie(COOKIE, path=f"{ctx.mount}/", httponly=True, samesite="strict")
    return response


async def _small_form(request: Request) -> dict[str, str]:
    """The fields of a small urlencoded form (the login form), refusing big bodies."""
    from urllib.parse import parse_qsl

    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BODY:
            raise ValueError("Form too large")
    try:
        return dict(parse_qsl(body.decode("utf-8"), max_num_fields=8))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"Cannot read the form: {exc}") from None


# --- routing ------------------------------------------------------------------------------


def _failure(exc: Exception) -> tuple[int, str]:
    """The HTTP status and message of an error raised while answering."""
    if isinstance(exc, KeyError):
        return 404, exc.args[0] if exc.args else str(exc)
    if isinstance(exc, ImportError):
        return 501, str(exc)
    return 400, str(exc)


def _page(ctx: Context, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if not ctx.allowed(request):
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(ctx.url("login", next=here), 303)
        try:
            return await run_in_threadpool(handler, ctx, request)
        except (ValueError, TypeError, KeyError, ImportError) as exc:
            status, message = _failure(exc)
            return ctx.render("error.html", status, status=status, message=message)

    return endpoint


def _api(ctx: Context, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if not ctx.allowed(request):
            return JSONResponse({"error": "Unauthorized: log in first"}, 401)
        try:
            response = await run_in_threadpool(handler, ctx, request)
        except (ValueError, TypeError, KeyError, ImportError) as exc:
            status, message = _failure(exc)
            response = JSONResponse({"error": message}, status)
        response.headers["Cache-Control"] = "no-store"
        return response

    return endpoint


def _open(ctx: Context, handler: Callable) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(ctx, request)
        except ValueError as exc:
            return ctx.render("error.html", 400, status=400, message=str(exc))

    return endpoint


def web_app(repos: Mapping[str, POD], mount: str, token: str | None = None) -> Starlette:
    """The interface for `repos` (name → POD), served at the URL path `mount`."""
    ctx = Context(repos, mount.rstrip("/"), token)
    pages = {
        "": repos_page,
        "repo": repo_page,
        "collection": collection_page,
        "series": series_page,
    }
    apis = {
        "repos": api_repos,
        "collections": api_collections,
        "series": api_series,
        "revisions": api_revisions,
        "plot": api_plot,
        "rows": api_rows,
        "download": api_download,
    }
    routes = [Route(f"/{path}", _page(ctx, fn), methods=["GET"]) for path, fn in pages.items()]
    routes += [Route(f"/api/{path}", _api(ctx, fn), methods=["GET"]) for path, fn in apis.items()]
    routes += [
        Route("/login", _open(ctx, login_form), methods=["GET"]),
        Route("/login", _open(ctx, login), methods=["POST"]),
        Route("/logout", _open(ctx, logout), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
