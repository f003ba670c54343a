"""In-process storage: `MemPOD`, optionally an LRU cache bounded in bytes."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import PurePosixPath

from lakota.pod.base import POD, Parts, PathLike, join_parts, path_error, split_path


class MemStore:
    """The files of a MemPOD and of all its sub-PODs, keyed by tuples of path parts.

    `children` maps each folder to the names it holds; the root folder ``()`` always
    exists. Writing a file creates its folders, and they stay when their files go, as
    on a file system (a folder goes with `rm` or `mv` of the folder itself). With
    `lru_size`, new and recently read files go to the front generation; when its total
    size exceeds ``lru_size // 2`` it becomes the back generation and the previous back
    is dropped (with the folders its files leave empty).
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
            if self.children[key] and not recursive:
                raise _error(errno.ENOTEMPTY, key)
            for file_key in self._files_under(key):
                self._drop(file_key)
            self._forget_folder(key)

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
            if not is_file:
                self._forget_folder(src)
                self._add_folder(dst)
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

    def _add_folder(self, folder: Parts) -> None:
        """Create a folder and its parents (existing ones are kept)."""
        for end in range(len(folder)):
            self.children.setdefault(folder[:end], set()).add(folder[end])
        self.children.setdefault(folder, set())

    def _put(self, key: Parts, data: bytes) -> None:
        self.back.pop(key, None)
        previous = self.front.get(key, b"")
        self.front[key] = data
        self.front_size += len(data) - len(previous)
        self._add_folder(key[:-1])
        self.children[key[:-1]].add(key[-1])
        if self.lru_size is not None and self.front_size > self.lru_size // 2:
            for evicted in self.back:
                self._unindex(evicted)
            self.back, self.front, self.front_size = self.front, {}, 0

    def _drop(self, key: Parts) -> bytes:
        """Remove a file (its folder stays)."""
        if key in self.front:
            data = self.front.pop(key)
            self.front_size -= len(data)
        else:
            data = self.back.pop(key)
        self.children[key[:-1]].discard(key[-1])
        return data

    def _forget_folder(self, folder: Parts) -> None:
        """Remove a folder whose files are gone, with its sub-folders (the root stays)."""
        stack = [folder]
        while stack:
            key = stack.pop()
            stack.extend((*key, name) for name in self.children.pop(key, ()))
        if folder:
            self.children[folder[:-1]].discard(folder[-1])
        else:
            self.children[()] = set()

    def _unindex(self, key: Parts) -> None:
        """Forget an evicted file, and the folders it leaves empty (except the root)."""
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
    local_storage = True

    def __init__(
        self, path: PathLike = ".", store: MemStore | None = None, lru_size: int | None = None
    ) -> None:
        if store is not None and lru_size is not None:
            raise ValueError("Give lru_size to the MemStore, not to a MemPOD sharing it")
        self.store = store if store is not None else MemStore(lru_size)
        text = os.fspath(path)
        if isinstance(text, str):  # a memory store has no outside: "/" is its root
            text = text.lstrip("/")
        self.parts = split_path(text)
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
