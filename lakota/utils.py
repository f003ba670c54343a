"""Small shared helpers: settings, time and digest helpers, interval flags and the thread pool."""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from pathlib import PurePosixPath
from typing import Any

import numpy

logger = logging.getLogger("lakota")

default_hash = hashlib.sha1
hexhash_len = 40


@dataclass
class Settings:
    """Tunable knobs. Every reader looks them up at call time, so changes apply at once.

    `page_len` is the segment size of large writes and of defrag. Appends at the end of a
    series leave small segments behind; once `append_merge_count` of them (each shorter
    than `append_merge_len` rows) trail a series, the next append rewrites them as one.
    `fsync` makes local-folder writes durable before they are published (a power cut
    cannot leave a revision whose data was lost); turning it off speeds up writes of
    many small files, and a killed process still never leaves a partial file.
    `max_text_value_size` bounds what a text or object column may decode to, in bytes
    per value on average: a data file announcing more is refused as corrupted (a guard
    against decompression bombs in repositories from elsewhere; numbers are bounded by
    their item size).
    `verify_digests` says which data files reads check against their digests (see
    `verify_reads`): ``"remote"`` (the default) those read from S3, HTTP or through a
    cache, and every file pulled or pushed; ``"always"`` every one, local ones too;
    ``"never"`` none (undecodable files still raise). True and False mean always and
    never. `repo.check()` verifies everything whatever the setting.
    """

    threaded: bool = True
    debug: bool = False
    verify_ssl: bool = True
    embed_max_size: int = 1024
    page_len: int = 100_000
    defrag_max_chunk: int = 4
    timeout: int = 600
    max_threads: int = 10
    append_merge_count: int = 16
    append_merge_len: int = 10_000
    fsync: bool = True
    verify_digests: str | bool = "remote"  # which data files reads check, see above
    max_text_value_size: int = 64 * 1024
    author: str | None = None  # who writes, recorded with messages (see lakota.revinfo)


settings = Settings()

VERIFY_MODES = ("remote", "always", "never")


def verify_mode() -> str:
    """`settings.verify_digests` as one of `VERIFY_MODES` (True is always, False never)."""
    value = settings.verify_digests
    if value is True or value is False:
        return "always" if value else "never"
    if value not in VERIFY_MODES:
        raise ValueError(
            f"settings.verify_digests must be one of {', '.join(VERIFY_MODES)} "
            f"(or True/False), not {value!r}"
        )
    return value


def verify_reads(pod: Any) -> bool:
    """Whether data files read from `pod` are checked against their digests.

    What enters the machine is checked, local storage is trusted (as Git does): in the
    default ``"remote"`` mode, reads from a local folder or memory are not checked,
    reads from S3, HTTP or a cache chain are. Copies (pull, push) use `verify_copies`.
    """
    mode = verify_mode()
    return mode == "always" or (mode == "remote" and not pod.local_storage)


def verify_copies() -> bool:
    """Whether data files copied between repositories (pull, push) are checked."""
    return verify_mode() != "never"


def hextime(ts: float | None = None) -> str:
    """Milliseconds since the epoch as 11 lowercase hex digits (the revision clock)."""
    if ts is None:
        ts = time.time()
    return format(int(ts * 1000), "x").rjust(11, "0")


def hexdigest(*chunks: bytes) -> str:
    """SHA-1 of the concatenated chunks, as 40 lowercase hex characters."""
    digest = default_hash()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def encodable(text: str) -> bool:
    """True if `text` can be stored: it encodes to UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def hashed_path(digest: str, depth: int = 2) -> tuple[PurePosixPath, str]:
    """Split a digest into a folder (two characters per level) and a file name."""
    if not isinstance(digest, str) or len(digest) <= 2 * depth:
        raise ValueError(f"Digest too short to be hashed into a path: {digest!r}")
    parts = [digest[2 * i : 2 * i + 2] for i in range(depth)]
    return PurePosixPath(*parts), digest[2 * depth :]


def digest_path(digest: str) -> str:
    """Storage path of a data file: ``ab/cd/<36 hex>``."""
    folder, name = hashed_path(digest)
    return f"{folder}/{name}"


class Closed(enum.Flag):
    """Which bounds of an interval are included."""

    NONE = 0
    RIGHT = 1
    LEFT = 2
    BOTH = 3
    n = 0
    r = 1
    l = 2  # noqa: E741
    b = 3

    @classmethod
    def cast(cls, value: Closed | str) -> Closed:
        """Accept a member or a member name ("l", "LEFT", ...); names are case-sensitive."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise TypeError(f"closed must be a string or Closed, not {type(value).__name__}")
        try:
            return cls[value]
        except KeyError:
            raise KeyError(
                f"Invalid closed value {value!r}: use l, r, b, n or LEFT, RIGHT, BOTH, NONE"
            ) from None

    @property
    def short(self) -> str:
        return "nrlb"[self.value]

    @property
    def left(self) -> bool:
        return bool(self.value & 2)

    @property
    def right(self) -> bool:
        return bool(self.value & 1)

    def set_left(self, included: bool) -> Closed:
        return Closed((self.value & 1) | (2 if included else 0))

    def set_right(self, included: bool) -> Closed:
        return Closed((self.value & 2) | (1 if included else 0))


