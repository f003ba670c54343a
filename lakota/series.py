"""Series: one sorted table inside a collection, read by index range and written by overlay.

A write of a frame over ``[start, stop]`` hides whatever the series showed in that
range and shows the new rows instead; data outside the range stays.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy

from .commit import Commit, Segment
from .errors import EmptyFrameError, FrameError
from .frame import Frame
from .schema import as_column_mapping
from .utils import Background, Closed, digest_path, pooled_imap, settings

if TYPE_CHECKING:
    from .collection import Collection

__all__ = ["Series", "KVSeries"]

Bound = Any
_PARALLEL_ROWS = 20_000  # below this, encoding columns on threads costs more than it saves


class Series:
    """A labelled series of a collection. Creating one never touches storage."""

    def __init__(self, label: str, collection: Collection) -> None:
        self.label = label
        self.collection = collection
        self.schema = collection.schema
        self.pod = collection.pod
        self.changelog = collection.changelog

    # Writing

    def write(
        self,
        frame: Any,
        start: Bound = None,
        stop: Bound = None,
        closed: Closed | str = "b",
        root: bool = False,
        message: str | None = None,
        author: str | None = None,
        meta: dict | None = None,
    ) -> list | None:
        """Show `frame` over ``[start, stop]`` (default: its first and last index).

        Accepts a Frame, a dict of sequences, or a pandas/Arrow/Polars table. Returns the
        new revisions (empty when nothing changed), or None inside `Collection.multi()`.
        `message`, `author` and `meta` are recorded with the revision (`lakota.revinfo`).
        """
        info = self.collection.revision_info(message, author, meta)
        frame = self._checked_frame(frame)
        closed = Closed.cast(closed)
        start, stop = self._write_bounds(frame, start, stop, closed)
        if start == stop and closed != Closed.BOTH:  # an empty range shows and hides nothing
            return None if self.collection.batch is not None else []
        with self.collection.writing():
            if not root:
                frame, start, closed = self._absorb_small_tail(frame, start, closed)
            pages = list(_pages(frame, start, stop, closed))
            batch = self.collection.batch
            if batch is not None and self.schema.numeric:
                batch.stage_later(self, pages)  # encoding numbers cannot fail
                return None
            writes = batch.writes if batch is not None else Background()
            try:
                rows = self.stage_pages(pages, writes)
                if batch is None:
                    writes.wait()
            except BaseException:
                with suppress(Exception):  # the first error matters, not the later ones
                    writes.wait()
                raise
            return self.collection.apply(rows, root=root, info=info)

    def _absorb_small_tail(self, frame: Frame, start: tuple, closed: Closed) -> tuple:
        """For an append behind many small segments, rewrite them together with `frame`.

        This keeps the number of segments (and so the size of every later commit)
        bounded however many small appends a series receives.
        """
        if (
            frame.empty
            or self.collection.staged_rows_bound(self.label) < settings.append_merge_count
        ):
            return frame, start, closed
        commit = self.collection.staged()
        if commit is None:
            return frame, start, closed
        first, end = commit.label_range(self.label)
        if end == first or not _after(commit.row(end - 1), start, closed):
            return frame, start, closed
        lengths = commit.length[first:end]
        small = 0
        while small < len(lengths) and lengths[-1 - small] < settings.append_merge_len:
            small += 1
        if small < settings.append_merge_count:
            return frame, start, closed
        tail = commit.take(slice(end - small, end))
        old = Frame.from_segments(self.schema, tail.segments(self.label, self.pod))
        head = tail.row(0)
        return Frame.concat(old, frame), head.start, closed.set_left(head.closed.left)

    def _checked_frame(self, frame: Any) -> Frame:
        frame = (
            frame
            if isinstance(frame, Frame) and frame.schema == self.schema
            else Frame(self.schema, frame)
        )
        missing = [name for name in self.schema if name not in frame]
        if missing:
            raise KeyError(f"Missing column(s) for series {self.label!r}: {', '.join(missing)}")
        if not frame.is_sorted():
            raise FrameError(f"Frame is not sorted! (series {self.label!r})")
        return frame

    def _write_bounds(self, frame: Frame, start: Bound, stop: Bound, closed: Closed) -> tuple:
        start, stop = self._full_key(start, "start"), self._full_key(stop, "stop")
        if frame.empty:
            if not start or not stop:
                raise EmptyFrameError(
                    f"An empty frame needs explicit start and stop ({self.label!r})"
                )
        else:
            start = start or frame.start()
            stop = stop or frame.stop()
            self._check_inside(frame, start, stop, closed)
        if start > stop:
            raise ValueError(f"Invalid range: start {start} is after stop {stop}")
        return start, stop

    def _full_key(self, value: Bound, name: str) -> tuple | None:
        """A write bound cast to the index types; it needs a value for every index column."""
        key = self.schema.deserialize(value)
        if key and len(key) != len(self.schema.idx):
            raise ValueError(
                f"Write {name} {value!r} needs one value per index column "
                f"({', '.join(self.schema.idx)})"
            )
        return key or None

    def _check_inside(self, frame: Frame, start: tuple, stop: tuple, closed: Closed) -> None:
        """Refuse rows that the given bounds would hide at once (they would be lost)."""
        first, last = frame.start(), frame.stop()
        if first < start or (first == start and not closed.left):
            raise FrameError(f"Frame starts at {first}, before the write range {start}")
        if last > stop or (last == stop and not closed.right):
            raise FrameError(f"Frame ends at {last}, after the write range {stop}")

    def stage(self, frame: Frame, start: tuple, stop: tuple, closed: Closed) -> dict:
        """Encode every column, write the large ones, and return the commit row.

        Low level: nothing is committed; `Commit.update` or a batch takes the row.
        """
        writes = Background()
        try:
            return self.stage_pages([(frame, start, stop, closed)], writes)[0]
        finally:
            writes.wait()

    def stage_pages(self, pages: list[tuple], writes: Background) -> list[dict]:
        """`stage` for several ``(frame, start, stop, closed)`` pages at once.

        Columns are encoded in parallel on the cores; each data file is handed to
        `writes` as soon as it is encoded, so storage works while encoding goes on. The
        caller waits for `writes` before committing the rows.
        """
        names = list(self.schema)
        jobs = [(frame, name) for frame, *_ in pages for name in names]
        encoded = pooled_imap(
            lambda job: self.schema[job[1]].codec.encode(job[0][job[1]], with_digest=True),
            jobs,
            threaded=sum(len(frame) for frame, *_ in pages) >= _PARALLEL_ROWS,
            cpu=True,
        )
        rows = []
        for frame, start, stop, closed in pages:
            embedded, digests = {}, []
            for data, digest in islice(encoded, len(names)):
                digests.append(digest)
                if len(data) < settings.embed_max_size:
                    embedded[digest] = data
                else:
                    writes.submit(self.pod.write, digest_path(digest), data)
            rows.append(
                {
                    "label": self.label,
                    "start": start,
                    "stop": stop,
                    "digest": tuple(digests),
                    "length": len(frame),
                    "closed": closed,
                    "embedded": embedded,
                }
            )
        return rows

    def delete(
        self,
        start: Bound = None,
        stop: Bound = None,
        closed: Closed | str = "b",
        root=False,
        message: str | None = None,
    ) -> list | None:
        """Hide every row inside ``[start, stop]`` (bounds are cast to the index types)."""
        if start is None or stop is None:
            raise ValueError("delete needs both start and stop; use Collection.delete for all")
        return self.write(
            Frame(self.schema), start, stop, closed=closed, root=root, message=message
        )

    def update(self, frame: Any, message: str | None = None) -> list | None:
        """Replace some non-index columns of existing rows (and add rows outside them)."""
        unknown = [n for n in as_column_mapping(frame) if n not in self.schema]
        if unknown:
            raise KeyError(f"Unknown column(s) for series {self.label!r}: {', '.join(unknown)}")
        frame = Frame(self.schema, frame)
        given = [n for n in frame if n in self.schema and n not in self.schema.idx]
        missing_idx = [n for n in self.schema.idx if n not in frame]
        if missing_idx:
            raise KeyError(f"update needs the index column(s) {', '.join(missing_idx)}")
        if not frame.is_sorted():
            raise FrameError(f"Frame is not sorted! (series {self.label!r})")
        if frame.empty:
            return []
        kept = [n for n in self.schema if n not in given]
        stored = self._stored(frame.start(), frame.stop(), select=kept)
        if stored.empty:
            return self.write(_fill_missing(self.schema, frame), message=message)
        lo, hi = frame.slice_index(stored.start(), stored.stop(), "b")
        middle = frame.slice(lo, hi)
        for name in self.schema.idx:
            if len(middle) != len(stored) or not numpy.array_equal(middle[name], stored[name]):
                raise FrameError("Update frame is not aligned with existing index")
        merged = {n: middle[n] if n in given else stored[n] for n in self.schema}
        parts = [
            _fill_missing(self.schema, frame.slice(None, lo)),
            Frame(self.schema, merged),
            _fill_missing(self.schema, frame.slice(hi, None)),
        ]
        full = Frame.concat(*[p for p in parts if not p.empty])
        return self.write(full, start=frame.start(), stop=frame.stop(), message=message)

    def _stored(self, start: tuple, stop: tuple, select: list[str] | None = None) -> Frame:
        """Rows in ``[start, stop]`` including the pending writes of this thread's batch."""
        commit = self.collection.staged()
        segments = commit.segments(self.label, self.pod, start, stop, "b") if commit else []
        return Frame.from_segments(self.schema, segments, select=select)

    # Reading

    def segments(
        self,
        start: tuple = (),
        stop: tuple = (),
        before: str | datetime | None = None,
        closed: Closed | str = "LEFT",
        from_ci: Commit | None = None,
        at: Any = None,
    ) -> list[Segment]:
        """The visible segments inside the range (bounds already cast as tuples)."""
        commit = from_ci if from_ci is not None else self.collection.commit(before=before, at=at)
        if commit is None:
            return []
        return commit.segments(self.label, self.pod, start, stop, closed)

    def _query(self, start: Bound, stop: Bound, before, closed, at=None) -> list[Segment]:
        closed = Closed.cast(closed)
        start, exact_start = self.schema.query_bound(start, "start")
        stop, exact_stop = self.schema.query_bound(stop, "stop")
        closed = closed.set_left(closed.left or not exact_start)
        closed = closed.set_right(closed.right or not exact_stop)
        return self.segments(start, stop, before=before, closed=closed, at=at)

    def frame(
        self,
        start: Bound = None,
        stop: Bound = None,
        before: str | datetime | None = None,
        closed: Closed | str = "LEFT",
        limit: int | None = None,
        offset: int | None = None,
        select: str | list[str] | None = None,
        at: Any = None,
    ) -> Frame:
        """Rows in the range (default ``start <= index < stop``) as a Frame.

        `before` reads the state strictly before a time; `at` the state at a tag, a
        revision, or an instant (inclusive), see `Collection.commit`.
        """
        _check_limit_offset(limit, offset)
        _columns(self.schema, select)  # unknown names raise before any read
        segments = self._query(start, stop, before, closed, at)
        return Frame.from_segments(self.schema, segments, limit=limit, offset=offset, select=select)

    def df(self, *args: Any, **kwargs: Any) -> Any:
        """Same as `frame`, as a pandas DataFrame."""
        return self.frame(*args, **kwargs).df()

    def arrow(self, *args: Any, **kwargs: Any) -> Any:
        """Same as `frame`, as a `pyarrow.Table` (see `Frame.arrow`)."""
        return self.frame(*args, **kwargs).arrow()

    def polars(self, *args: Any, **kwargs: Any) -> Any:
        """Same as `frame`, as a `polars.DataFrame` (see `Frame.polars`)."""
        return self.frame(*args, **kwargs).polars()

    def tail(
        self,
        length: int,
        start: Bound = None,
        stop: Bound = None,
        before: str | datetime | None = None,
        closed: Closed | str = "LEFT",
        limit: int | None = None,
        offset: int | None = None,
        select: str | list[str] | None = None,
        at: Any = None,
    ) -> Frame:
        """The last `length` rows of the range, then sliced by `offset`/`limit`."""
        if not isinstance(length, (int, numpy.integer)) or length <= 0:
            raise ValueError(f"tail length must be a positive integer, got {length!r}")
        _check_limit_offset(limit, offset)
        picked, total = [], 0
        for segment in reversed(self._query(start, stop, before, closed, at)):
            picked.insert(0, segment)
            total += len(segment)
            if total >= length:
                break
        offset = (offset or 0) + max(0, total - length)
        if limit is not None:
            limit = max(0, min(limit, total - offset))
        return Frame.from_segments(self.schema, picked, limit=limit, offset=offset, select=select)

    def paginate(
        self,
        step: int | None = None,
        start: Bound = None,
        stop: Bound = None,
        before: str | datetime | None = None,
        closed: Closed | str = "LEFT",
        limit: int | None = None,
        offset: int | None = None,
        select: str | list[str] | None = None,
        at: Any = None,
    ) -> Iterator[Frame]:
        """Yield non-empty frames of at most `step` rows that together cover the range."""
        step = settings.page_len if step is None else step
        if not isinstance(step, (int, numpy.integer)) or step <= 0:
            raise ValueError(f"paginate step must be a positive integer, got {step!r}")
        _check_limit_offset(limit, offset)
        skip = offset or 0
        remaining = limit
        page: list[tuple[Segment, int, int]] = []
        size = 0
        for segment in self._query(start, stop, before, closed, at):
            pos, end = 0, len(segment)
            if skip >= end:
                skip -= end
                continue
            pos, skip = skip, 0
            while pos < end and remaining != 0:
                take = min(end - pos, step - size)
                if remaining is not None:
                    take = min(take, remaining)
                    remaining -= take
                page.append((segment, pos, pos + take))
                size += take
                pos += take
                if size == step:
                    yield _page_frame(self.schema, page, select)
                    page, size = [], 0
        if page:
            yield _page_frame(self.schema, page, select)

    # Versions

    def diff(self, a: Any, b: Any = None) -> Any:
        """`Diff` (`.added`, `.removed`, `.changed` frames) from the state at `a` to the
        state at `b` (default: the leaf); only the segments that differ are read."""
        from .diff import series_diff

        return series_diff(self, a, b)

    def restore(self, at: Any, message: str | None = None) -> list:
        """A new revision where this series equals its state at `at` (history is kept)."""
        return self.collection.restore(at, [self.label], message)

    def __len__(self) -> int:
        return self.count()

    def count(self, before: str | datetime | None = None, at: Any = None) -> int:
        """Number of visible rows (as of `before` or `at`, see `frame`)."""
        return sum(len(segment) for segment in self.segments(before=before, at=at))

    def __bool__(self) -> bool:
        return self.label in self.collection.ls()

    def __getitem__(self, key: slice) -> Frame:
        """``series[start:stop]``: rows from start to stop, both included."""
        if not isinstance(key, slice) or key.step is not None:
            raise TypeError("Series can only be sliced by index values: series[start:stop]")
        return self.frame(start=key.start, stop=key.stop, closed="b")

    def __repr__(self) -> str:
        return f"<Series {self.collection.label}/{self.label}>"


