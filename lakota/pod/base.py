"""The abstract storage interface shared by every backend, path safety and `POD.from_uri`."""

from __future__ import annotations

import importlib
import io
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import PurePath, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from lakota.errors import UnsafePathError
from lakota.utils import logger

Parts = tuple[str, ...]
PathLike = str | os.PathLike


def split_path(relpath: PathLike) -> Parts:
    """Normalise a relative ``/``-separated path into its parts (``()`` is the root).

    ``.`` and ``a/..`` are resolved, one trailing ``/`` is tolerated and ``""`` is the root.
    Absolute paths, NUL characters, empty components and ``..`` above the root raise
    `UnsafePathError`.
    """
    text = os.fspath(relpath)
    if not isinstance(text, str):
        raise TypeError(f"Storage paths are strings, not {type(text).__name__}: {text!r}")
    if "\x00" in text:
        raise UnsafePathError(f"NUL character in path {text!r}")
    if text.startswith("/"):
        raise UnsafePathError(f"Absolute path {text!r} is not allowed, use a relative path")
    pieces = text.removesuffix("/").split("/") if text else []
    parts: list[str] = []
    for piece in pieces:
        if piece == "":
            raise UnsafePathError(f"Empty component in path {text!r}")
        if piece == "..":
            if not parts:
                raise UnsafePathError(f"Path {text!r} leaves the root of its POD")
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return tuple(parts)


def join_parts(parts: Parts) -> str:
    """Inverse of `split_path`: ``"a/b"``, or ``"."`` for the root."""
    return "/".join(parts) or "."


def path_error(code: int, path: str) -> OSError:
    """An `OSError` of the subclass matching `code` (FileNotFoundError for ENOENT...)."""
    return OSError(code, os.strerror(code), path)


