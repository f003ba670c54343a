"""Commits: the complete, columnar index of a collection at one point in time.

A commit has one row per segment: the series label, the visible index range
``[start, stop]`` with its closed flags, one digest per column, the length of the stored
arrays, and a map of small arrays embedded in the commit itself. Every commit is a full
snapshot, so reading one never needs another.

Rows of one label never overlap; `Commit.update` overlays a new segment on the rows
of its label (the last write wins inside its own range).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack
import numpy

from .errors import CorruptedDataError, MissingDataError
from .revinfo import with_info
from .schema import EMPTY_DIGEST, Codec, Schema
from .utils import Closed, digest_path, hashed_path, verify_copies, verify_reads

if TYPE_CHECKING:
    from .pod import POD

__all__ = ["Commit", "Segment"]

_digest_codec = Codec("U")
_str_codec = Codec("str")
_int_codec = Codec("int")


@dataclass(frozen=True)
class Row:
    """One segment row of a commit, as plain Python values."""

    label: str
    start: tuple
    stop: tuple
    digest: tuple
    length: int
    closed: Closed


class Commit:
    """Columnar table of segment rows; see the module docstring."""

    def __init__(
        self,
        schema: Schema,
        label: numpy.ndarray,
        start: dict[str, numpy.ndarray],
        stop: dict[str, numpy.ndarray],
        digest: dict[str, numpy.ndarray],
        length: numpy.ndarray,
        closed: numpy.ndarray,
        embedded: dict[str, bytes] | None = None,
    ) -> None:
        missing = [name for name in schema if name not in digest]
        if missing:
            raise CorruptedDataError(f"Commit lacks digests for column(s) {', '.join(missing)}")
        self.schema = schema
        self.label = numpy.asarray(label, dtype="U")
        self.start = {name: numpy.asarray(start[name]) for name in schema.idx}
        self.stop = {name: numpy.asarray(stop[name]) for name in schema.idx}
        self.digest = {name: numpy.asarray(digest[name], dtype="U") for name in schema}
        self.length = numpy.asarray(length, dtype="i8")
        self.closed = numpy.asarray(closed, dtype="U1")
        self.embedded = embedded if embedded is not None else {}

    # Construction and encoding

    @classmethod
    def one(
        cls,
        schema: Schema,
        label: str,
        start: tuple,
        stop: tuple,
        digest: tuple,
        length: int,
        closed: Closed | str = "b",
        embedded: dict[str, bytes] | None = None,
    ) -> Commit:
        """A commit with a single row."""
        return cls(
            schema,
            numpy.array([label]),
            {name: _column_array(schema, name, [v]) for name, v in zip(schema.idx, start)},
            {name: _column_array(schema, name, [v]) for name, v in zip(schema.idx, stop)},
            {name: numpy.array([d]) for name, d in zip(schema, digest)},
            numpy.array([length]),
            numpy.array([Closed.cast(closed).short]),
            dict(embedded or {}),
        )

    @classmethod
    def empty(cls, schema: Schema) -> Commit:
        """A commit without rows."""
        return cls(
            schema,
            numpy.empty(0, dtype="U"),
            {n: numpy.empty(0, dtype=schema[n].dt) for n in schema.idx},
            {n: numpy.empty(0, dtype=schema[n].dt) for n in schema.idx},
            {n: numpy.empty(0, dtype="U40") for n in schema},
            numpy.empty(0, dtype="i8"),
            numpy.empty(0, dtype="U1"),
        )

    @classmethod
    def decode(cls, schema: Schema, payload: bytes) -> Commit:
        """Parse a revision payload (the on-disk format of SPEC §3.4)."""
        try:
            data = msgpack.unpackb(payload, raw=False, strict_map_key=False)[0]
            decoded = cls(
                schema,
                _str_codec.decode(data["label"]),
                {n: schema[n].codec.decode(data["start"][n]) for n in schema.idx},
                {n: schema[n].codec.decode(data["stop"][n]) for n in schema.idx},
                {n: _digest_codec.decode(data["digest"][n]) for n in schema},
                _int_codec.decode(data["length"]),
                _str_codec.decode(data["closed"]),
                dict(data.get("embedded") or {}),
            )
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
            raise CorruptedDataError(f"Unable to decode commit: {exc}") from exc
        return decoded

    def encode(self, info: dict | None = None) -> bytes:
        """Serialize in the layout that lakota 0.7.1 reads and writes.

        `info` (see `lakota.revinfo`) adds the author, message and metadata of the
        revision; without it the bytes are exactly those lakota 0.7.1 writes.
        """
        referenced = set()
        for digests in self.digest.values():
            referenced.update(digests.tolist())
        embedded = {d: bytes(self.embedded[d]) for d in sorted(referenced) if d in self.embedded}
        body = {
            "start": {n: self.schema[n].codec.encode(self.start[n]) for n in self.schema.idx},
            "stop": {n: self.schema[n].codec.encode(self.stop[n]) for n in self.schema.idx},
            "digest": {n: _digest_codec.encode(self.digest[n]) for n in self.schema},
            "length": _int_codec.encode(self.length),
            "closed": _str_codec.encode(self.closed),
            "label": _str_codec.encode(self.label),
            "embedded": embedded,
        }
        body = with_info(body, info)
        return msgpack.packb([body, "|O", [1]], use_bin_type=True, use_single_float=False)

    # Row access

    def __len__(self) -> int:
        return len(self.label)

    def row(self, pos: int) -> Row:
        return Row(
            str(self.label[pos]),
            tuple(self.start[n][pos] for n in self.schema.idx),
            tuple(self.stop[n][pos] for n in self.schema.idx),
            tuple(str(self.digest[n][pos]) for n in self.schema),
            int(self.length[pos]),
            Closed[str(self.closed[pos])],
        )

    def at(self, pos: int) -> dict:
        """Row `pos` as a dict (with the whole embedded map), as `update` takes it."""
        row = self.row(pos)
        return {
            "label": row.label,
            "start": row.start,
            "stop": row.stop,
            "digest": row.digest,
            "length": row.length,
            "closed": row.closed,
            "embedded": self.embedded,
        }

    def label_range(self, label: str) -> tuple[int, int]:
        """Positions ``[a, b)`` of the rows of `label` (rows are sorted by label)."""
        a = int(numpy.searchsorted(self.label, label, side="left"))
        b = int(numpy.searchsorted(self.label, label, side="right"))
        return a, b

    def match(self, label: str) -> Iterator[Row]:
        a, b = self.label_range(label)
        for pos in range(a, b):
            yield self.row(pos)

    def labels(self) -> list[str]:
        """Sorted unique labels."""
        return numpy.unique(self.label).tolist()

    def take(self, positions: Any) -> Commit:
        """A commit with the rows at `positions` (an index array, a mask or a slice)."""
        return Commit(
            self.schema,
            self.label[positions],
            {n: a[positions] for n, a in self.start.items()},
            {n: a[positions] for n, a in self.stop.items()},
            {n: a[positions] for n, a in self.digest.items()},
            self.length[positions],
            self.closed[positions],
            self.embedded,
        )

    def slice(self, start: int | None = None, stop: int | None = None) -> Commit:
        return self.take(slice(start, stop))

    def head(self, pos: int) -> Commit:
        return self.slice(None, pos)

    def tail(self, pos: int) -> Commit:
        return self.slice(pos, None)

    def mask(self, keep: numpy.ndarray) -> Commit:
        return self.take(keep)

    def delete_labels(self, labels: Iterable[str]) -> Commit:
        return self.mask(~numpy.isin(self.label, list(labels)))

    def rename_label(self, from_label: str, to_label: str) -> Commit:
        """Move every row of `from_label` to `to_label`, overlaying what `to_label` had."""
        rows = [self.at(pos) for pos in range(*self.label_range(from_label))]
        result = self.delete_labels([from_label])
        for row in rows:
            row["label"] = to_label
            result = result.update(**row)
        return result

    @classmethod
    def concat(cls, *commits: Commit) -> Commit:
        """Rows of every commit in order; the parts must not overlap."""
        commits = [c for c in commits if c is not None]
        first = commits[0]
        for prev, nxt in zip(commits, commits[1:]):
            if len(prev) and len(nxt) and _key(prev, -1, prev.stop) > _key(nxt, 0, nxt.start):
                raise ValueError("Unable to concat commits: rows overlap")
        embedded = {}
        for commit in commits:
            embedded.update(commit.embedded)
        return cls(
            first.schema,
            numpy.concatenate([c.label for c in commits]),
            {n: numpy.concatenate([c.start[n] for c in commits]) for n in first.schema.idx},
            {n: numpy.concatenate([c.stop[n] for c in commits]) for n in first.schema.idx},
            {n: numpy.concatenate([c.digest[n] for c in commits]) for n in first.schema},
            numpy.concatenate([c.length for c in commits]),
            numpy.concatenate([c.closed for c in commits]),
            embedded,
        )

    def digests(self) -> set[str]:
        """Every digest referenced by a row."""
        found: set[str] = set()
        for digests in self.digest.values():
            found.update(digests.tolist())
        return found

    def __contains__(self, row: dict) -> bool:
        """True if `row` (as given by `at`) is one of this commit's rows."""
        a, b = self.label_range(row["label"])
        closed = Closed.cast(row["closed"]).short
        for pos in range(a, b):
            if (
                self._bound(self.start, pos) == tuple(row["start"])
                and self._bound(self.stop, pos) == tuple(row["stop"])
                and self.closed[pos] == closed
                and tuple(str(self.digest[n][pos]) for n in self.schema) == tuple(row["digest"])
            ):
                return True
        return False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Commit):
            return NotImplemented
        return self.encode() == other.encode()

    __hash__ = None

    def __repr__(self) -> str:
        return f"<Commit {len(self)} rows, labels={self.labels()[:5]}>"

    def _bound(self, bounds: dict, pos: int) -> tuple:
        return tuple(bounds[n][pos] for n in self.schema.idx)

    # Writing: the overlay

    def update(
        self,
        label: str,
        start: tuple,
        stop: tuple,
        digest: tuple,
        length: int,
        closed: Closed | str = "b",
        embedded: dict[str, bytes] | None = None,
    ) -> Commit:
        """A new commit where the segment ``[start, stop]`` of `label` hides what it covers.

        Rows of `label` that overlap the new range are cut to the part outside of it
        (a row that spans the whole range is split in two); a boundary value shared
        with a neighbour goes to whichever side includes it, the new row first.
        """
        closed = Closed.cast(closed)
        start, stop = tuple(start), tuple(stop)
        if start > stop:
            raise ValueError(f"Invalid range: start {start} is after stop {stop}")
        if start == stop and closed != Closed.BOTH:  # an empty range hides nothing
            return self
        new = Commit.one(self.schema, label, start, stop, digest, length, closed)
        new.embedded = {**self.embedded, **(embedded or {})}
        if len(self) == 0:
            return new
        a, b = self.label_range(label)
        first = a + self._bisect(self.stop, start, a, b, right=False)
        last = a + self._bisect(self.start, stop, a, b, right=True)
        before, after = [], []
        for pos in range(first, last):
            before.extend(self._left_part(pos, start, closed))
            after.extend(self._right_part(pos, stop, closed))
        parts = [self.slice(None, first), *before, new, *after, self.slice(last, None)]
        result = Commit.concat(*parts)
        result.embedded = new.embedded
        return result

    def _bisect(self, bounds: dict, key: tuple, a: int, b: int, right: bool) -> int:
        """Position, within rows ``[a, b)``, of `key` among the `bounds` tuples."""
        columns = [bounds[n][a:b] for n in self.schema.idx]
        if len(columns) == 1:
            side = "right" if right else "left"
            return int(numpy.searchsorted(columns[0], key[0], side=side))
        keys = list(zip(*columns))
        return (bisect.bisect_right if right else bisect.bisect_left)(keys, key)

    def _left_part(self, pos: int, start: tuple, closed: Closed) -> list[Commit]:
        """What row `pos` keeps before a new range starting at `start`."""
        row_start, row_stop = self._bound(self.start, pos), self._bound(self.stop, pos)
        row_closed = Closed[str(self.closed[pos])]
        if row_start > start:
            return []
        if start > row_stop:
            right = row_closed.right
        elif start == row_stop:
            right = row_closed.right and not closed.left
        else:
            right = not closed.left
        new_stop = min(row_stop, start)
        return self._cut(pos, row_start, new_stop, row_closed.set_right(right))

    def _right_part(self, pos: int, stop: tuple, closed: Closed) -> list[Commit]:
        """What row `pos` keeps after a new range ending at `stop`."""
        row_start, row_stop = self._bound(self.start, pos), self._bound(self.stop, pos)
        row_closed = Closed[str(self.closed[pos])]
        if row_stop < stop:
            return []
        if stop < row_start:
            left = row_closed.left
        elif stop == row_start:
            left = row_closed.left and not closed.right
        else:
            left = not closed.right
        new_start = max(row_start, stop)
        return self._cut(pos, new_start, row_stop, row_closed.set_left(left))

    def _cut(self, pos: int, start: tuple, stop: tuple, closed: Closed) -> list[Commit]:
        if start == stop and closed != Closed.BOTH:
            return []
        piece = self.slice(pos, pos + 1)
        # New arrays rather than item assignment: a str bound may be wider than the old one
        for name, value in zip(self.schema.idx, start):
            piece.start[name] = _column_array(self.schema, name, [value])
        for name, value in zip(self.schema.idx, stop):
            piece.stop[name] = _column_array(self.schema, name, [value])
        piece.closed = numpy.array([closed.short])
        return [piece]

    # Reading

    def segments(
        self,
        label: str,
        pod: POD,
        start: tuple = (),
        stop: tuple = (),
        closed: Closed | str = "b",
    ) -> list[Segment]:
        """The visible pieces of `label` inside the query range, in index order.

        A bound shorter than the index (a partial key) compares on its prefix only.
        """
        closed = Closed.cast(closed)
        start, stop = tuple(start or ()), tuple(stop or ())
        if not start:
            closed = closed.set_left(True)
        if not stop:
            closed = closed.set_right(True)
        found = []
        for pos in range(*self.label_range(label)):
            bounds = self._clip(pos, start, stop, closed)
            if bounds is not None:
                digests = {n: str(self.digest[n][pos]) for n in self.schema}
                segment = Segment(self, pod, digests, *bounds, length=int(self.length[pos]))
                segment.clipped = bounds != self._row_bounds(pos)
                segment.stored_len = int(self.length[pos])
                found.append(segment)
        return found

    def _row_bounds(self, pos: int) -> tuple:
        return (
            self._bound(self.start, pos),
            self._bound(self.stop, pos),
            Closed[str(self.closed[pos])],
        )

    def _clip(self, pos: int, start: tuple, stop: tuple, closed: Closed) -> tuple | None:
        """Visible ``(start, stop, closed)`` of row `pos` inside the query, or None."""
        row_start, row_stop = self._bound(self.start, pos), self._bound(self.stop, pos)
        row_closed = Closed[str(self.closed[pos])]
        eff_start, eff_stop = row_start, row_stop
        left, right = row_closed.left, row_closed.right
        if start:
            n = len(start)
            if _disjoint(start, row_stop[:n], closed.left, row_closed.right, n < len(row_stop)):
                return None
            if start > row_start[:n] or (start == row_start[:n] and not closed.left):
                eff_start, left = start, closed.left
        if stop:
            n = len(stop)
            if _disjoint(row_start[:n], stop, closed.right, row_closed.left, n < len(row_start)):
                return None
            if stop < row_stop[:n] or (stop == row_stop[:n] and not closed.right):
                eff_stop, right = stop, closed.right
        return eff_start, eff_stop, Closed.NONE.set_left(left).set_right(right)


