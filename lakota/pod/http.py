"""`HttpPOD`: a POD served by ``lakota serve`` (SPEC §5), with the standard library only.

Every call is one HTTP request to ``<base_uri><action>?path=...``: ``ls``, ``walk`` and
reads use GET, changes use POST. File contents come from the ``raw`` action (the bytes
as they are); against a server without it (lakota 0.7.1) the client falls back to the
base64 JSON ``read`` action. Each thread keeps its own keep-alive connection.

``https://`` certificates are verified, against the system's authorities (or the file
named by ``SSL_CERT_FILE``), or against `cafile` (``?cafile=/path/ca.pem`` in a URI).
A request is sent again when its keep-alive connection turns out to be closed; for a
change that the server may have carried out before the connection dropped, the outcome
of the first attempt counts: the same bytes already written, a file already removed or
already moved are successes. Answers that break the protocol raise `ProtocolError`.

```python
pod = HttpPOD("http://127.0.0.1:8080/prices/", headers={"Authorization": "Bearer s3cr3t"})
repo = Repo(pod=pod)            # or Repo("http://127.0.0.1:8080/prices?token=s3cr3t")
repo = Repo("https://lakota.example:8443/prices?token=s3cr3t&cafile=/etc/lakota/ca.pem")
```
"""

from __future__ import annotations

import base64
import errno
import http.client
import json
import ssl
import threading
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

from lakota.errors import ProtocolError, StorageError
from lakota.pod.base import POD, Parts, join_parts, path_error, split_path

__all__ = ["HttpPOD"]

# Errors after which a request is sent again on a fresh connection: the server closed
# an idle keep-alive connection before reading the request.
_STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
_UNSUPPORTED_ACTION = b'Action "'


class Reply(NamedTuple):
    """A server's answer; `resent` if an earlier attempt may have reached the server."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    resent: bool = False


class _Transport:
    """Requests to one server, on one keep-alive connection per thread (or a session)."""

    def __init__(
        self,
        base_uri: str,
        headers: Mapping[str, str],
        session: Any,
        timeout: float,
        cafile: str | None = None,
    ) -> None:
        split = urlsplit(base_uri)
        if split.scheme not in ("http", "https") or not split.hostname:
            raise ValueError(f"HttpPOD needs an http(s)://host[:port]/ URI, not {base_uri!r}")
        if split.query or split.username or split.password:
            raise ValueError("Give HttpPOD headers with `headers=`, not in the base URI")
        self.scheme, self.netloc = split.scheme, split.netloc
        self.base_path = split.path.rstrip("/") + "/"
        self.base_uri = f"{self.scheme}://{self.netloc}{self.base_path}"
        self.headers = dict(headers)
        self.session = session
        self.timeout = timeout
        self.context = _tls_context(cafile) if split.scheme == "https" else None
        self.raw_reads = True  # False once the server answered that it has no `raw`
        self._local = threading.local()

    def request(
        self, method: str, action: str, params: Mapping[str, str], body: bytes | None = None
    ) -> Reply:
        """Send one request (again on a fresh connection if the kept-alive one was closed)."""
        target = f"{self.base_path}{action}?{urlencode(params)}"
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        try:
            if self.session is not None:
                return self._session_request(method, target, headers, body)
            return self._send(method, target, headers, body)
        except (OSError, http.client.HTTPException) as exc:
            raise StorageError(f"HTTP {method} {self.base_uri}{action} failed: {exc}") from exc

    def _session_request(
        self, method: str, target: str, headers: dict, body: bytes | None
    ) -> Reply:
        response = self.session.request(
            method,
            f"{self.scheme}://{self.netloc}{target}",
            data=body,
            headers=headers,
            timeout=self.timeout,
        )
        return Reply(response.status_code, response.headers, response.content)

    def _send(
        self, method: str, target: str, headers: dict, body: bytes | None, resent: bool = False
    ) -> Reply:
        conn = getattr(self._local, "conn", None)
        reused = conn is not None
        if conn is None:
            conn = self._local.conn = self._connect()
        sent = False  # the whole request went out: the server may have acted on it
        try:
            conn.request(method, target, body=body, headers=headers)
            sent = True
            response = conn.getresponse()
            return Reply(response.status, response.headers, response.read(), resent)
        except _STALE_CONNECTION:
            self._drop(conn)
            if not reused:
                raise
            return self._send(method, target, headers, body, resent or sent)
        except BaseException:
            self._drop(conn)
            raise

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        self._local.conn = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.context is not None:
            return http.client.HTTPSConnection(
                self.netloc, timeout=self.timeout, context=self.context
            )
        return http.client.HTTPConnection(self.netloc, timeout=self.timeout)


def _tls_context(cafile: str | None) -> ssl.SSLContext:
    """Certificate and host name checks, against `cafile` or the system's authorities."""
    try:
        return ssl.create_default_context(cafile=cafile)
    except OSError as exc:  # ssl.SSLError included
        raise ValueError(f"Cannot load certificate authorities from {cafile!r}: {exc}") from None


