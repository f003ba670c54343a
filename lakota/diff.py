"""Differences between two states of a series or of a whole collection.

```python
from lakota import Repo, Schema
clct = Repo().create_collection(Schema(k="int*", v="float"), "c")
series = clct / "s"
series.write({"k": [1, 2, 3], "v": [1.0, 2.0, 3.0]})
clct.tag("before")
series.write({"k": [3, 4], "v": [30.0, 4.0]})
diff = series.diff("before")        # from the tag to the leaf
diff.added["k"].tolist()            # [4]
diff.changed["v_a"].tolist(), diff.changed["v_b"].tolist()   # [3.0], [30.0]
[(d.label, d.status, d.added, d.changed) for d in clct.diff("before")]  # [('s', 'modified', 1, 1)]
```

Only the segments that differ are read: a commit row present in both states (same
range, same digests) shows the same rows in both, and no other row of either state
shows any of its keys, so diffing two revisions that differ by one appended page reads
that page only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy

from .commit import Commit
from .frame import Frame
from .schema import Schema

if TYPE_CHECKING:
    from .collection import Collection
    from .series import Series

__all__ = ["Diff", "SeriesDiff", "collection_diff", "series_diff"]


class Diff(NamedTuple):
    """Rows only in b (`added`), only in a (`removed`), and in both with other values
    (`changed`: the index columns, then ``<column>_a`` and ``<column>_b`` per value column).
    """

    added: Frame
    removed: Frame
    changed: Frame


class SeriesDiff(NamedTuple):
    """One series that differs between two states of a collection."""

    label: str
    status: str  # "added", "removed" or "modified"
    start: tuple  # first and last index touched
    stop: tuple
    added: int
    removed: int
    changed: int


def series_diff(series: Series, a: Any, b: Any = None) -> Diff:
    """From the state at `a` to the state at `b` (default: the leaf)."""
    collection = series.collection
    return _label_diff(collection, series.label, collection.commit(at=a), collection.commit(at=b))


def collection_diff(collection: Collection, a: Any, b: Any = None) -> list[SeriesDiff]:
    """Every series whose rows differ between `a` and `b` (default: the leaf), by label."""
    old, new = collection.commit(at=a), collection.commit(at=b)
    labels = set(old.labels() if old is not None else []) | set(
        new.labels() if new is not None else []
    )
    found = []
    for label in sorted(labels):
        if _rows(old, label) == _rows(new, label):
            continue
        diff = _label_diff(collection, label, old, new)
        counts = [len(diff.added), len(diff.removed), len(diff.changed)]
        if not any(counts):
            continue  # rewritten (defrag...), same rows
        keys = [_bounds(frame) for frame in diff if not frame.empty]
        start, stop = min(k[0] for k in keys), max(k[1] for k in keys)
        status = (
            "added"
            if label not in _labels(old)
            else "removed"
            if label not in _labels(new)
            else "modified"
        )
        found.append(SeriesDiff(label, status, start, stop, *counts))
    return found


def _labels(commit: Commit | None) -> list[str]:
    return commit.labels() if commit is not None else []


def _bounds(frame: Frame) -> tuple[tuple, tuple]:
    return frame.start(), frame.stop()


def _rows(commit: Commit | None, label: str) -> list[tuple]:
    """Comparable identities of the rows of `label` (range, flags, digests)."""
    if commit is None:
        return []
    return [(r.start, r.stop, r.closed.short, r.digest) for r in commit.match(label)]


def _only(commit: Commit | None, label: str, skip: set[tuple], collection: Collection) -> Frame:
    """The rows of `label` in `commit` outside its commit rows in `skip`."""
    if commit is None:
        return Frame(collection.schema)
    a, _ = commit.label_range(label)
    keep = [a + i for i, row in enumerate(_rows(commit, label)) if row not in skip]
    if not keep:
        return Frame(collection.schema)
    part = commit.take(keep)
    return Frame.from_segments(collection.schema, part.segments(label, collection.pod))


def _label_diff(collection: Collection, label: str, old: Commit | None, new: Commit | None) -> Diff:
    shared = set(_rows(old, label)) & set(_rows(new, label))
    before = _only(old, label, shared, collection)
    after = _only(new, label, shared, collection)
    schema = collection.schema
    changed_schema = _changed_schema(schema)
    if before.empty or after.empty:
        return Diff(after, before, Frame(changed_schema))
    if _has_duplicates(before) or _has_duplicates(after):
        return _diff_groups(before, after, changed_schema)
    keys_a, keys_b = _keys(before, after)
    _, pos_a, pos_b = numpy.intersect1d(keys_a, keys_b, assume_unique=True, return_indices=True)
    only_a = numpy.ones(len(before), dtype=bool)
    only_a[pos_a] = False
    only_b = numpy.ones(len(after), dtype=bool)
    only_b[pos_b] = False
    values = [name for name in schema if name not in schema.idx]
    differs = numpy.zeros(len(pos_a), dtype=bool)
    for name in values:
        differs |= ~_same(before[name][pos_a], after[name][pos_b])
    pos_a, pos_b = pos_a[differs], pos_b[differs]
    columns = {name: after[name][pos_b] for name in schema.idx}
    for name in values:
        columns[f"{name}_a"] = before[name][pos_a]
        columns[f"{name}_b"] = after[name][pos_b]
    order = numpy.argsort(pos_b, kind="stable")
    changed = Frame(changed_schema, {name: arr[order] for name, arr in columns.items()})
    return Diff(after.mask(only_b), before.mask(only_a), changed)


def _changed_schema(schema: Schema) -> Schema:
    dump = schema.dumps()
    columns = {name: dump["columns"][name] for name in schema.idx}
    for name in schema:
        if name not in schema.idx:
            column = {**dump["columns"][name], "idx": False}
            columns[f"{name}_a"] = column
            columns[f"{name}_b"] = column
    return Schema.loads({"kind": None, "columns": columns})


def _has_duplicates(frame: Frame) -> bool:
    if len(frame) < 2:
        return False
    same = numpy.ones(len(frame) - 1, dtype=bool)
    for name in frame.schema.idx:
        same &= frame[name][1:] == frame[name][:-1]
    return bool(same.any())


def _keys(one: Frame, other: Frame) -> tuple[numpy.ndarray, numpy.ndarray]:
    """The index of both frames as comparable arrays (structured for several columns)."""
    names = list(one.schema.idx)
    dtypes = [numpy.result_type(one[n].dtype, other[n].dtype) for n in names]
    if len(names) == 1:
        return one[names[0]].astype(dtypes[0]), other[names[0]].astype(dtypes[0])
    dtype = numpy.dtype([(f"f{i}", dt) for i, dt in enumerate(dtypes)])

    def pack(frame: Frame) -> numpy.ndarray:
        packed = numpy.empty(len(frame), dtype=dtype)
        for i, name in enumerate(names):
            packed[f"f{i}"] = frame[name]
        return packed

    return pack(one), pack(other)


def _same(x: numpy.ndarray, y: numpy.ndarray) -> numpy.ndarray:
    """Elementwise equality where NaN equals NaN and NaT equals NaT."""
    if x.dtype.kind == "O" or y.dtype.kind == "O":
        return numpy.array([_plain_equal(u, v) for u, v in zip(x, y)], dtype=bool)
    equal = x == y
    if x.dtype.kind in "fc":
        equal |= numpy.isnan(x) & numpy.isnan(y)
    elif x.dtype.kind in "mM":
        equal |= numpy.isnat(x) & numpy.isnat(y)
    return equal


def _plain_equal(u: Any, v: Any) -> bool:
    if isinstance(u, float) and isinstance(v, float) and u != u and v != v:
        return True
    try:
        return bool(u == v)
    except (TypeError, ValueError):
        return False


def _diff_groups(before: Frame, after: Frame, changed_schema: Schema) -> Diff:
    """The diff when an index repeats: a key whose rows differ at all counts as removed
    (its rows in a) and added (its rows in b)."""
    groups_a, groups_b = _groups(before), _groups(after)
    keep_a = numpy.array([groups_a[k] != groups_b.get(k) for k in _index(before)], dtype=bool)
    keep_b = numpy.array([groups_b[k] != groups_a.get(k) for k in _index(after)], dtype=bool)
    return Diff(after.mask(keep_b), before.mask(keep_a), Frame(changed_schema))


def _index(frame: Frame) -> list[tuple]:
    return list(zip(*(frame[name].tolist() for name in frame.schema.idx)))


def _groups(frame: Frame) -> dict[tuple, list[tuple]]:
    rows = list(zip(*(frame[name].tolist() for name in frame.schema)))
    groups: dict[tuple, list[tuple]] = {}
    for key, row in zip(_index(frame), rows):
        groups.setdefault(key, []).append(tuple("<NaN>" if v != v else v for v in row))
    return groups
