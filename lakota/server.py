"""``lakota serve``: share repositories over HTTP with the POD protocol of SPEC §5.

Each repository is mounted at ``BASE/NAME`` and answers ``BASE/NAME/<action>`` for the
actions ``ls``, ``read``, ``write``, ``rm``, ``mv`` and ``walk``, with the JSON shapes of
lakota 0.7.1 so that its clients keep working. One more action, ``raw``, returns a
file's bytes as they are (``application/octet-stream``) instead of base64 in JSON;
`lakota.pod.http.HttpPOD` uses it. Reads answer GET (and POST, as in 0.7.1); changes
(``write``, ``rm``, ``mv``) answer POST only, 405 otherwise.

Every request to the application, whatever its route, first goes through `Guard`, which
enforces a `Policy` (docs/security.md):

* the ``Host`` header must name the server (the address it is bound to, localhost
  forms, names given with ``--allowed-host``): 400 otherwise, against DNS rebinding;
* an ``Origin`` header must be the server's own origin (403), against cross-site pages;
* bodies are limited in size (413 past `Policy.max_body`);
* with a token, every request needs ``Authorization: Bearer <token>`` (401), compared in
  constant time; ``Policy.authenticators`` may add other checks (a session cookie);
* methods other than GET, HEAD and OPTIONS need write access (403): refused when
  read-only, and without a token unless anonymous writes were allowed explicitly.

Errors: 400 for a missing parameter or a path that leaves the repository or is too long
or deep, 404 with the real path (``Path "a/b" not found``), 409 with an
``X-Lakota-Errno`` header for other storage errors (not empty, not a folder...). Reads
stream the file instead of holding it in memory.

The same application serves a read-only web interface at ``BASE/ui`` (`lakota.web`,
docs/web.md): its pages check the token or a login session cookie themselves, and every
other check of `Guard` applies to them too.

```python
app = build_app({"prices": POD.from_uri("/srv/prices")}, policy=Policy(token="s3cr3t"))
serve(["prices /srv/prices"], "http://127.0.0.1:8080", token="s3cr3t")  # blocks
```
"""

from __future__ import annotations

import base64
import hmac
import html
import ipaddress
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Route

from lakota.errors import UnsafePathError
from lakota.pod import POD
from lakota.web import web_routes