class HttpPOD(POD):
    """A POD whose files live behind a ``lakota serve`` endpoint."""

    protocol = "http"

    def __init__(
        self,
        base_uri: str,
        path: str | None = None,
        session: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        *,
        cafile: str | None = None,
        transport: _Transport | None = None,
    ) -> None:
        """`session` may be a ``requests.Session``-like object; `headers` go with every call;
        `cafile` (PEM) replaces the system's certificate authorities for ``https://``."""
        self.transport = transport or _Transport(
            base_uri, headers or {}, session, timeout, cafile
        )
        self.parts = split_path(path or ".")
        self.path = PurePosixPath(*self.parts)

    @property
    def base_uri(self) -> str:
        return self.transport.base_uri

    def __repr__(self) -> str:
        return f"HttpPOD({self.base_uri!r}, {str(self.path)!r})"

    def _cd(self, parts: Parts) -> HttpPOD:
        return HttpPOD(
            self.base_uri, join_parts(self.parts + parts), transport=self.transport
        )

    def _relpath(self, parts: Parts) -> str:
        return join_parts(self.parts + parts)

    def _call(self, method: str, action: str, relpath: str, **params: Any) -> Any:
        """One request whose answer is JSON; errors become the matching OSError."""
        reply = self.transport.request(method, action, _encode(params))
        _check(reply, relpath, self.base_uri)
        return _json(reply.body, relpath)

    def _ls(self, parts: Parts) -> list[str]:
        relpath = self._relpath(parts)
        return _field(self._call("GET", "ls", relpath, path=relpath), "body", list, relpath)

    def _read(self, parts: Parts) -> bytes:
        relpath = self._relpath(parts)
        if self.transport.raw_reads:
            reply = self.transport.request("GET", "raw", {"path": relpath})
            if not (reply.status == 404 and reply.body.startswith(_UNSUPPORTED_ACTION)):
                _check(reply, relpath, self.base_uri)
                return reply.body
            self.transport.raw_reads = False
        encoded = _field(self._call("GET", "read", relpath, path=relpath), "body", str, relpath)
        try:
            return base64.b64decode(encoded, validate=True)
        except ValueError:
            raise ProtocolError(f"Invalid base64 content for {relpath!r}") from None

    def _write(self, parts: Parts, data: bytes, force: bool) -> int | None:
        relpath = self._relpath(parts)
        params = _encode({"path": relpath, "force": force})
        reply = self.transport.request("POST", "write", params, data)
        _check(reply, relpath, self.base_uri)
        written = _field(_json(reply.body, relpath), "body", (int, type(None)), relpath)
        if written is None and reply.resent and self._read(parts) == data:
            return len(data)  # the first attempt wrote it before the connection dropped
        return written

    def _isdir(self, parts: Parts) -> bool:
        try:
            self._ls(parts)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def _isfile(self, parts: Parts) -> bool:
        if not parts:
            return False
        try:
            names = self._ls(parts[:-1])
        except (FileNotFoundError, NotADirectoryError):
            return False
        return parts[-1] in names and not self._isdir(parts)

    def _rm(self, parts: Parts, recursive: bool) -> None:
        relpath = self._relpath(parts)
        params = _encode({"path": relpath, "recursive": recursive, "missing_ok": False})
        reply = self.transport.request("POST", "rm", params)
        if reply.status == 404 and reply.resent:
            return  # the first attempt removed it before the connection dropped
        _check(reply, relpath, self.base_uri)

    def _mv(self, src: Parts, dst: Parts) -> None:
        from_path, to_path = self._relpath(src), self._relpath(dst)
        params = _encode({"from_path": from_path, "to_path": to_path, "missing_ok": False})
        reply = self.transport.request("POST", "mv", params)
        if reply.status == 404 and reply.resent and self._exists(dst):
            return  # the first attempt moved it before the connection dropped
        _check(reply, from_path, self.base_uri)

    def _exists(self, parts: Parts) -> bool:
        try:
            return bool(parts) and parts[-1] in self._ls(parts[:-1])
        except (FileNotFoundError, NotADirectoryError):
            return False

    def _walk_files(self, max_depth: int | None) -> Iterator[str]:
        relpath = join_parts(self.parts)
        params: dict[str, Any] = {"path": relpath}
        if max_depth is not None:
            params["max_depth"] = max_depth
        return iter(_field(self._call("GET", "walk", relpath, **params), "body", list, relpath))


def _encode(params: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters as the protocol wants them: booleans are "true" or ""."""
    encoded = {}
    for name, value in params.items():
        if isinstance(value, bool):
            value = "true" if value else ""
        encoded[name] = str(value)
    return encoded


def _json(body: bytes, relpath: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise ProtocolError(f"The server's answer for {relpath!r} is not JSON") from None


def _field(answer: Any, name: str, kind: type | tuple[type, ...], relpath: str) -> Any:
    """``answer[name]``, checked to be of the type the protocol promises."""
    value = answer.get(name) if isinstance(answer, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProtocolError(f"The server's answer for {relpath!r} has no valid {name!r}")
    return value


def _check(reply: Reply, relpath: str, base_uri: str) -> None:
    """Raise the exception matching an error status (404 is FileNotFoundError)."""
    status = reply.status
    if 200 <= status < 300:
        return
    if status == 404:
        raise path_error(errno.ENOENT, relpath)
    text = reply.body.decode("utf-8", "replace").strip()[:200]
    code = reply.headers.get("X-Lakota-Errno")
    if status == 409 and code is not None:
        raise path_error(_errno(code, relpath), relpath)
    if status in (401, 403):
        hint = ": give a token (?token=... in the URI)" if status == 401 else f" for {relpath!r}"
        raise PermissionError(errno.EACCES, f"{text} (HTTP {status}) at {base_uri}{hint}")
    raise StorageError(f"HTTP {status} for {relpath!r}: {text}")


def _errno(header: str, relpath: str) -> int:
    """The errno a 409 answer carries; a malformed or unknown one breaks the protocol."""
    if not header.isascii() or not header.isdigit() or len(header) > 4:
        raise ProtocolError(f"Invalid X-Lakota-Errno header {header!r} for {relpath!r}")
    code = int(header)
    if code not in errno.errorcode:
        raise ProtocolError(f"Unknown errno {code} in the X-Lakota-Errno header for {relpath!r}")
    return code