_executors: dict[str, tuple[int, ThreadPoolExecutor]] = {}
_executor_lock = threading.Lock()
_in_worker = threading.local()


def _shared_executor(cpu: bool = False) -> ThreadPoolExecutor:
    """The pool for storage calls (`settings.max_threads` threads, for the waits of
    remote storage), or with `cpu`, the one for computing (a thread per core)."""
    kind = "cpu" if cpu else "io"
    workers = max(1, cpu_width() if cpu else settings.max_threads)
    with _executor_lock:
        size, executor = _executors.get(kind, (0, None))
        if executor is None or size != workers:  # first use, or the setting changed
            if executor is not None:
                executor.shutdown(wait=False)  # its running tasks finish; it takes no more
            executor = ThreadPoolExecutor(
                max_workers=workers,
                thread_name_prefix=f"lakota-{kind}",
                initializer=_mark_worker,
                initargs=(kind,),
            )
            _executors[kind] = (workers, executor)
        return executor


def _mark_worker(kind: str) -> None:
    _in_worker.kind = kind


def _worker_kind() -> str | None:
    """Which shared pool runs the current thread ("io", "cpu"), or None."""
    return getattr(_in_worker, "kind", None)


def compute_later(fn: Callable, *args: Any) -> Future:
    """`fn(*args)` on the pool sized to the cores; its future. It runs at once (the
    future is already done) when `settings.threaded` is off or inside a worker."""
    if settings.threaded and _worker_kind() is None:
        return _shared_executor(cpu=True).submit(fn, *args)
    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:
        future.set_exception(exc)
    return future


def _reset_executor_after_fork() -> None:
    _executors.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_executor_after_fork)


