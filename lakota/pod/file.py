"""Local folder storage with atomic writes: `FilePOD`.

A FilePOD never follows a symbolic link out of its root folder (the folder it was
created on; sub-PODs of `cd` share it): the components of every path below the root are
checked (one ``lstat`` each), a path through a link is resolved, and one that lands
outside raises `UnsafePathError`. Links between places inside the root still work, and
listings skip links that lead outside. Files are read with ``O_NOFOLLOW``, so a file
swapped for a link after the check is not followed either.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import shutil
import stat
import time
import uuid
from pathlib import Path
from typing import BinaryIO

from lakota.errors import UnsafePathError
from lakota.pod.base import POD, Parts, PathLike, path_error, split_path
from lakota.utils import settings

# Temporary files are staged next to their target. Data and revision names are hex,
# so they can never start with this prefix; ls and walk hide these files.
TMP_PREFIX = ".tmp-"

# errno values of os.link on file systems without hard links
_NO_HARD_LINKS = {
    errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS
}  # fmt: skip


class FilePOD(POD):
    """A POD stored in a local folder (``~`` is expanded); the folder need not exist yet."""

    protocol = "file"
    cpu_bound_reads = True
    local_storage = True

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path).expanduser()
        self.root = self.path  # the folder no path may leave, shared by sub-PODs
        self._prefix: Parts = ()  # where `path` is below `root`

    @property
    def size(self) -> int:
        """Total size in bytes of the files under the POD."""
        return sum(self.path.joinpath(name).stat().st_size for name in self.walk())

    def _abs(self, parts: Parts) -> Path:
        """The path of `parts`, once checked that following its links stays in the root."""
        self._real(parts)
        return self.path.joinpath(*parts)

    def _real(self, parts: Parts) -> str:
        """The path of `parts`, resolved if a link lies on the way (then checked to stay in
        the root: `UnsafePathError` otherwise). Costs one ``lstat`` per component."""
        path = os.fspath(self.root)
        for part in self._prefix + parts:
            path = f"{path}{os.sep}{part}"
            try:
                is_link = stat.S_ISLNK(os.lstat(path).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                break  # nothing exists below, so no link either
            if is_link:
                return self._resolve_inside(self.path.joinpath(*parts))
        return os.path.join(self.path, *parts)

    def _resolve_inside(self, path: PathLike) -> str:
        """`path` with every link resolved; `UnsafePathError` if that leaves the root."""
        real = os.path.realpath(path)
        if not _is_within(real, os.path.realpath(self.root)):
            raise UnsafePathError(
                f"Path {os.fspath(path)!r} leads out of {os.fspath(self.root)!r} "
                "through a symbolic link"
            )
        return real

    def _inside(self, entry: os.DirEntry) -> bool:
        """False for a link that leads out of the root (listings skip those)."""
        if not entry.is_symlink():
            return True
        return _is_within(os.path.realpath(entry.path), os.path.realpath(self.root))

    def _cd(self, parts: Parts) -> FilePOD:
        sub = copy.copy(self)  # not FilePOD(...): a folder named "~" must not expand
        sub.path = self._abs(parts)
        sub._prefix = self._prefix + parts
        return sub

    def _ls(self, parts: Parts) -> list[str]:
        with os.scandir(self._abs(parts)) as entries:
            return [
                entry.name
                for entry in entries
                if not entry.name.startswith(TMP_PREFIX) and self._inside(entry)
            ]

    def _scan(self, parts: Parts) -> list[tuple[str, bool]]:
        try:
            return self._scan_strict(parts)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _scan_strict(self, parts: Parts) -> list[tuple[str, bool]]:
        with os.scandir(self._abs(parts)) as entries:
            found = [
                (entry.name, entry.is_dir())
                for entry in entries
                if not entry.name.startswith(TMP_PREFIX) and self._inside(entry)
            ]
        return sorted(found)

    def change_token(self, relpath: PathLike = ".") -> object | None:
        """The folder's modification time and inode (a new entry or a rename changes it)."""
        try:
            info = os.stat(self._abs(split_path(relpath)))
        except (OSError, UnsafePathError):
            return None
        return (info.st_mtime_ns, info.st_ino)

    def _read(self, parts: Parts) -> bytes:
        with self._open(parts) as stream:
            return stream.read()

    def _open(self, parts: Parts) -> BinaryIO:
        fd = os.open(self._real(parts), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        return open(fd, "rb")

    def _write(self, parts: Parts, data: bytes, force: bool) -> int | None:
        path = os.fspath(self._abs(parts))
        if os.path.isdir(path):
            raise path_error(errno.EISDIR, path)
        if not force and os.path.lexists(path):
            return None
        tmp = _stage(os.path.dirname(path), data)
        try:
            if force:
                os.replace(tmp, path)
            elif not _publish_new(tmp, path):
                return None
            _sync_folder(os.path.dirname(path))  # the new name survives a power cut
            return len(data)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # left after a hard link, or after a failure

    def _isdir(self, parts: Parts) -> bool:
        return self._abs(parts).is_dir()

    def _isfile(self, parts: Parts) -> bool:
        return self._abs(parts).is_file()

    def _rm(self, parts: Parts, recursive: bool) -> None:
        path = self._abs(parts)
        if not path.is_dir():
            path.unlink()
        elif recursive:
            shutil.rmtree(path)
        else:
            path.rmdir()  # OSError (ENOTEMPTY) when not empty

    def _mv(self, src: Parts, dst: Parts) -> None:
        source, target = self._abs(src), self._abs(dst)
        if not os.path.lexists(source):
            raise path_error(errno.ENOENT, str(source))
        _make_folders(target.parent)
        os.replace(source, target)
        _sync_folder(target.parent)
        if source.parent != target.parent:
            _sync_folder(source.parent)

    def purge_temporary(self, max_age: float) -> int:
        """Delete the temporary files of writes that never finished (a killed process)."""
        deadline = time.time() - max_age
        purged = 0
        for folder, _, names in os.walk(self.path):
            for name in names:
                if name.startswith(TMP_PREFIX):
                    purged += _unlink_older(Path(folder, name), deadline)
        return purged


def _is_within(real: str, root: str) -> bool:
    return real == root or real.startswith(os.path.join(root, ""))


def _unlink_older(path: Path, deadline: float) -> bool:
    """Delete `path` if it was last modified before `deadline`; True if it did."""
    try:
        if path.stat().st_mtime >= deadline:
            return False
        path.unlink()
    except FileNotFoundError:  # its write finished (or another purge got it) meanwhile
        return False
    return True


def _stage(folder: str, data: bytes) -> str:
    """Write `data` durably to a new temporary file in `folder` (created with the umask,
    like the folder itself if missing)."""
    tmp = os.path.join(folder, f"{TMP_PREFIX}{uuid.uuid4().hex}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileNotFoundError:
        _make_folders(Path(folder))
        fd = os.open(tmp, flags, 0o666)
    try:
        with open(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            if settings.fsync:
                os.fsync(stream.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def _make_folders(folder: Path) -> None:
    """Create `folder` and its missing parents; with `settings.fsync`, the entry of each
    new folder is made durable in its parent before anything is written below it."""
    missing = []
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a concurrent writer made it
            new.mkdir()
        _sync_folder(new.parent)


def _sync_folder(folder: PathLike) -> None:
    """With `settings.fsync`, flush the entries of `folder` (names made by link, rename or
    mkdir are only durable once their folder is). File systems that cannot are skipped."""
    if not settings.fsync:
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _publish_new(tmp: str, path: str) -> bool:
    """Give `tmp`'s content the name `path` unless it exists; False if it did.

    A hard link fails atomically when the target exists, so concurrent writers of the
    same path never overwrite each other. Without hard links, fall back to
    check-then-replace (files are content-addressed, so a lost race is harmless).
    """
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(path):
            return False
        os.replace(tmp, path)
    return True
