"""`Frame`: an in-memory table of numpy columns bound to a `Schema`.

Columns are plain numpy arrays of equal length. Positional slices return views; index
look-ups bisect each index column in turn with `numpy.searchsorted`, so no Python loop
runs per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timezone
from typing import Any

import numpy

from lakota.errors import ExpressionError, FrameError
from lakota.interop import frame_to_arrow, frame_to_polars, require
from lakota.schema import Schema
from lakota.sexpr import AST, Alias, Env, Groups
from lakota.utils import Closed, as_tz, floor, pooled_map, pretty_nb

__all__ = ["Frame"]

_DEFAULT_ENV = {"floor": floor, "pretty_nb": pretty_nb, "as-tz": as_tz}


class Frame:
    """A dict of equal-length numpy arrays, cast with (and ordered by) a schema."""

    def __init__(self, schema: Schema, columns: Any = None) -> None:
        self.schema = schema
        self.env: dict[str, Any] = {}
        self.columns: dict[str, numpy.ndarray] = schema.cast(columns)
        _check_lengths(self.columns)

    @classmethod
    def _wrap(
        cls, schema: Schema, columns: dict[str, numpy.ndarray], env: dict | None = None
    ) -> Frame:
        """Build a frame from columns that are already cast and of equal length."""
        frm = cls.__new__(cls)
        frm.schema = schema
        frm.env = dict(env) if env else {}
        frm.columns = columns
        return frm

    def _derive(self, columns: dict[str, numpy.ndarray]) -> Frame:
        return Frame._wrap(self.schema, columns, self.env)

    # --- constructors ------------------------------------------------------------------

    @classmethod
    def from_records(cls, schema: Schema, records: Sequence[Mapping]) -> Frame:
        """Frame from a list of dicts; the keys come from the first record."""
        records = list(records)
        if not records:
            return cls(schema, {})
        keys = list(records[0])
        try:
            columns = {key: [rec[key] for rec in records] for key in keys}
        except KeyError as exc:
            raise FrameError(f"Record without key {exc.args[0]!r}") from None
        return cls(schema, columns)

    @classmethod
    def from_segments(
        cls,
        schema: Schema,
        segments: Iterable[Any],
        limit: int | None = None,
        offset: int | None = None,
        select: str | Sequence[str] | None = None,
    ) -> Frame:
        """Concatenate the visible rows of `segments`; offset and limit count global rows.

        The index columns of every segment are decoded first, in parallel, to find the
        visible rows (with every column of the segments the query cuts); then every
        other column is decoded in parallel straight into its place in preallocated
        output arrays.
        """
        names = _select_names(list(schema), select)
        offset = offset or 0
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError("offset and limit must not be negative")
        segments = list(segments)
        cpu = _cpu_bound(segments)
        if limit is None and not offset and _whole_candidates(schema, names, segments):
            columns = _read_whole(schema, names, segments, cpu)
            if columns is not None:
                return cls(schema, columns)
        _preload(schema, segments, names, cpu)
        pieces = []
        for sgm in segments:
            if limit is not None and limit <= 0:
                break
            size = len(sgm)
            if offset >= size:
                offset -= size
                continue
            start, offset = offset, 0
            stop = size if limit is None else min(size, start + limit)
            if limit is not None:
                limit -= stop - start
            pieces.append((sgm, start, stop))
        return cls(schema, _gather(schema, names, pieces, cpu))

    @classmethod
    def concat(cls, *frames: Frame) -> Frame | None:
        """Concatenate frames sharing a schema; the columns are those of the first frame."""
        if len(frames) == 1 and isinstance(frames[0], (list, tuple)):
            frames = tuple(frames[0])
        if not frames:
            return None
        first = frames[0]
        if len(frames) == 1:
            return first
        if any(f.schema != first.schema for f in frames[1:]):
            raise FrameError("Unable to concat frames with different schema")
        try:
            columns = {
                name: _concat([f.columns[name] for f in frames]) for name in first.columns
            }
        except KeyError as exc:
            raise FrameError(f"Unable to concat frames: column {exc.args[0]!r} missing") from None
        return first._derive(columns)

    # --- export ------------------------------------------------------------------------

    def df(self, *ignored: Any) -> Any:
        """pandas DataFrame of the present columns, in schema order."""
        pandas = require("pandas", "Frame.df()")
        return pandas.DataFrame({n: self.columns[n] for n in self.schema if n in self.columns})

    def arrow(self) -> Any:
        """`pyarrow.Table` of the present columns, zero-copy where the types allow.

        See `lakota.interop` for the type mapping.
        """
        return frame_to_arrow(self)

    def polars(self) -> Any:
        """`polars.DataFrame` of the present columns, zero-copy where the types allow.

        See `lakota.interop` for the type mapping.
        """
        return frame_to_polars(self)

    def values(self, map_dtype: str | None = None) -> list:
        """The column arrays, optionally converted for output (see `SchemaColumn.map_dtype`)."""
        if not map_dtype:
            return list(self.columns.values())
        return [self.schema[n].map_dtype(arr, map_dtype) for n, arr in self.columns.items()]

    def records(self, map_dtype: str | None = "default") -> Iterator[dict]:
        """Yield one dict per row."""
        names = list(self.columns)
        cols = [_as_items(arr) for arr in self.values(map_dtype)]
        for row in zip(*cols):
            yield dict(zip(names, row))

    # --- sizes and bounds --------------------------------------------------------------

    def __len__(self) -> int:
        for arr in self.columns.values():
            return len(arr)
        return 0

    @property
    def empty(self) -> bool:
        return len(self) == 0

    def start(self) -> tuple:
        """Index tuple of the first row (`IndexError` if empty)."""
        if self.empty:
            raise IndexError("start() of an empty frame")
        return tuple(self.columns[name][0] for name in self.schema.idx)

    def stop(self) -> tuple:
        """Index tuple of the last row (`IndexError` if empty)."""
        if self.empty:
            raise IndexError("stop() of an empty frame")
        return tuple(self.columns[name][-1] for name in self.schema.idx)

    # --- sorting -----------------------------------------------------------------------

    def argsort(self, *cols: str) -> numpy.ndarray:
        """Stable lexicographic argsort over `cols` (default: the index columns)."""
        arrays = [self.columns[c] for c in (cols or self.schema.idx)]
        if not arrays:
            return numpy.arange(len(self))
        if len(arrays) == 1:
            return numpy.argsort(arrays[0], kind="stable")
        try:
            return numpy.lexsort(arrays[::-1])
        except TypeError:  # dtypes lexsort cannot handle: successive stable sorts
            order = numpy.arange(len(self))
            for arr in reversed(arrays):
                order = order[numpy.argsort(arr[order], kind="stable")]
            return order

    def copy(self) -> Frame:
        """A frame with its own copy of every column."""
        return self._derive({name: arr.copy() for name, arr in self.columns.items()})

    def is_sorted(self) -> bool:
        """True if the rows are non-decreasing over the index columns (lexicographic)."""
        return _lex_sorted([self.columns[name] for name in self.schema.idx])

    def sorted(self, *cols: str) -> Frame:
        """The frame sorted over `cols` (default: the index columns)."""
        return self.mask(self.argsort(*cols))

    # --- selection ---------------------------------------------------------------------

    def mask(self, mask: Any, env: Mapping | None = None) -> Frame:
        """Rows selected by a boolean or integer array, or by an s-expression."""
        if isinstance(mask, (str, AST)):
            mask = self.eval(mask, env)
        mask = numpy.asarray(mask)
        if mask.ndim == 0 and mask.dtype == bool:
            mask = numpy.full(len(self), bool(mask))
        if mask.ndim != 1:
            raise FrameError(f"Invalid mask of shape {mask.shape}")
        if mask.dtype == bool:
            if len(mask) != len(self):
                raise FrameError(f"Length mismatch: mask has {len(mask)} rows, frame {len(self)}")
        elif len(mask) == 0:
            mask = mask.astype(numpy.intp)
        elif mask.dtype.kind not in "iu":
            raise FrameError(f"Invalid mask dtype {mask.dtype}: expected bool or int")
        return self._derive({name: arr[mask] for name, arr in self.columns.items()})

    def eval(self, expr: str | AST, env: Mapping | None = None) -> Any:
        """Evaluate an s-expression; `self` is this frame and bare names are its columns."""
        ast = expr if isinstance(expr, AST) else AST.parse(expr)
        return ast.eval(self._env(env))

    def _env(self, *extra: Mapping | None) -> Env:
        return Env(_DEFAULT_ENV, self.env, self, {"self": self}, *extra)

    def index(self, values: Any, right: bool = False) -> int | None:
        """Lexicographic bisect of (a prefix of) an index tuple over the index columns."""
        if values is None:
            return None
        if not isinstance(values, (tuple, list)):
            values = (values,)
        if len(values) == 0:
            return None
        if len(values) > len(self.schema.idx):
            raise FrameError(f"Too many index values: {values!r}")
        lo, hi = 0, len(self)
        for name, value in zip(self.schema.idx, values):
            arr = self.columns[name][lo:hi]
            value = _bisect_value(arr, value)
            left = int(numpy.searchsorted(arr, value, side="left"))
            right_ = int(numpy.searchsorted(arr, value, side="right"))
            lo, hi = lo + left, lo + right_
            if lo == hi:
                break
        return hi if right else lo

    def slice_index(
        self, start: Any = None, stop: Any = None, closed: Closed | str = "l"
    ) -> tuple[int | None, int | None]:
        """Positions `(lo, hi)` of the rows between `start` and `stop` (index tuples)."""
        closed = Closed.cast(closed)
        return self.index(start, right=not closed.left), self.index(stop, right=closed.right)

    def slice(self, start: int | None = None, stop: int | None = None) -> Frame:
        """Positional slice (Python semantics); the columns are views."""
        return self._derive({name: arr[start:stop] for name, arr in self.columns.items()})

    def islice(self, start: Any = None, stop: Any = None, closed: Closed | str = "l") -> Frame:
        """Rows between two index tuples (already cast values)."""
        return self.slice(*self.slice_index(start, stop, closed))

    def chunks(self, size: int) -> Iterator[Frame]:
        """Consecutive pieces of about `size` rows; a run of equal keys is never split."""
        start, total = 0, len(self)
        while start < total:
            end = min(start + size, total)
            if end < total:
                end = self.index(self.schema.row(self.columns, end - 1, full=False), right=True)
            yield self.slice(start, end)
            start = end

    def select(self, keep: str | Iterable[str] | None) -> Frame:
        """Only the `keep` columns (a string keeps that single column); falsy keeps all."""
        if not keep:
            return self
        names = _select_names(list(self.columns), keep)
        return self._derive({name: self.columns[name] for name in names})

    def drop(self, *cols: str) -> Frame:
        """All columns except `cols`."""
        if len(cols) == 1 and isinstance(cols[0], (list, tuple, set)):
            cols = tuple(cols[0])
        return self._derive({n: arr for n, arr in self.columns.items() if n not in cols})

    def rename(self, mapping: Mapping[str, str]) -> Frame:
        """A new frame (and schema) with columns renamed by `mapping` (`{old: new}`)."""
        unknown = [old for old in mapping if old not in self.schema]
        if unknown:
            raise KeyError(f"Unknown column(s): {', '.join(unknown)}")
        new_cols = {mapping.get(n, n): col for n, col in self.schema.columns.items()}
        if len(new_cols) != len(self.schema.columns):
            raise FrameError(f"Renaming {dict(mapping)} would merge columns")
        schema = Schema(**new_cols)
        schema.kind = self.schema.kind
        columns = {mapping.get(n, n): arr for n, arr in self.columns.items()}
        return Frame._wrap(schema, columns, self.env)

    # --- dict-like access --------------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return self.columns[key]
            except KeyError:
                raise KeyError(key) from None
        if isinstance(key, slice):
            if key.step is not None:
                raise ValueError("Frame slices do not support a step")
            start = self.schema.deserialize(_as_bound(key.start))
            stop = self.schema.deserialize(_as_bound(key.stop))
            return self.islice(start, stop, closed="l")
        if isinstance(key, (list, tuple)) and all(isinstance(k, str) for k in key) and key:
            missing = [k for k in key if k not in self.columns]
            if missing:
                raise KeyError(missing[0] if len(missing) == 1 else missing)
            return self._derive({k: self.columns[k] for k in key})
        if isinstance(key, (numpy.ndarray, list, tuple)):
            return self.mask(key)
        raise TypeError(f"Invalid frame key: {type(key).__name__}")

    def __setitem__(self, name: str, values: Any) -> None:
        column = self.schema[name]
        if numpy.ndim(values) == 0:
            values = numpy.full(len(self), column.cast_scalar(values), dtype=column.dt)
        arr = column.cast(values)
        others = [len(a) for n, a in self.columns.items() if n != name]
        if others and others[0] != len(arr):
            raise FrameError(
                f"Length mismatch: column {name!r} has {len(arr)} rows, frame has {others[0]}"
            )
        self.columns[name] = arr

    def get(self, name: str, default: Any = None) -> Any:
        return self.columns.get(name, default)

    def keys(self) -> Iterable[str]:
        return self.columns.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Frame):
            other_cols = self.schema.cast(other.columns)
        elif isinstance(other, Mapping):
            try:
                other_cols = Frame(self.schema, other).columns
            except (FrameError, ValueError, TypeError):
                return False
        else:
            return NotImplemented
        for name in self.schema:
            mine, theirs = self.columns.get(name), other_cols.get(name)
            if mine is None or theirs is None:
                if mine is not theirs:
                    return False
                continue
            if not _array_equal(mine, theirs):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        cols = ", ".join(f"{n}:{a.dtype}" for n, a in self.columns.items())
        return f"<Frame {len(self)} rows [{cols}]>"

    # --- reduce ------------------------------------------------------------------------

    def reduce(self, *col_list: str, **col_dict: str) -> Frame:
        """Evaluate expressions per row, or group by the non-aggregate ones and aggregate.

        Plain strings are column names, strings starting with "(" are s-expressions and
        `(as expr "name")` renames an output column. Without aggregates every output column
        is an index column; otherwise the group-by keys are.
        """
        exprs = {c: c for c in col_list}
        exprs.update(col_dict)
        if not exprs:
            raise ExpressionError("reduce needs at least one column or expression")
        parsed = {name: _parse_column(expr) for name, expr in exprs.items()}
        if not any(_is_agg(item) for item in parsed.values()):
            env = self._env()
            columns = dict(self._eval_column(n, item, env, len(self)) for n, item in parsed.items())
            return Frame(Schema.from_frame(columns), columns)

        env = self._env()
        key_cols = dict(
            self._eval_column(n, item, env, len(self))
            for n, item in parsed.items()
            if not _is_agg(item)
        )
        extra, key_out = self._group(key_cols)
        agg_env = self._env(extra)
        columns: dict[str, numpy.ndarray] = {}
        key_iter = iter(key_out.items())
        for name, item in parsed.items():  # keep the requested column order
            if _is_agg(item):
                out, arr = self._eval_column(name, item, agg_env, 1)
            else:
                out, arr = next(key_iter)
            columns[out] = arr
        _check_lengths(columns)
        schema = Schema.from_frame(columns, idx_columns=list(key_out) or None)
        return Frame(schema, columns)

    def _eval_column(
        self, name: str, item: AST | str, env: Env, size: int
    ) -> tuple[str, numpy.ndarray]:
        """Evaluate one reduce expression to `(output name, 1-d array)`."""
        value = item.eval(env) if isinstance(item, AST) else self[item]
        if isinstance(value, Alias):
            name, value = value.name, value.value
        arr = numpy.asarray(value)
        if arr.ndim == 0:  # broadcast scalars
            arr = numpy.full(size, arr[()], dtype=arr.dtype)
        return name, arr

    def _group(self, key_cols: dict[str, numpy.ndarray]) -> tuple[dict, dict]:
        """Bin the rows on the key columns: (environment extras, unique key columns)."""
        if not key_cols:
            return {}, {}
        arrays = list(key_cols.values())
        if _lex_sorted(arrays):  # common case (keys are index columns): no sort needed
            change = _changes(arrays)
            bins = numpy.cumsum(change) - 1
            starts = numpy.flatnonzero(change)
            key_out = {name: arr[starts] for name, arr in key_cols.items()}
            keys = _records(list(key_out.values()))
            groups = Groups(bins, len(starts), presorted=True)
        elif len(arrays) == 1:
            keys, bins = numpy.unique(arrays[0], return_inverse=True)
            key_out = {next(iter(key_cols)): keys}
            groups = Groups(bins, len(keys))
        else:
            keys, bins = numpy.unique(_records(arrays), return_inverse=True)
            key_out = {name: keys[f"f{i}"] for i, name in enumerate(key_cols)}
            groups = Groups(bins, len(keys))
        extra = {"_keys": keys, "_bins": groups.bins, "_groups": groups}
        return extra, key_out


# --- helpers -----------------------------------------------------------------------------


def _check_lengths(columns: Mapping[str, numpy.ndarray]) -> None:
    lengths = {name: len(arr) for name, arr in columns.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{n}={n_rows}" for n, n_rows in lengths.items())
        raise FrameError(f"Length mismatch between columns: {detail}")


def _lex_sorted(arrays: list[numpy.ndarray]) -> bool:
    """True if the rows of `arrays` (first array most significant) are non-decreasing."""
    if not arrays or len(arrays[0]) < 2:
        return True
    if len(arrays) == 1:
        return bool((arrays[0][1:] >= arrays[0][:-1]).all())
    ok = numpy.ones(len(arrays[0]) - 1, dtype=bool)
    for arr in reversed(arrays):
        prev, nxt = arr[:-1], arr[1:]
        ok = (prev < nxt) | ((prev == nxt) & ok)
    return bool(ok.all())


def _records(arrays: list[numpy.ndarray]) -> numpy.ndarray:
    """One structured array (fields f0, f1...) from equal-length arrays."""
    if len(arrays) == 1:
        return arrays[0]
    rec = numpy.empty(len(arrays[0]), dtype=[(f"f{i}", a.dtype) for i, a in enumerate(arrays)])
    for i, arr in enumerate(arrays):
        rec[f"f{i}"] = arr
    return rec


def _changes(arrays: list[numpy.ndarray]) -> numpy.ndarray:
    """Boolean array: True where a row differs from the previous one (and on row 0)."""
    change = numpy.zeros(len(arrays[0]), dtype=bool)
    if len(change):
        change[0] = True
    for arr in arrays:
        change[1:] |= arr[1:] != arr[:-1]
    return change


def _select_names(names: list[str], keep: str | Iterable[str] | None) -> list[str]:
    if not keep:
        return names
    if isinstance(keep, str):
        keep = (keep,)
    keep = set(keep)
    return [n for n in names if n in keep]


def _preload(schema: Schema, segments: list[Any], names: list[str], cpu: bool) -> None:
    """Decode at once, in parallel, the index columns of every segment (they tell its
    visible rows) and the selected columns of the segments the query cuts (those are
    decoded whole anyway, so they need not wait for their index)."""
    tasks: list[tuple[Any, str]] = []
    for sgm in segments:
        tasks.extend((sgm, name) for name in schema.idx)
        if sgm.clipped:
            tasks.extend((sgm, name) for name in names if name not in schema.idx)
    pooled_map(_load_task, tasks, cpu=cpu)


def _whole_candidates(schema: Schema, names: list[str], segments: list[Any]) -> bool:
    """True if `_read_whole` may serve the read: numeric columns only, and segments the
    query does not cut, whose stored length the commit gives."""
    if not segments or not all(schema[name].numeric for name in [*schema.idx, *names]):
        return False
    return all(not sgm.clipped and getattr(sgm, "stored_len", None) is not None for sgm in segments)


def _read_whole(
    schema: Schema, names: list[str], segments: list[Any], cpu: bool
) -> dict[str, numpy.ndarray] | None:
    """Decode every column of every segment straight into its place in one output array
    per column, all at once on the pool, as if each segment showed all its stored rows.

    That is what a read of a series whose segments no later write has cut finds, and it
    saves decoding the index first, waiting, then copying it. If a segment turns out to
    hide some rows, None: the caller then takes the visible rows of what was decoded.
    """
    wanted = list(dict.fromkeys([*schema.idx, *names]))
    total = sum(sgm.stored_len for sgm in segments)
    outs = {name: numpy.empty(total, dtype=schema[name].dt) for name in wanted}
    tasks, pos = [], 0
    for sgm in segments:
        end = pos + sgm.stored_len
        tasks.extend((sgm, name, outs[name][pos:end]) for name in wanted)
        pos = end
    pooled_map(_load_into_task, tasks, cpu=cpu)
    if any(sgm.positions != (0, sgm.stored_len) for sgm in segments):
        return None
    for sgm in segments:
        sgm.release()
    return {name: outs[name] for name in names}


def _load_into_task(task: tuple[Any, str, numpy.ndarray]) -> None:
    sgm, name, out = task
    sgm.load_into(name, out)


def _load_task(task: tuple[Any, str]) -> Any:
    sgm, name = task
    return sgm.load(name)


def _cpu_bound(segments: list[Any]) -> bool:
    """True if reading these segments is bound by the CPU: all on local storage."""
    return all(getattr(getattr(sgm, "pod", None), "cpu_bound_reads", False) for sgm in segments)


def _gather(
    schema: Schema, names: list[str], pieces: list[tuple], cpu: bool = False
) -> dict[str, numpy.ndarray]:
    """Columns `names` of the ``(segment, start, stop)`` pieces, one after the other.

    Numeric columns are preallocated and each piece is read into its slice; the others,
    whose width varies from piece to piece, are concatenated.
    """
    total = sum(stop - start for _, start, stop in pieces)
    columns, tasks = {}, []
    for name in names:
        if not schema[name].numeric:
            columns[name] = []
            tasks.extend((sgm, name, start, stop, None) for sgm, start, stop in pieces)
            continue
        columns[name] = out = numpy.empty(total, dtype=schema[name].dt)
        pos = 0
        for sgm, start, stop in pieces:
            tasks.append((sgm, name, start, stop, out[pos : pos + stop - start]))
            pos += stop - start
    for (_, name, *_), arr in zip(tasks, pooled_map(_read_task, tasks, cpu=cpu)):
        if arr is not None:
            columns[name].append(arr)
    for name in names:
        if isinstance(columns[name], list):
            arrays = columns[name]
            columns[name] = _concat(arrays) if arrays else numpy.empty(0, schema[name].dt)
    return columns


def _read_task(task: tuple) -> numpy.ndarray | None:
    sgm, name, start, stop, out = task
    if out is None:
        return sgm.read(name, start_pos=start, stop_pos=stop)
    sgm.read_into(name, start, stop, out)
    return None


def _concat(arrays: list[numpy.ndarray]) -> numpy.ndarray:
    return arrays[0] if len(arrays) == 1 else numpy.concatenate(arrays)


def _as_items(arr: Any) -> Any:
    """Plain Python values for simple dtypes (faster to iterate), arrays otherwise."""
    if isinstance(arr, numpy.ndarray) and arr.dtype.kind in "biufU":
        return arr.tolist()
    return arr


def _as_bound(value: Any) -> tuple:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _bisect_value(arr: numpy.ndarray, value: Any) -> Any:
    """Make `value` comparable with `arr` (ISO strings or dates against datetimes)."""
    if arr.dtype.kind == "M" and isinstance(value, (str, date)):
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        try:
            return numpy.datetime64(value)
        except ValueError:
            raise FrameError(f"Invalid date bound {value!r}") from None
    return value


def _array_equal(a: numpy.ndarray, b: numpy.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return bool(numpy.array_equal(a, b, equal_nan=True))
    return bool(numpy.array_equal(a, b))


def _parse_column(expr: str) -> AST | str:
    if not isinstance(expr, str):
        raise ExpressionError(f"Invalid reduce expression: {expr!r}")
    return AST.parse(expr) if expr.lstrip().startswith("(") else expr


def _is_agg(item: AST | str) -> bool:
    return isinstance(item, AST) and item.is_aggregate()