def _disjoint(lo: tuple, hi: tuple, query_closed: bool, row_closed: bool, partial: bool) -> bool:
    """True when nothing lies between `lo` and `hi`, one being a query bound, one a row bound.

    For a partial query key equal to the row bound's prefix, only the query's flag matters:
    an open query bound excludes every key with that prefix.
    """
    if lo != hi:
        return lo > hi
    return not query_closed if partial else not (query_closed and row_closed)


def _key(commit: Commit, pos: int, bounds: dict) -> tuple:
    return (str(commit.label[pos]),) + tuple(bounds[n][pos] for n in commit.schema.idx)


def _column_array(schema: Schema, name: str, values: list) -> numpy.ndarray:
    dt = schema[name].dt
    return numpy.array(values, dtype="U" if dt.kind == "U" else dt)


class Segment:
    """The visible part of one commit row: a lazily decoded piece of a series."""

    def __init__(
        self,
        commit: Commit,
        pod: POD,
        digest: dict[str, str],
        start: tuple,
        stop: tuple,
        closed: Closed,
        length: int | None = None,
    ) -> None:
        self.commit = commit
        self.length = length  # values stored in the commit row: bounds their decoding
        self.pod = pod
        self.digest = digest
        self.start = start
        self.stop = stop
        self.closed = closed
        self.schema = commit.schema
        self._columns: dict[str, numpy.ndarray] = {}
        self._positions: tuple[int, int] | None = None
        self._stored_len = 0
        self._locks: dict[str, threading.Lock] = {}
        self.clipped = False  # True when the query shows only part of the commit row
        self.stored_len: int | None = None  # rows of the stored arrays, as the commit says

    @property
    def positions(self) -> tuple[int, int]:
        """``(start_pos, stop_pos)`` of the visible rows in the stored arrays."""
        if self._positions is None:
            from .frame import Frame

            index = Frame(self.schema, {n: self._column(n) for n in self.schema.idx})
            lo, hi = index.slice_index(self.start, self.stop, self.closed)
            self._stored_len = len(index)
            self._positions = (lo or 0, len(index) if hi is None else hi)
        return self._positions

    @property
    def start_pos(self) -> int:
        return self.positions[0]

    @property
    def stop_pos(self) -> int:
        return self.positions[1]

    def __len__(self) -> int:
        lo, hi = self.positions
        return max(0, hi - lo)

    def len(self) -> int:
        return len(self)

    def read(self, name: str, start_pos: int | None = None, stop_pos: int | None = None):
        """Column `name` restricted to the visible rows, then sliced by positions."""
        lo, hi = self.positions
        return self._column(name)[lo:hi][start_pos:stop_pos]

    def read_into(self, name: str, start: int, stop: int, out: numpy.ndarray) -> None:
        """Copy visible rows ``[start, stop)`` of column `name` into `out`.

        When those rows are the whole stored array, the data file is decoded straight
        into `out`: a full read then costs no temporary array and no extra copy.
        """
        lo, hi = self.positions
        first, last = lo + start, lo + stop
        if name not in self._columns and first == 0 and last == self._stored_len:
            load_column(
                self.pod,
                self.digest[name],
                self.commit.embedded,
                self.schema[name].codec,
                out=out,
                length=self.length,
            )
            return
        out[...] = self._column(name)[first:last]

    @property
    def frame(self):
        from .frame import Frame

        return Frame(self.schema, {n: self.read(n) for n in self.schema})

    def load(self, name: str) -> numpy.ndarray:
        """The whole stored array of column `name`, decoded once and kept."""
        return self._column(name)

    def load_into(self, name: str, out: numpy.ndarray) -> None:
        """Put the whole stored array of column `name` in `out` (which must hold exactly
        `stored_len` values) and keep it as the decoded column, until `release`."""
        with self._locks.setdefault(name, threading.Lock()):
            if name in self._columns:
                out[...] = self._columns[name]
            else:
                codec = self.schema[name].codec
                load_column(self.pod, self.digest[name], self.commit.embedded, codec, out=out)
            self._columns[name] = out

    def release(self) -> None:
        """Forget the decoded arrays (the visible positions stay known): once they are
        handed out in a frame, later reads of this segment must not see changes to it."""
        self.positions  # noqa: B018 (computed while the index is still there)
        self._columns = {}

    def _column(self, name: str) -> numpy.ndarray:
        with self._locks.setdefault(name, threading.Lock()):
            if name not in self._columns:
                self._columns[name] = load_column(
                    self.pod,
                    self.digest[name],
                    self.commit.embedded,
                    self.schema[name].codec,
                    length=self.length,
                )
            return self._columns[name]

    def __repr__(self) -> str:
        return f"<Segment {self.start}->{self.stop} ({self.closed.short})>"