__all__ = ["Policy", "Guard", "build_app", "parse_repo_map", "parse_web_uri", "serve"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
# lakota writes data files of at most `settings.page_len` rows per column (about 800 KB
# for 8-byte numbers); the limit leaves room for long strings and large commits.
DEFAULT_MAX_BODY = 128 * 2**20
MAX_PATH_LENGTH = 4096
MAX_PATH_DEPTH = 100
CHUNK_SIZE = 3 * 2**18  # streamed reads: 768 KiB pieces (a multiple of 3 for base64)

Authenticator = Callable[[HTTPConnection], bool]


class BadParameter(ValueError):
    """A query parameter is absent or unacceptable (answered with 400)."""


@dataclass(frozen=True)
class Policy:
    """What `Guard` lets through; the defaults are the safe choice.

    `hosts` are the accepted ``Host`` names (``"*"`` accepts any); `any_ip_host` also
    accepts IP addresses, for servers bound to every interface (a DNS rebinding attack
    needs a domain name). `authenticators` are extra ways to prove identity (a web
    session cookie), tried after the bearer token; `open_paths` skip authentication
    and write checks (a login form), not the Host, Origin and size checks.
    `self_guarded` are path prefixes whose routes check identity themselves (the web
    interface sends a browser to its login form instead of a bare 401); every other
    check, write access included, still applies there.
    """

    token: str | None = None
    read_only: bool = False
    anonymous_writes: bool = False
    hosts: frozenset[str] = LOCAL_HOSTS
    any_ip_host: bool = False
    max_body: int = DEFAULT_MAX_BODY
    authenticators: tuple[Authenticator, ...] = ()
    open_paths: frozenset[str] = frozenset()
    self_guarded: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.anonymous_writes and self.token:
            raise ValueError("Anonymous writes make no sense with a token: drop one of them")
        if self.anonymous_writes and self.read_only:
            raise ValueError("A read-only server cannot allow anonymous writes")
        if self.max_body < 0:
            raise ValueError(f"The body size limit cannot be negative: {self.max_body}")

    @classmethod
    def bound_to(cls, host: str, extra_hosts: Iterable[str] = (), **options: Any) -> Policy:
        """The policy of a server listening on `host`: it accepts that name, the
        localhost forms and `extra_hosts` (plus any IP address for a wildcard bind)."""
        names = {_bare(name) for name in (host, *extra_hosts)} - WILDCARD_HOSTS
        return cls(hosts=LOCAL_HOSTS | names, any_ip_host=_bare(host) in WILDCARD_HOSTS, **options)

    def host_allowed(self, header: str | None) -> bool:
        name = _host_name(header)
        if name is None:
            return False
        if name in self.hosts or "*" in self.hosts:
            return True
        return self.any_ip_host and _is_ip(name)

    def authenticated(self, conn: HTTPConnection) -> bool:
        """True if the request proves who sent it (the token, or an `authenticators` check)."""
        return self._bearer(conn) or any(check(conn) for check in self.authenticators)

    def guards_itself(self, path: str) -> bool:
        """True if the route at `path` checks identity itself (see `self_guarded`)."""
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self.self_guarded)

    def may_write(self, authenticated: bool) -> bool:
        return not self.read_only and (authenticated or self.anonymous_writes)

    def _bearer(self, conn: HTTPConnection) -> bool:
        if not self.token:
            return False
        scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
        supplied = credentials.strip().encode("latin-1")  # the bytes as sent
        valid = hmac.compare_digest(supplied, self.token.encode("utf-8"))
        return scheme.lower() == "bearer" and valid


class Guard:
    """ASGI middleware enforcing a `Policy` on every request, whatever its route.

    It records ``request.state.authenticated`` and ``request.state.may_write`` for the
    routes (a web UI may show or hide its buttons with them).
    """

    def __init__(self, app: Callable, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no route speaks websockets
            await send({"type": "websocket.close", "code": 1008})
            return
        conn = HTTPConnection(scope)
        refusal = self._refusal(conn)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, self._limited(receive), send)

    def _refusal(self, conn: HTTPConnection) -> Response | None:
        """The error response for a request the policy refuses, or None."""
        policy, headers = self.policy, conn.headers
        host = headers.get("host")
        if not policy.host_allowed(host):
            return PlainTextResponse(f"Host {host!r} is not served here (see --allowed-host)", 400)
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, conn.url.scheme, host or ""):
            return PlainTextResponse(f"Cross-origin request from {origin!r} refused", 403)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > policy.max_body:
            return _too_large(policy.max_body)
        state = conn.scope.setdefault("state", {})
        if conn.scope["path"] in policy.open_paths:
            state.update(authenticated=False, may_write=False)
            return None
        authenticated = policy.authenticated(conn)
        state.update(authenticated=authenticated, may_write=policy.may_write(authenticated))
        if policy.token and not authenticated and not policy.guards_itself(conn.scope["path"]):
            challenge = {"WWW-Authenticate": 'Bearer realm="lakota"'}
            return PlainTextResponse("Unauthorized", 401, headers=challenge)
        if conn.scope["method"] not in SAFE_METHODS and not state["may_write"]:
            return PlainTextResponse(_read_only_reason(policy), 403)
        return None

    def _limited(self, receive: Callable) -> Callable:
        """`receive`, raising a 413 once the body grows past the limit (chunked uploads)."""
        left = self.policy.max_body

        async def limited() -> dict:
            nonlocal left
            message = await receive()
            left -= len(message.get("body", b""))
            if left < 0:
                raise HTTPException(413, _too_large_text(self.policy.max_body))
            return message

        return limited