class KVSeries(Series):
    """A series of a key-value collection: writes are upserts keyed on the index."""

    def write(
        self,
        frame: Any,
        start: Bound = None,
        stop: Bound = None,
        closed: Closed | str = "b",
        root: bool = False,
        message: str | None = None,
        author: str | None = None,
        meta: dict | None = None,
    ) -> list | None:
        """Insert or replace rows by key; keys not in `frame` are kept."""
        about = {"message": message, "author": author, "meta": meta}  # who and why
        if root or start is not None or stop is not None:
            return super().write(frame, start=start, stop=stop, closed=closed, root=root, **about)
        self.collection.revision_info(**about)  # bad metadata fails before any read
        frame = _last_per_key(Frame(self.schema, frame).sorted())
        if frame.empty:
            return []
        stored = self._stored(frame.start(), frame.stop())
        if not stored.empty:
            if stored == frame:
                return None
            frame = _last_per_key(Frame.concat(stored, frame).sorted())
        return super().write(frame, **about)

    def delete(self, *keys: Any, message: str | None = None) -> list | None:
        """Remove the rows with these keys (scalars, or tuples for a multi-column index)."""
        if not keys:
            return []
        keys = sorted(self._full_key(k, "key") for k in keys)
        stored = self._stored(keys[0], keys[-1])
        if stored.empty:
            return []
        index = list(zip(*(stored[n].tolist() for n in self.schema.idx)))
        wanted = {tuple(_plain(v) for v in key) for key in keys}
        keep = numpy.array([key not in wanted for key in index], dtype=bool)
        if keep.all():
            return []
        return super().write(stored.mask(keep), start=keys[0], stop=keys[-1], message=message)