class Background:
    """Storage calls left to run on the shared pool while the caller goes on; `wait()`
    joins them. Threads may submit concurrently.

    At most `limit` tasks are pending: submitting more first waits for the oldest, so
    a fast producer cannot pile up memory. Inside a storage worker (which must never
    wait on its own pool), or when `settings.threaded` is off, tasks run at once. The
    first error is raised by `submit` or `wait`.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit if limit is not None else 4 * max(1, settings.max_threads)
        self._pending: deque[Future] = deque()
        self._lock = threading.Lock()

    def submit(self, fn: Callable, *args: Any) -> None:
        if not settings.threaded or _worker_kind() == "io":
            fn(*args)
            return
        while (oldest := self._oldest_to_wait()) is not None:
            oldest.result()
        future = _shared_executor().submit(fn, *args)
        with self._lock:
            self._pending.append(future)

    def _oldest_to_wait(self) -> Future | None:
        with self._lock:
            if self._pending and (self._pending[0].done() or len(self._pending) >= self.limit):
                return self._pending.popleft()
        return None

    def wait(self) -> None:
        """Wait for every pending task; raise the first error once all have ended."""
        with self._lock:
            pending, self._pending = self._pending, deque()
        errors = [future.exception() for future in pending]
        for error in errors:
            if error is not None:
                raise error


def pooled_map(fn: Callable, items: Iterable, threaded: bool = True, cpu: bool = False) -> list:
    """`[fn(item) for item in items]`, run on a shared pool; see `pooled_imap`."""
    return list(pooled_imap(fn, items, threaded, cpu))


def pooled_imap(
    fn: Callable, items: Iterable, threaded: bool = True, cpu: bool = False
) -> Iterator:
    """`fn(item)` for each item, run on a shared pool and yielded in order as they end
    (with `cpu`, the pool sized to the cores, for work bound by computing rather than
    by storage).

    With `threaded` false, a single item, or inside a pool worker (a nested map must
    never wait on workers that wait on it), it runs inline. On the first error, or
    when the caller stops iterating, the tasks not started yet are cancelled.
    """
    items = list(items)
    inline = not (threaded and settings.threaded) or _worker_kind() is not None
    if inline or len(items) < 2:
        yield from (fn(item) for item in items)
        return
    executor = _shared_executor(cpu)
    futures = [executor.submit(fn, item) for item in items]
    try:
        for future in futures:
            yield future.result()
    finally:
        for future in futures:
            future.cancel()


class Pool:
    """Run tasks on the shared storage pool; `results` lists their return values in
    submission order once the ``with`` block ends (as `lakota.utils.Pool` of 0.7.1).

    >>> with Pool() as pool:
    ...     for n in range(3):
    ...         pool.submit(pow, n, 2)
    >>> pool.results
    [0, 1, 4]

    With `settings.threaded` off, or inside a pool worker (a nested pool), tasks run at
    once and their errors raise from `submit`; otherwise the first error raises when
    the block ends.
    """

    def __init__(self) -> None:
        self.results: list = []
        self._futures: list[Future] = []

    def __enter__(self) -> Pool:
        return self

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> None:
        if settings.threaded and _worker_kind() is None:
            self._futures.append(_shared_executor().submit(fn, *args, **kwargs))
            return
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        self._futures.append(future)

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        futures, self._futures = self._futures, []
        if exc_type is not None:
            for future in futures:
                future.cancel()
            return
        self.results = [future.result() for future in futures]


@contextmanager
def timeit(title: str = "") -> Iterator[None]:
    """Print how long the block took on stderr, as ``"<title> 52.88ms"`` (a block that
    raises prints nothing). Also works as a decorator."""
    start = time.perf_counter()
    yield
    print(f"{title} {_pretty_duration(time.perf_counter() - start)}", file=sys.stderr)


def _pretty_duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.2f}{unit}"
    return f"{seconds / 1e-9:.2f}ns"


def cpu_width() -> int:
    """How many CPU-bound tasks are worth running at once."""
    return os.cpu_count() or 1


def strpt(value: str | datetime | None) -> datetime | None:
    """Parse an ISO date or datetime; pass datetimes through; falsy gives None."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"Invalid date {value!r}: expected an ISO format") from None


def drange(start: Any, end: Any, delta: Any) -> numpy.ndarray:
    """`numpy.arange` over datetimes at second resolution, end excluded."""
    return numpy.arange(start, end, delta, dtype="M8[s]")


def paginate(start: datetime, stop: datetime, **delta_kw: float) -> Iterator[tuple]:
    """Yield consecutive ``(t, min(t + delta, stop))`` steps covering ``[start, stop)``."""
    delta = timedelta(**delta_kw)
    if delta <= timedelta(0):
        raise ValueError("paginate needs a positive step")
    while start < stop:
        end = min(start + delta, stop)
        yield start, end
        start = end


def chunky(items: Iterable, size: int = 100) -> Iterator[list]:
    """Yield lists of at most `size` items."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


_units = ("Y", "M", "D", "h", "m", "s")


def floor(arr: numpy.ndarray, unit: str) -> numpy.ndarray:
    """Truncate datetimes to a calendar unit (Y, M, D, h, m or s)."""
    if unit not in _units:
        raise ValueError(f"Unsupported unit {unit!r}, expected one of {', '.join(_units)}")
    return numpy.asarray(arr).astype(f"M8[{unit}]")


def day_of_week_num(arr: numpy.ndarray) -> numpy.ndarray:
    """Day of week, Monday is 0."""
    days = numpy.asarray(arr).astype("M8[D]").astype("i8")
    return (days + 3) % 7


def as_tz(arr: numpy.ndarray, tz: str) -> numpy.ndarray:
    """Shift naive UTC datetimes to naive local times of zone `tz` (second resolution)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    seconds = numpy.asarray(arr).astype("M8[s]").astype("i8")
    offsets = numpy.array(
        [datetime.fromtimestamp(int(s), zone).utcoffset().total_seconds() for s in seconds],
        dtype="i8",
    )
    return (seconds + offsets).astype("M8[s]")


_prefixes = ["", "k", "M", "G", "T", "P", "E"]


def pretty_nb(number: Any) -> Any:
    """Numbers with SI prefixes: 1500 -> '1.5k'. Arrays give arrays of strings."""
    if isinstance(number, numpy.ndarray):
        return numpy.array([pretty_nb(x) for x in number])
    value = float(number)
    for prefix in _prefixes:
        if abs(value) < 1000 or prefix == _prefixes[-1]:
            return f"{value:.4g}{prefix}"
        value /= 1000
    return str(number)