def load_column(
    pod: POD,
    digest: str,
    embedded: dict[str, bytes],
    codec: Codec,
    verify: bool | None = None,
    out: numpy.ndarray | None = None,
    length: int | None = None,
) -> numpy.ndarray:
    """The decoded array of a column (written into `out` if given). `length`, the number
    of values of its commit row, bounds what decoding may allocate (see `Codec.decode`).

    A data file that does not decode raises `CorruptedDataError` naming its path; so does
    one whose content does not match its digest when `verify` (default: `verify_reads`,
    which follows `settings.verify_digests`). Embedded arrays are covered by the digest
    of their revision.
    """
    if digest in embedded or digest == EMPTY_DIGEST:
        source = f"embedded array {digest}"
        return decode_checked(codec, embedded.get(digest, b""), source, out, length)
    path, data = _read_stored(pod, digest)
    arr = decode_checked(codec, data, f"data file {path}", out, length)
    if verify_reads(pod) if verify is None else verify:
        _check_digest(codec, arr, data, digest, path)
    return arr


def read_to_copy(pod: POD, digest: str, codec: Codec, length: int | None = None) -> bytes:
    """The stored bytes of a data file about to be copied into another repository
    (pull, push), checked against its digest first unless `verify_copies` says not to.
    `length`, its number of values, bounds the decoding as in `load_column`."""
    path, data = _read_stored(pod, digest)
    if verify_copies():
        arr = decode_checked(codec, data, f"data file {path}", length=length)
        _check_digest(codec, arr, data, digest, path)
    return data


