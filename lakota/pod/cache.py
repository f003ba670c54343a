"""A local POD caching a remote one: `CachePOD`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import PurePath

from lakota.pod.base import POD, Parts, join_parts
from lakota.utils import logger


class CachePOD(POD):
    """Reads fill `local` from `remote`; listings go to `remote`; changes go to both.

    This is safe because lakota files are immutable (content-addressed or digest-named).
    """

    def __init__(self, local: POD, remote: POD) -> None:
        self.local = local
        self.remote = remote
        self.protocol = f"{local.protocol}+{remote.protocol}"

    @property
    def path(self) -> PurePath:
        """The remote's root path."""
        return self.remote.path

    @property
    def cpu_bound_reads(self) -> bool:
        return self.remote.cpu_bound_reads

    def __repr__(self) -> str:
        return f"CachePOD(local={self.local!r}, remote={self.remote!r})"

    def _cd(self, parts: Parts) -> CachePOD:
        relpath = join_parts(parts)
        return CachePOD(self.local.cd(relpath), self.remote.cd(relpath))

    def _ls(self, parts: Parts) -> list[str]:
        return self.remote.ls(join_parts(parts))

    def _walk_files(self, max_depth: int | None) -> Iterator[str]:
        return self.remote.walk(max_depth)

    def _read(self, parts: Parts) -> bytes:
        relpath = join_parts(parts)
        try:
            return self.local.read(relpath)
        except FileNotFoundError:
            data = self.remote.read(relpath)
        self.local.write(relpath, data, force=True)
        return data

    def _write(self, parts: Parts, data: bytes, force: bool) -> int | None:
        relpath = join_parts(parts)
        self.local.write(relpath, data, force=force)
        return self.remote.write(relpath, data, force=force)

    def _isdir(self, parts: Parts) -> bool:
        return self.remote.isdir(join_parts(parts))

    def _isfile(self, parts: Parts) -> bool:
        return self.remote.isfile(join_parts(parts))

    def _rm(self, parts: Parts, recursive: bool) -> None:
        relpath = join_parts(parts)
        try:
            self.remote.rm(relpath, recursive=recursive)
        finally:  # a stale local copy must go even if the remote one is already gone
            _quietly(self.local.rm, relpath, recursive=recursive, missing_ok=True)

    def purge_temporary(self, max_age: float) -> int:
        return self.local.purge_temporary(max_age) + self.remote.purge_temporary(max_age)

    def _mv(self, src: Parts, dst: Parts) -> None:
        self.remote.mv(join_parts(src), join_parts(dst))
        _quietly(self.local.mv, join_parts(src), join_parts(dst), missing_ok=True)


def _quietly(action: Callable[..., object], *args: object, **kwargs: object) -> None:
    """Run a change on the local cache; it is only a cache, so failures are logged only."""
    try:
        action(*args, **kwargs)
    except OSError as exc:
        logger.debug("Ignored local cache error: %s", exc)