class POD(ABC):
    """A folder-like storage: files addressed by relative paths, created with `from_uri`.

    Public methods validate paths, log and convert modes, then call the ``_``-prefixed
    hooks that each backend implements on normalised path parts.
    """

    protocol: str
    path: PurePath

    # Reads are bound by the CPU (decoding, hashing) rather than by waiting on storage:
    # they run on the pool sized to the cores. Remote backends wait, and keep it False.
    cpu_bound_reads = False
    # Storage on this machine (a folder, memory): trusted, its reads are not checked
    # against their digests in the default verification mode (`utils.verify_reads`).
    local_storage = False

    @staticmethod
    def from_uri(uri: PathLike | list | tuple | None = None, **kwargs: Any) -> POD:
        """Build a POD from a URI, a plain path or a list of them (a chain of caches).

        Extra keyword arguments go to the backend's constructor (for a list, to the last
        one, the remote end of the chain).
        """
        if isinstance(uri, (list, tuple)):
            return _chain(uri, kwargs)
        if uri is None:
            uri = ""
        uri = os.fspath(uri)
        if not isinstance(uri, str):
            raise TypeError(f"A POD URI must be a string, not {type(uri).__name__}")
        if uri in ("", ":memory:"):
            return _memory_pod("memory://", kwargs)
        scheme, sep, rest = uri.partition("://")
        if not sep:
            return _file_pod(uri, kwargs)
        builder = _BUILDERS.get(scheme.lower())
        if builder is None:
            raise ValueError(f'Protocol "{scheme}" not supported in "{redact_uri(uri)}"')
        return builder(uri, kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def cd(self, *parts: PathLike) -> POD:
        """Sub-POD rooted at the joined relative path (no I/O)."""
        return self._cd(split_path("/".join(os.fspath(part) for part in parts)))

    def __truediv__(self, part: PathLike) -> POD:
        return self.cd(part)

    def ls(self, relpath: PathLike = ".", missing_ok: bool = False) -> list[str]:
        """Names of the files and folders directly under `relpath`."""
        parts = split_path(relpath)
        logger.debug("ls %r %s", self, join_parts(parts))
        try:
            return self._ls(parts)
        except FileNotFoundError:
            if missing_ok:
                return []
            raise

    def read(self, relpath: PathLike, mode: str = "rb") -> bytes | str:
        """Content of a file: bytes, or text for ``mode="r"``."""
        if mode not in ("rb", "r"):
            raise ValueError(f'Unsupported read mode {mode!r}, use "rb" or "r"')
        parts = split_path(relpath)
        logger.debug("read %r %s", self, join_parts(parts))
        data = self._read(parts)
        return data.decode("utf-8") if mode == "r" else data

    def open(self, relpath: PathLike) -> BinaryIO:
        """A file opened for binary reading, to stream files too large to hold in memory.

        Backends that can stream override `_open`; the others read the whole file.
        """
        parts = split_path(relpath)
        logger.debug("open %r %s", self, join_parts(parts))
        return self._open(parts)

    def write(
        self, relpath: PathLike, data: Any, mode: str = "wb", force: bool = False
    ) -> int | None:
        """Write a file, creating its folders; None if it exists and `force` is false."""
        if mode == "w":
            payload = data.encode("utf-8")
        elif mode == "wb":
            payload = data if isinstance(data, bytes) else memoryview(data).tobytes()
        else:
            raise ValueError(f'Unsupported write mode {mode!r}, use "wb" or "w"')
        parts = split_path(relpath)
        logger.debug("write %r %s (%d bytes)", self, join_parts(parts), len(payload))
        return self._write(parts, payload, force)

    def isdir(self, relpath: PathLike) -> bool:
        """True if `relpath` is a folder."""
        return self._isdir(split_path(relpath))

    def change_token(self, relpath: PathLike = ".") -> object | None:
        """A cheap value that changes whenever the entries of folder `relpath` change.

        None means the backend cannot tell, and callers must list the folder.
        """
        return None

    def isfile(self, relpath: PathLike) -> bool:
        """True if `relpath` is a file."""
        return self._isfile(split_path(relpath))

    def rm(
        self, relpath: PathLike = ".", recursive: bool = False, missing_ok: bool = False
    ) -> None:
        """Remove a file, or a folder (a non-empty one only with `recursive`)."""
        parts = split_path(relpath)
        logger.debug("rm %r %s (recursive=%s)", self, join_parts(parts), recursive)
        try:
            self._rm(parts, recursive)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def rm_many(
        self, paths: Iterable[PathLike], recursive: bool = False, missing_ok: bool = False
    ) -> None:
        """`rm` each path in turn."""
        for relpath in paths:
            self.rm(relpath, recursive=recursive, missing_ok=missing_ok)

    def mv(self, from_path: PathLike, to_path: PathLike, missing_ok: bool = False) -> None:
        """Move or rename a file or folder, creating the parents of the destination."""
        src, dst = split_path(from_path), split_path(to_path)
        logger.debug("mv %r %s -> %s", self, join_parts(src), join_parts(dst))
        try:
            self._mv(src, dst)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def purge_temporary(self, max_age: float) -> int:
        """Delete what writes interrupted by a crash left behind, once older than `max_age`
        seconds; returns how many files went. Backends whose uploads are atomic have none."""
        return 0

    def walk(self, max_depth: int | None = None) -> Iterator[str]:
        """File paths under the POD. Top-level entries have depth 1; files deeper than
        `max_depth` are skipped and folders at depth >= `max_depth` are not entered."""
        logger.debug("walk %r (max_depth=%s)", self, max_depth)
        if max_depth is not None and max_depth < 1:
            return iter(())
        return self._walk_files(max_depth)

    def _walk_files(self, max_depth: int | None) -> Iterator[str]:
        """Backends with a cheaper listing than the folder-by-folder scan override this."""
        return self._walk_tree((), 1, max_depth)

    def _walk_tree(self, parts: Parts, depth: int, max_depth: int | None) -> Iterator[str]:
        for name, is_dir in self._scan(parts):
            child = (*parts, name)
            if not is_dir:
                yield "/".join(child)
            elif max_depth is None or depth < max_depth:
                yield from self._walk_tree(child, depth + 1, max_depth)

    def _scan(self, parts: Parts) -> list[tuple[str, bool]]:
        """Sorted ``(name, is_folder)`` entries of a folder, ``[]`` if it is missing.

        This generic version costs one `_isdir` per entry: backends override it."""
        try:
            names = sorted(self._ls(parts))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [(name, self._isdir((*parts, name))) for name in names]

    @abstractmethod
    def _cd(self, parts: Parts) -> POD: ...

    @abstractmethod
    def _ls(self, parts: Parts) -> list[str]: ...

    @abstractmethod
    def _read(self, parts: Parts) -> bytes: ...

    def _open(self, parts: Parts) -> BinaryIO:
        return io.BytesIO(self._read(parts))

    @abstractmethod
    def _write(self, parts: Parts, data: bytes, force: bool) -> int | None: ...

    @abstractmethod
    def _isdir(self, parts: Parts) -> bool: ...

    @abstractmethod
    def _isfile(self, parts: Parts) -> bool: ...

    @abstractmethod
    def _rm(self, parts: Parts, recursive: bool) -> None: ...

    @abstractmethod
    def _mv(self, src: Parts, dst: Parts) -> None: ...


def redact_uri(uri: str) -> str:
    """`uri` without its query string and user info, safe to show in errors and logs."""
    split = urlsplit(uri)
    netloc = split.netloc.rpartition("@")[2]
    query = "?…" if split.query else ""
    return f"{split.scheme}://{netloc}{split.path}{query}"


def _query_params(query: str) -> dict[str, str]:
    """Decode ``a=1&b=2`` without turning ``+`` into a space (secrets may contain ``+``)."""
    params = {}
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        params[unquote(key)] = unquote(value)
    return params


def _check_params(params: dict[str, str], allowed: Iterable[str], uri: str) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"Unknown parameter(s) {', '.join(unknown)} in {redact_uri(uri)!r}")