def _too_large(limit: int) -> Response:
    return PlainTextResponse(_too_large_text(limit), 413)


def _too_large_text(limit: int) -> str:
    return f"Request body larger than the limit of {limit} bytes (see --max-body-size)"


def _read_only_reason(policy: Policy) -> str:
    if policy.read_only:
        return "Refused: the server is read-only"
    return (
        "Refused: the server is read-only for clients without a token "
        "(its operator may set --token, or --allow-anonymous-writes)"
    )


def _bare(host: str) -> str:
    """A host name as `_host_name` gives it: lower case, IPv6 without brackets."""
    return host.strip("[]").lower()


def _host_name(header: str | None) -> str | None:
    """The name in a ``Host`` header (``name[:port]``, ``[v6][:port]``), None if malformed."""
    if not header or any(char in header for char in "/?#@\\ "):
        return None
    try:
        split = urlsplit("//" + header)
        split.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return None
    return split.hostname or None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _same_origin(origin: str, scheme: str, host: str) -> bool:
    """True if `origin` is ``scheme://host`` (default ports made explicit)."""
    mine, theirs = _origin_key(f"{scheme}://{host}"), _origin_key(origin)
    return mine is not None and mine == theirs


def _origin_key(url: str) -> tuple[str, str, int] | None:
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return None
    default = {"http": 80, "https": 443}.get(split.scheme)
    if default is None or not split.hostname or split.path or split.query:
        return None
    return split.scheme, split.hostname, port or default