def _after(row, start: tuple, closed: Closed) -> bool:
    """True if a write from `start` begins after everything `row` shows."""
    return row.stop < start or (row.stop == start and not (row.closed.right and closed.left))


def _pages(frame: Frame, start: tuple, stop: tuple, closed: Closed) -> Iterator[tuple]:
    """``(frame, start, stop, closed)`` pieces of at most about `settings.page_len` rows.

    The pieces cover ``[start, stop]`` without gaps, so the write hides what it always did.
    """
    chunks = list(frame.chunks(settings.page_len)) if len(frame) else [frame]
    for pos, chunk in enumerate(chunks):
        first, last = pos == 0, pos == len(chunks) - 1
        left = start if first else chunk.start()
        right = stop if last else chunks[pos + 1].start()
        flags = Closed.BOTH.set_left(closed.left or not first).set_right(closed.right and last)
        yield chunk, left, right, flags


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, numpy.generic) else value


def _last_per_key(frame: Frame) -> Frame:
    """Keep the last row of each run of equal keys (the frame must be sorted)."""
    if len(frame) < 2:
        return frame
    same = numpy.ones(len(frame) - 1, dtype=bool)
    for name in frame.schema.idx:
        col = frame[name]
        same &= col[1:] == col[:-1]
    keep = numpy.append(~same, True)
    return frame if keep.all() else frame.mask(keep)


def _fill_missing(schema, frame: Frame) -> Frame:
    columns = {}
    for name, col in schema.columns.items():
        if name in frame:
            columns[name] = frame[name]
        else:
            columns[name] = col.cast(numpy.full(len(frame), col.zero(), dtype=object))
    return Frame(schema, columns)


def _columns(schema, select: str | list[str] | None) -> list[str]:
    if select is None:
        return list(schema)
    names = [select] if isinstance(select, str) else list(select)
    unknown = [n for n in names if n not in schema]
    if unknown:
        raise KeyError(f"Unknown column(s): {', '.join(unknown)}")
    return names


def _page_frame(schema, page: list[tuple[Segment, int, int]], select) -> Frame:
    names = _columns(schema, select)
    columns = {n: numpy.concatenate([seg.read(n, lo, hi) for seg, lo, hi in page]) for n in names}
    return Frame(schema, columns)


def _check_limit_offset(limit: Any, offset: Any) -> None:
    for name, value in (("limit", limit), ("offset", offset)):
        if value is not None and (not isinstance(value, (int, numpy.integer)) or value < 0):
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