def _check_digest(codec: Codec, arr: numpy.ndarray, data: bytes, digest: str, path: str) -> None:
    if not codec.matches(arr, data, digest):
        raise CorruptedDataError(f"Data file {path} does not match its digest {digest}")


def decode_checked(
    codec: Codec,
    data: bytes,
    source: str,
    out: numpy.ndarray | None = None,
    length: int | None = None,
) -> numpy.ndarray:
    """`codec.decode(data, length)`, or into `out`; any failure means damaged bytes:
    `CorruptedDataError`."""
    try:
        if out is None:
            return codec.decode(data, length)
        codec.decode_into(data, out)
        return out
    except Exception as exc:  # codecs raise RuntimeError, ValueError, msgpack errors...
        raise CorruptedDataError(f"Unable to decode {source}: {exc}") from exc


def _read_stored(pod: POD, digest: str) -> tuple[str, bytes]:
    """``(location, bytes)`` of a data file, found under its name or a soft-deleted one."""
    for candidate in _stored_names(pod, digest):
        try:
            return f"{pod.path / candidate}", pod.read(candidate)
        except FileNotFoundError:
            continue
    raise MissingDataError(f"File {pod.path / digest_path(digest)} is missing!")


def _stored_names(pod: POD, digest: str) -> Iterator[str]:
    """Where a data file may be: its name, soft-deleted names (listed only if needed),
    and its name again, since GC may restore a soft-deleted file meanwhile."""
    path = digest_path(digest)
    yield path
    folder, name = hashed_path(digest)
    for found in sorted(pod.ls(str(folder), missing_ok=True)):
        found = found.rsplit("/", 1)[-1]
        if found.startswith(name + "."):
            yield f"{folder}/{found}"
    yield path