def _backend(module: str, name: str, error: type[Exception], hint: str) -> type:
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise error(f"{hint} ({exc})") from exc


def _chain(uris: list | tuple, kwargs: dict[str, Any]) -> POD:
    from lakota.pod.cache import CachePOD

    if not uris:
        raise ValueError("An empty list of URIs does not describe a POD")
    if len(uris) == 1:
        return POD.from_uri(uris[0], **kwargs)
    return CachePOD(local=POD.from_uri(uris[0]), remote=POD.from_uri(uris[1:], **kwargs))


def _memory_pod(uri: str, kwargs: dict[str, Any]) -> POD:
    from lakota.pod.memory import MemPOD

    split = urlsplit(uri)
    params = _query_params(split.query)
    _check_params(params, ["lru_size"], uri)
    options: dict[str, Any] = {}
    if "lru_size" in params:
        try:
            options["lru_size"] = int(params["lru_size"])
        except ValueError:
            raise ValueError(f"lru_size must be an integer in {uri!r}") from None
    return MemPOD(f"{split.netloc}{split.path}" or ".", **{**options, **kwargs})


def _file_pod(path: str, kwargs: dict[str, Any]) -> POD:
    from lakota.pod.file import FilePOD

    if not path:
        raise ValueError("A file URI needs a path")
    if path.startswith("/"):  # "file:////abs" names /abs, not //abs
        path = "/" + path.lstrip("/")
    return FilePOD(path, **kwargs)


def _file_uri(uri: str, kwargs: dict[str, Any]) -> POD:
    """``file://rel/path`` is relative, ``file:///abs`` and ``file:////abs`` are absolute."""
    return _file_pod(uri.partition("://")[2], kwargs)


