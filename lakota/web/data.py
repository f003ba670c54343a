"""What the web pages show, as plain dicts ready for JSON: the queries behind every route.

```python
from lakota import Repo, Schema
from lakota.web import data
repo = Repo("memory://")
clct = repo.create_collection(Schema(timestamp="timestamp*", value="float"), "temp")
(clct / "paris").write({"timestamp": ["2024-01-01", "2024-01-02"], "value": [1.0, 2.5]})
data.series_page(clct, "par", offset=0, limit=50)["labels"]     # ['paris']
data.plot(clct / "paris", data.pick_commit(clct), None, None, width=800)["y"]  # [[1.0, 2.5]]
```

Bounds are given in *chart units*: epoch seconds for a time index (a float, UTC), the
value itself for a numeric index; ISO dates are accepted too. Every range includes both
bounds. `rev` names a revision by its child id (``<hextime>-<sha1>``, as listed by
`revisions`); without it the latest revision is read.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any

import numpy

from lakota.collection import Collection
from lakota.commit import Commit
from lakota.frame import Frame
from lakota.repo import Repo
from lakota.schema import Schema
from lakota.series import Series
from lakota.web.m4 import m4_rows

__all__ = [
    "collections_info",
    "pick_commit",
    "plot",
    "range_frame",
    "revisions",
    "series_page",
    "table",
]

MAX_WIDTH = 4000
MAX_PAGE = 1000
_CACHE_SIZE = 32


class RevisionNotFound(KeyError):
    """The revision asked for is not in the collection's changelog."""


class _CommitCache:
    """Decoded commits by revision: a revision's content never changes, so reuse it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[tuple, Commit] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, collection: Collection, revision: Any) -> Commit:
        key = (id(collection.pod), collection.path, revision.child)
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        commit = revision.commit(collection)
        with self.lock:
            self.items[key] = commit
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return commit


_commits = _CommitCache(_CACHE_SIZE)


def epoch_text(hextime: str) -> str:
    """A revision's hextime (milliseconds since the epoch) as an ISO date, UTC."""
    stamp = datetime.fromtimestamp(int(hextime, 16) / 1000, tz=timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def schema_info(schema: Schema) -> list[dict]:
    """One ``{"name", "type", "index"}`` per column, in schema order."""
    return [
        {"name": name, "type": str(col.dt), "index": col.idx}
        for name, col in schema.columns.items()
    ]


def collections_info(repo: Repo) -> list[dict]:
    """Every collection with its schema, number of series and last revision."""
    found = []
    for clct in repo.search():
        leaf = clct.changelog.leaf()
        commit = _commits.get(clct, leaf) if leaf is not None else None
        found.append(
            {
                "label": clct.label,
                "kind": clct.schema.kind or "series",
                "schema": schema_info(clct.schema),
                "series": len(commit.labels()) if commit is not None else 0,
                "last_revision": _revision_info(leaf) if leaf is not None else None,
            }
        )
    return found


def _revision_info(revision: Any) -> dict:
    return {
        "revision": revision.child,
        "parent": revision.parent,
        "date": epoch_text(revision.epoch),
        "leaf": revision.is_leaf,
    }


def revisions(collection: Collection) -> list[dict]:
    """The collection's revisions, newest first (the revision picker's choices)."""
    return [_revision_info(rev) for rev in reversed(collection.changelog.log())]


def pick_commit(collection: Collection, rev: str | None = None) -> Commit | None:
    """The commit of revision `rev` (its child id), or of the latest revision."""
    if not rev:
        leaf = collection.changelog.leaf()
        return _commits.get(collection, leaf) if leaf is not None else None
    for revision in collection.changelog.log():
        if revision.child == rev:
            return _commits.get(collection, revision)
    raise RevisionNotFound(f"Revision {rev!r} not found in collection {collection.label!r}")


def series_page(
    collection: Collection, query: str, offset: int, limit: int, rev: str | None = None
) -> dict:
    """Labels containing `query` (case-insensitive), one page of them, and their count."""
    _check_page(offset, limit)
    commit = pick_commit(collection, rev)
    labels = commit.labels() if commit is not None else []
    needle = query.strip().casefold()
    if needle:
        labels = [label for label in labels if needle in label.casefold()]
    return {
        "total": len(labels),
        "offset": offset,
        "limit": limit,
        "labels": labels[offset : offset + limit],
    }


def _check_page(offset: int, limit: int) -> None:
    if offset < 0:
        raise ValueError(f"offset must not be negative, not {offset}")
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")


# --- ranges of one series -----------------------------------------------------------------


def parse_bound(schema: Schema, text: str | None, side: str) -> Any:
    """A bound in chart units (or an ISO date) as a value of the first index column."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    col = schema[schema.idx[0]]
    try:
        number = float(text)
    except ValueError:
        return text  # the schema casts it (an ISO date) or explains why it cannot
    if not math.isfinite(number):
        raise ValueError(f"Bound {text!r} must be a finite number")
    if col.dt.kind == "M":
        micros = math.ceil(number * 1e6) if side == "start" else math.floor(number * 1e6)
        return numpy.datetime64(micros, "us")
    if col.dt.kind in "iu":
        return math.ceil(number) if side == "start" else math.floor(number)
    return number


def _segments(series: Series, commit: Commit | None, start: Any, stop: Any) -> list:
    if commit is None:
        return []
    schema = series.schema
    low, _ = schema.query_bound(parse_bound(schema, start, "start"), "start")
    high, _ = schema.query_bound(parse_bound(schema, stop, "stop"), "stop")
    return commit.segments(series.label, series.pod, low, high, "b")


def range_frame(
    series: Series,
    commit: Commit | None,
    start: str | None,
    stop: str | None,
    select: list[str] | None = None,
    offset: int | None = None,
    limit: int | None = None,
) -> Frame:
    """The rows of `series` between the bounds (both included) as of `commit`."""
    segments = _segments(series, commit, start, stop)
    return Frame.from_segments(series.schema, segments, limit, offset, select)


def plottable(schema: Schema) -> list[str]:
    """Value columns a line chart can show: numbers and booleans."""
    return [name for name in schema.non_idx if schema[name].dt.kind in "biuf"]


def plot(
    series: Series,
    commit: Commit | None,
    start: str | None,
    stop: str | None,
    width: int,
    columns: list[str] | None = None,
) -> dict:
    """The chart's data for the range: x and each column, downsampled with M4 to `width`."""
    if not isinstance(width, int) or not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"width must be between 1 and {MAX_WIDTH}, not {width!r}")
    schema = series.schema
    index = schema.idx[0]
    if schema[index].dt.kind not in "biufM":
        raise ValueError(f"Cannot plot along index column {index!r} of type {schema[index].dt}")
    names = plottable(schema) if columns is None else columns
    unknown = [name for name in names if name not in plottable(schema)]
    if unknown:
        raise KeyError(f"Not a plottable column: {', '.join(unknown)}")
    frame = range_frame(series, commit, start, stop, select=[index, *names])
    x = frame[index]
    rows = m4_rows(x, [frame[name] for name in names], width)
    return {
        "index": index,
        "time": schema[index].dt.kind == "M",
        "columns": names,
        "rows": len(frame),
        "points": len(rows),
        "downsampled": len(rows) < len(frame),
        "x": chart_numbers(x[rows]),
        "y": [chart_numbers(frame[name][rows]) for name in names],
    }


