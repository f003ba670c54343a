"""In-process storage: `MemPOD`, optionally an LRU cache bounded in bytes."""

from __future__ import annotations

import errno
import threading
from pathlib import PurePosixPath

from lakota.pod.base import POD, Parts, PathLike, join_parts, path_error, split_path


class MemStore:
    """The files of a MemPOD and of all its sub-PODs, keyed by tuples of path parts.

    Folders are implicit: `children` maps each folder holding files to the names it
    holds, and the root folder ``()`` always exists. With `lru_size`, new and recently
    read files go to the front generation; when its total size exceeds
    ``lru_size // 2`` it becomes the back generation and the previous back is dropped.
    Every public method holds the lock.
    """

    def __init__(self, lru_size: int | None = None) -> None:
        if lru_size is not None and (not isinstance(lru_size, int) or lru_size < 1):
            raise ValueError(f"lru_size must be a positive integer, not {lru_size!r}")
        self.lru_size = lru_size
        self.lock = threading.Lock()
        self.front: dict[Parts, bytes] = {}
        self.back: dict[Parts, bytes] = {}
        self.front_size = 0
        self.children: dict[Parts, set[str]] = {(): set()}

    def isfile(self, key: Parts) -> bool:
        with self.lock:
            return self._isfile(key)

    def isdir(self, key: Parts) -> bool:
        with self.lock:
            return key in self.children

    def ls(self, key: Parts) -> list[str]:
        with self.lock:
            if key not in self.children:
                raise _error(errno.ENOTDIR if self._isfile(key) else errno.ENOENT, key)
            return sorted(self.children[key])

    def scan(self, key: Parts) -> list[tuple[str, bool]]:
        """Sorted ``(name, is_folder)`` entries of a folder, ``[]`` if it is missing."""
        with self.lock:
            names = sorted(self.children.get(key, ()))
            return [(name, (*key, name) in self.children) for name in names]

    def read(self, key: Parts) -> bytes:
        with self.lock:
            if key in self.front:
                return self.front[key]
            if key in self.back:
                data = self.back.pop(key)
                self._put(key, data)
                return data
            raise _error(errno.EISDIR if key in self.children else errno.ENOENT, key)

    def write(self, key: Parts, data: bytes, force: bool) -> int | None:
        with self.lock:
            if key in self.children:
                raise _error(errno.EISDIR, key)
            if self._isfile(key) and not force:
                return None
            self._check_parents(key)
            self._put(key, data)
            return len(data)

    def rm(self, key: Parts, recursive: bool) -> None:
        with self.lock:
            if self._isfile(key):
                self._drop(key)
                return
            if key not in self.children:
                raise _error(errno.ENOENT, key)
            files = self._files_under(key)
            if files and not recursive:
                raise _error(errno.ENOTEMPTY, key)
            for file_key in files:
                self._drop(file_key)

    def mv(self, src: Parts, dst: Parts) -> None:
        with self.lock:
            is_file = self._isfile(src)
            if not is_file and src not in self.children:
                raise _error(errno.ENOENT, src)
            if src == dst:
                return
            if dst[: len(src)] == src:
                raise _error(errno.EINVAL, dst)
            if dst in self.children:
                raise _error(errno.EISDIR if is_file else errno.ENOTEMPTY, dst)
            if not is_file and self._isfile(dst):
                raise _error(errno.ENOTDIR, dst)
            self._check_parents(dst)
            sources = [src] if is_file else self._files_under(src)
            # Drop everything before putting back: a rotation must not evict unmoved files
            moved = [((*dst, *key[len(src) :]), self._drop(key)) for key in sources]
            for key, data in moved:
                self._put(key, data)

    def _isfile(self, key: Parts) -> bool:
        return key in self.front or key in self.back

    def _check_parents(self, key: Parts) -> None:
        for end in range(1, len(key)):
            if self._isfile(key[:end]):
                raise _error(errno.ENOTDIR, key[:end])

    def _files_under(self, folder: Parts) -> list[Parts]:
        files, stack = [], [folder]
        while stack:
            key = stack.pop()
            for name in self.children[key]:
                child = (*key, name)
                (stack if child in self.children else files).append(child)
        return files

    def _put(self, key: Parts, data: bytes) -> None:
        self.back.pop(key, None)
        previous = self.front.get(key, b"")
        self.front[key] = data
        self.front_size += len(data) - len(previous)
        for end in range(len(key)):
            self.children.setdefault(key[:end], set()).add(key[end])
        if self.lru_size is not None and self.front_size > self.lru_size // 2:
            for evicted in self.back:
                self._unindex(evicted)
            self.back, self.front, self.front_size = self.front, {}, 0

    def _drop(self, key: Parts) -> bytes:
        if key in self.front:
            data = self.front.pop(key)
            self.front_size -= len(data)
        else:
            data = self.back.pop(key)
        self._unindex(key)
        return data

    def _unindex(self, key: Parts) -> None:
        """Forget a file in its folder, and the folders left empty (except the root)."""
        for end in range(len(key), 0, -1):
            parent = key[: end - 1]
            names = self.children[parent]
            names.discard(key[end - 1])
            if names or not parent:
                return
            del self.children[parent]


def _error(code: int, key: Parts) -> OSError:
    return path_error(code, join_parts(key))


class MemPOD(POD):
    """A POD kept in memory; all sub-PODs made with `cd` share the same `MemStore`."""

    protocol = "memory"
    cpu_bound_reads = True

    def __init__(
        self, path: PathLike = ".", store: MemStore | None = None, lru_size: int | None = None
    ) -> None:
        if store is not None and lru_size is not None:
            raise ValueError("Give lru_size to the MemStore, not to a MemPOD sharing it")
        self.store = store if store is not None else MemStore(lru_size)
        self.parts = split_path(path)
        self.path = PurePosixPath(*self.parts)

    def __repr__(self) -> str:
        lru = f", lru_size={self.store.lru_size}" if self.store.lru_size else ""
        return f"MemPOD({str(self.path)!r}{lru})"

    def _cd(self, parts: Parts) -> MemPOD:
        return MemPOD(join_parts(self.parts + parts), store=self.store)

    def _ls(self, parts: Parts) -> list[str]:
        return self.store.ls(self.parts + parts)

    def _scan(self, parts: Parts) -> list[tuple[str, bool]]:
        return self.store.scan(self.parts + parts)

    def _read(self, parts: Parts) -> bytes:
        return self.store.read(self.parts + parts)

    def _write(self, parts: Parts, data: bytes, force: bool) -> int | None:
        return self.store.write(self.parts + parts, data, force)

    def _isdir(self, parts: Parts) -> bool:
        return self.store.isdir(self.parts + parts)

    def _isfile(self, parts: Parts) -> bool:
        return self.store.isfile(self.parts + parts)

    def _rm(self, parts: Parts, recursive: bool) -> None:
        self.store.rm(self.parts + parts, recursive)

    def _mv(self, src: Parts, dst: Parts) -> None:
        self.store.mv(self.parts + src, self.parts + dst)