def _s3_pod(uri: str, kwargs: dict[str, Any]) -> POD:
    """``s3://[KEY:SECRET@][host:port]/bucket[/prefix][?options]``: an endpoint in the
    URI is reached over plain http, or over https with the ``s3+https://`` scheme."""
    s3pod = _backend(
        "lakota.pod.s3", "S3POD", ValueError, "s3:// needs the s3 extra: pip install 'lakota[s3]'"
    )
    split = urlsplit(uri)
    params: dict[str, Any] = _query_params(split.query)
    _check_params(params, ["profile", "verify", "key", "secret", "token"], uri)
    if "verify" in params:
        params["verify"] = _verify_option(params["verify"])
    params.update(_s3_user_info(split, params, uri))
    bucket_path = split.path.strip("/")
    if not bucket_path:
        raise ValueError(f"No bucket in {redact_uri(uri)!r}, expected s3://[endpoint]/bucket")
    path = PurePosixPath(*split_path(bucket_path))
    host = split.netloc.rpartition("@")[2]
    if split.scheme.lower() == "s3+https":
        if not host:
            raise ValueError(
                f"s3+https:// needs an endpoint (s3+https://host:port/bucket): {redact_uri(uri)!r}"
            )
        if "endpoint_url" in kwargs:
            raise ValueError("Give the endpoint once: in the URI or as endpoint_url=, not both")
        return s3pod(path, endpoint_url=f"https://{host}", **{**params, **kwargs})
    return s3pod(path, netloc=host or None, **{**params, **kwargs})


def _verify_option(value: str) -> bool | str:
    """``?verify=``: false/0/no/off, true/1/yes/on, or the path of a CA bundle."""
    if value.lower() in ("false", "0", "no", "off"):
        return False
    return True if value.lower() in ("true", "1", "yes", "on", "") else value


def _s3_user_info(split: Any, params: dict[str, Any], uri: str) -> dict[str, str]:
    """``KEY:SECRET@`` before the endpoint, as the `key` and `secret` options."""
    if "@" not in split.netloc:
        return {}
    user_info = split.netloc.rpartition("@")[0]
    key, colon, secret = user_info.partition(":")
    if not (key and colon and secret):
        raise ValueError(f"Credentials in an s3 URI are KEY:SECRET@host: {redact_uri(uri)!r}")
    if "key" in params or "secret" in params:
        raise ValueError(
            f"Give the credentials once, before the host or as ?key=&secret=: {redact_uri(uri)!r}"
        )
    return {"key": unquote(key), "secret": unquote(secret)}


def _http_pod(uri: str, kwargs: dict[str, Any]) -> POD:
    httppod = _backend(
        "lakota.pod.http", "HttpPOD", ImportError, "http(s):// needs requests: pip install requests"
    )
    split = urlsplit(uri)
    params = _query_params(split.query)
    headers_given = [name for name in params if name.startswith("header-")]
    _check_params(params, ["token", "cafile", *headers_given], uri)
    token = params.pop("token", None)
    cafile = params.pop("cafile", None)
    headers = {name.removeprefix("header-"): value for name, value in params.items()}
    if token:  # ?token=T is short for ?header-Authorization=Bearer%20T
        headers["Authorization"] = f"Bearer {token}"
    options: dict[str, Any] = {"headers": headers} if headers else {}
    if cafile:
        options["cafile"] = cafile
    base_uri = f"{split.scheme}://{split.netloc}{split.path.rstrip('/')}/"
    return httppod(base_uri, **{**options, **kwargs})


def _ssh_pod(uri: str, kwargs: dict[str, Any]) -> POD:
    raise NotImplementedError(f"ssh:// storage is not supported: {redact_uri(uri)!r}")


_BUILDERS = {
    "memory": _memory_pod,
    "file": _file_uri,
    "s3": _s3_pod,
    "s3+https": _s3_pod,
    "http": _http_pod,
    "https": _http_pod,
    "ssh": _ssh_pod,
}
