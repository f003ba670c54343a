"""Local folder storage with atomic writes: `FilePOD`."""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import shutil
import time
import uuid
from pathlib import Path

from lakota.pod.base import POD, Parts, PathLike, path_error, split_path
from lakota.utils import settings

# Temporary files are staged next to their target. Data and revision names are hex,
# so they can never start with this prefix; ls and walk hide these files.
TMP_PREFIX = ".tmp-"

# errno values of os.link on file systems without hard links
_NO_HARD_LINKS = {
    errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS
}


class FilePOD(POD):
    """A POD stored in a local folder (``~`` is expanded); the folder need not exist yet."""

    protocol = "file"
    cpu_bound_reads = True
    local_storage = True

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path).expanduser()

    @property
    def size(self) -> int:
        """Total size in bytes of the files under the POD."""
        return sum(self.path.joinpath(name).stat().st_size for name in self.walk())

    def _abs(self, parts: Parts) -> Path:
        return self.path.joinpath(*parts)

    def _cd(self, parts: Parts) -> FilePOD:
        sub = copy.copy(self)  # not FilePOD(...): a folder named "~" must not expand
        sub.path = self._abs(parts)
        return sub

    def _ls(self, parts: Parts) -> list[str]:
        return [name for name in os.listdir(self._abs(parts)) if not name.startswith(TMP_PREFIX)]

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
                if not entry.name.startswith(TMP_PREFIX)
            ]
        return sorted(found)

    def change_token(self, relpath: PathLike = ".") -> object | None:
        """The folder's modification time and inode (a new entry or a rename changes it)."""
        try:
            stat = os.stat(self._abs(split_path(relpath)))
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_ino)

    def _read(self, parts: Parts) -> bytes:
        return self._abs(parts).read_bytes()

    def _write(self, parts: Parts, data: bytes, force: bool) -> int | None:
        path = os.path.join(self.path, *parts)
        if os.path.isdir(path):
            raise path_error(errno.EISDIR, path)
        if not force and os.path.lexists(path):
            return None
        tmp = _stage(os.path.dirname(path), data)
        try:
            if force:
                os.replace(tmp, path)
                return len(data)
            return len(data) if _publish_new(tmp, path) else None
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
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

    def purge_temporary(self, max_age: float) -> int:
        """Delete the temporary files of writes that never finished (a killed process)."""
        deadline = time.time() - max_age
        purged = 0
        for folder, _, names in os.walk(self.path):
            for name in names:
                if name.startswith(TMP_PREFIX):
                    purged += _unlink_older(Path(folder, name), deadline)
        return purged


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
        os.makedirs(folder, exist_ok=True)
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