# --- application ---------------------------------------------------------------------------


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
    """``http(s)://HOST:PORT/BASE`` → ``(host, port, base)``."""
    split = urlsplit(web_uri)
    if split.scheme not in ("http", "https"):
        raise ValueError(f"The web URI must start with http:// or https://, not {web_uri!r}")
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
    policy: Policy | None = None,
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The ASGI application serving each POD at ``base/name`` (``"/"`` serves at base).

    Extra `routes` (a web UI) are served too, behind the same `Guard`.
    """
    prefixes: dict[str, POD] = {}
    for name, pod in repos.items():
        prefix = _clean_prefix(base, name)
        if prefix in prefixes:
            raise ValueError(f"Two repositories would be served at {prefix or '/'!r}")
        prefixes[prefix] = pod
    ui = _ui_prefix(base, prefixes)
    policy = _with_web_interface(policy or Policy(), ui)
    app_routes = [Route("/", _index(list(prefixes), ui), methods=["GET"]), *routes]
    app_routes += web_routes(repos, ui, policy.token)
    for prefix, pod in prefixes.items():
        app_routes.extend(_pod_routes(prefix, pod))
    middleware = [Middleware(Guard, policy=policy)]
    return Starlette(routes=app_routes, middleware=middleware)


def _ui_prefix(base: str, prefixes: Mapping[str, POD]) -> str:
    """Where the web interface is served: ``BASE/ui``, which no repository may hide."""
    ui = _clean_prefix(base, "ui")
    for prefix in prefixes:
        if prefix == ui or prefix.startswith(ui + "/"):
            raise ValueError(f"A repository served at {prefix!r} would hide the web interface")
    return ui


def _with_web_interface(policy: Policy, ui: str) -> Policy:
    """`policy`, letting the pages under `ui` check identity themselves (they redirect a
    browser to their login form, whose routes are open)."""
    return replace(
        policy,
        self_guarded=policy.self_guarded | {ui},
        open_paths=policy.open_paths | {f"{ui}/login", f"{ui}/logout"},
    )


def _pod_routes(prefix: str, pod: POD) -> list[Route]:
    routes = [
        Route(f"{prefix}/{action}", _endpoint(pod, handler), methods=["GET", "POST"])
        for action, handler in _READS.items()
    ]
    routes += [
        Route(f"{prefix}/{action}", _endpoint(pod, handler), methods=["POST"])
        for action, handler in _CHANGES.items()
    ]
    unknown = Route(prefix + "/{action}", _unknown_action)
    return [*routes, unknown]


async def _unknown_action(request: Request) -> Response:
    """404 for an unknown action; a known one only gets here with a wrong method (405)."""
    action = request.path_params["action"]
    if action in _READS or action in _CHANGES:
        allow = "GET, HEAD, POST" if action in _READS else "POST"
        return PlainTextResponse("Method Not Allowed", 405, headers={"Allow": allow})
    return PlainTextResponse(f'Action "{action}" not supported', 404)


def _index(prefixes: list[str], ui: str) -> Callable:
    async def index(request: Request) -> HTMLResponse:
        items = "".join(
            f'<li><a href="{html.escape(p or "/")}">{html.escape(p or "/")}</a></li>'
            for p in prefixes
        )
        link = f'<p><a href="{html.escape(ui)}/">Web interface</a></p>'
        return HTMLResponse(f"<h4>Available endpoints:</h4><ul>{items}</ul>{link}")

    return index


Handler = Callable[[POD, Mapping[str, str], bytes], Response]


def _endpoint(pod: POD, handler: Handler) -> Callable:
    async def endpoint(request: Request) -> Response:
        params = request.query_params
        body = await _body(request) if handler is _write else b""
        try:
            _check_paths(params)
            return await run_in_threadpool(handler, pod, params, body)
        except (BadParameter, UnsafePathError) as exc:
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


async def _body(request: Request) -> bytes:
    return b"".join([chunk async for chunk in request.stream()])


def _check_paths(params: Mapping[str, str]) -> None:
    """Refuse paths too long or too deep for any repository (before they reach storage)."""
    for name in ("path", "from_path", "to_path"):
        text = params.get(name, "")
        if len(text) > MAX_PATH_LENGTH:
            raise BadParameter(f'Parameter "{name}" is longer than {MAX_PATH_LENGTH} characters')
        if text.count("/") >= MAX_PATH_DEPTH:
            raise BadParameter(f'Parameter "{name}" has more than {MAX_PATH_DEPTH} components')


def _subject(params: Mapping[str, str]) -> str:
    """The path an error is about, as the client sent it."""
    return params.get("path") or params.get("from_path") or "."


def _param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise BadParameter(f'Missing parameter "{name}"')
    return value


def _flag(params: Mapping[str, str], name: str) -> bool:
    """Booleans are true only for the case-insensitive string "true"."""
    return params.get(name, "").lower() == "true"


def _ls(pod: POD, params: Mapping[str, str], body: bytes) -> Response:
    return JSONResponse({"body": pod.ls(params.get("path", "."))})


def _read(pod: POD, params: Mapping[str, str], body: bytes) -> Response:
    """The JSON shape of 0.7.1 (``{"body": base64, "b64encoded": true}``), streamed."""
    stream = pod.open(_param(params, "path"))
    return StreamingResponse(_json_base64(stream), media_type="application/json")


def _raw(pod: POD, params: Mapping[str, str], body: bytes) -> Response:
    stream = pod.open(_param(params, "path"))
    size = stream.seek(0, 2)
    stream.seek(0)
    return StreamingResponse(
        _chunks(stream),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size)},
    )


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    """The content of `stream` in pieces of at most `CHUNK_SIZE` bytes; closes it."""
    with stream:
        while chunk := stream.read(CHUNK_SIZE):
            yield chunk


def _json_base64(stream: BinaryIO) -> Iterator[bytes]:
    yield b'{"body":"'
    yield from base64_pieces(_chunks(stream))
    yield b'","b64encoded":true}'


def base64_pieces(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Base64 of the concatenated `chunks`, piece by piece (pieces join into valid base64)."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk
        cut = len(data) - len(data) % 3
        yield base64.b64encode(data[:cut])
        rest = data[cut:]
    yield base64.b64encode(rest)


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
    if text is not None and not re.fullmatch(r"-?\d{1,9}", text):
        raise BadParameter(f'Parameter "max_depth" must be an integer, not {text!r}')
    max_depth = int(text) if text is not None else None
    return JSONResponse({"body": list(pod.cd(path).walk(max_depth=max_depth))})


_READS: dict[str, Handler] = {"ls": _ls, "read": _read, "raw": _raw, "walk": _walk}
_CHANGES: dict[str, Handler] = {"write": _write, "rm": _rm, "mv": _mv}


# --- running ---------------------------------------------------------------------------------


def serve(
    repo_maps: list[str],
    web_uri: str = "http://127.0.0.1:8080",
    token: str | None = None,
    read_only: bool = False,
    verbose: bool = False,
    *,
    allow_anonymous_writes: bool = False,
    allowed_hosts: Iterable[str] = (),
    max_body: int = DEFAULT_MAX_BODY,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> None:
    """Serve the repositories until interrupted (``repo_maps`` as in `parse_repo_map`).

    Without a token the server is read-only unless `allow_anonymous_writes`; an
    ``https://`` `web_uri` needs `certfile` and `keyfile` (PEM).
    """
    import uvicorn

    host, port, base = parse_web_uri(web_uri)
    tls = _tls_options(web_uri, certfile, keyfile)
    policy = Policy.bound_to(
        host,
        allowed_hosts,
        token=token,
        read_only=read_only,
        anonymous_writes=allow_anonymous_writes,
        max_body=max_body,
    )
    repos: dict[str, Any] = {}
    for spec in repo_maps:
        name, uris = parse_repo_map(spec)
        if name in repos:
            raise ValueError(f"Repository name {name!r} is given twice")
        repos[name] = POD.from_uri(uris)
    app = build_app(repos, base, policy=policy)
    scheme = "https" if tls else "http"
    for name in repos:
        url = f"{scheme}://{host}:{port}{_clean_prefix(base, name)}"
        print(f"Serving {name} at {url}, {_access(policy)}", file=sys.stderr, flush=True)
    for warning in startup_warnings(host, policy, bool(tls)):
        print(f"Warning: {warning}", file=sys.stderr, flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info" if verbose else "warning",
        access_log=verbose,
        **tls,
    )


def _tls_options(web_uri: str, certfile: str | None, keyfile: str | None) -> dict[str, str]:
    """uvicorn's TLS options: https needs both files, and the files need https."""
    https = urlsplit(web_uri).scheme == "https"
    if https and not (certfile and keyfile):
        raise ValueError(
            f"Serving {web_uri!r} needs --certfile and --keyfile (or use an http:// URI)"
        )
    if (certfile or keyfile) and not https:
        raise ValueError(f"--certfile and --keyfile need an https:// web URI, not {web_uri!r}")
    return {"ssl_certfile": certfile, "ssl_keyfile": keyfile} if https else {}


def _access(policy: Policy) -> str:
    if policy.token:
        return "token required" + (", read-only" if policy.read_only else "")
    if policy.anonymous_writes:
        return "anyone may read and write"
    return "read-only" if policy.read_only else "read-only without a token"


def startup_warnings(host: str, policy: Policy, tls: bool) -> list[str]:
    """What the operator should know about a server bound to `host` with `policy`."""
    if _is_loopback(host):
        return []
    if policy.anonymous_writes:
        return [f"listening on {host} without a token: anyone who reaches it may write"]
    if not policy.token:
        return [f"listening on {host} without a token: anyone who reaches it may read"]
    if not tls:
        return [f"listening on {host} without TLS: the token crosses the network in clear"]
    return []


def _is_loopback(host: str) -> bool:
    if _bare(host) == "localhost":
        return True
    try:
        return ipaddress.ip_address(_bare(host)).is_loopback
    except ValueError:
        return False