def chart_numbers(arr: numpy.ndarray) -> list:
    """Numbers for JSON: times in epoch seconds, NaN and NaT as null."""
    if arr.dtype.kind == "M":
        missing = numpy.isnat(arr)
        arr = arr.astype("M8[us]").view("i8") / 1e6
    elif arr.dtype.kind == "f":
        missing = numpy.isnan(arr)
    elif arr.dtype.kind == "b":
        return arr.astype("i8").tolist()
    else:
        return arr.tolist()
    values = arr.astype(object)
    values[missing] = None
    return values.tolist()


def table(
    series: Series,
    commit: Commit | None,
    start: str | None,
    stop: str | None,
    offset: int,
    limit: int,
) -> dict:
    """One page of the rows in the range, as text cells, and the number of rows there."""
    _check_page(offset, limit)
    segments = _segments(series, commit, start, stop)
    frame = Frame.from_segments(series.schema, segments, limit, offset)
    names = list(series.schema)
    return {
        "columns": names,
        "total": sum(len(segment) for segment in segments),
        "offset": offset,
        "limit": limit,
        "rows": [list(row) for row in zip(*(cells(frame[name]) for name in names))],
    }


def cells(arr: numpy.ndarray) -> list:
    """Values for a table: ISO text for dates, null for NaN and NaT, numbers as they are."""
    if arr.dtype.kind == "M":
        texts = numpy.datetime_as_string(arr).astype(object)
        texts[numpy.isnat(arr)] = None
        return texts.tolist()
    if arr.dtype.kind == "f":
        return chart_numbers(arr)
    if arr.dtype.kind == "m":
        return [str(value) for value in arr]
    if arr.dtype.kind in "SV":
        return [bytes(value).hex() for value in arr]
    if arr.dtype.kind == "O":
        return [value if isinstance(value, _JSON_SCALARS) else repr(value) for value in arr]
    return arr.tolist()


_JSON_SCALARS = (str, int, float, bool, type(None))
