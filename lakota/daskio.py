"""Dask: read a collection as a lazy `dask.dataframe.DataFrame`, and write from many workers.

Reading (`collection_to_dask`, behind `Collection.to_dask`): building the graph reads
the collection's changelog and latest commit, nothing else. Each partition holds the
commit rows of one series (consecutive rows of a long series are grouped into pieces of
about `settings.page_len` stored rows) and reads its data files only when computed, from
whatever storage the collection lives on. Partitions hold the storage object (a `POD`),
not the collection, so a distributed scheduler ships them to its workers by pickling.

The DataFrame is indexed by the schema's first index column; its columns are the series
label, then the other selected columns in schema order. Divisions are known when the
partitions' ranges of that first index column do not overlap (one series, or series
covering disjoint periods); partitions are then ordered by that range. Otherwise they
are ordered by label then index, and divisions are unknown.

Writing (`write_series`): any process can write a series. Each worker opens its own
`Repo(uri)`; writes from several processes fork the changelog, and one
`Collection.merge()` afterwards joins the heads (see docs/datastack.md).

Local clusters (`local_cluster`): a `distributed.LocalCluster` whose workers run without
distributed's statistical profiler. The profiler samples every thread's frame every
10 ms through `sys._current_frames()`, which can deadlock CPython 3.11 when a garbage
collection starts inside it (CPython issue #106883), hanging the whole process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy

from .commit import Commit
from .errors import CollectionNotFoundError
from .frame import Frame
from .interop import require
from .schema import Schema
from .series import _columns
from .utils import Closed, settings

if TYPE_CHECKING:
    from .collection import Collection
    from .pod import POD

__all__ = ["collection_to_dask", "local_cluster", "write_series", "PROFILER_OFF"]

# dask configuration that turns off the workers' statistical profiler (see `local_cluster`)
PROFILER_OFF = {"distributed.worker.profile.enabled": False}


class _Part(NamedTuple):
    """The rows of one partition: a series label and an encoded commit of its rows."""

    label: str
    commit: bytes


class _Planned(NamedTuple):
    part: _Part
    lower: Any  # first index column: lowest and highest value the rows can show
    upper: Any
    open_right: bool  # the last row excludes `upper`


def collection_to_dask(
    collection: Collection,
    labels: list[str] | None = None,
    start: Any = None,
    stop: Any = None,
    select: str | list[str] | None = None,
    before: Any = None,
    closed: Closed | str = "LEFT",
    label_column: str = "label",
    partition_size: int | None = None,
) -> Any:
    """A lazy `dask.dataframe.DataFrame` of the series `labels` (default: all).

    `start`, `stop`, `closed`, `select` and `before` filter like `Series.frame`;
    `partition_size` bounds the stored rows grouped in one partition (default
    `settings.page_len`; a commit row is never split).
    """
    dd = require("dask.dataframe", "Collection.to_dask()")
    dask = require("dask", "Collection.to_dask()")
    schema = collection.schema
    size = settings.page_len if partition_size is None else partition_size
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"partition_size must be a positive integer, got {size!r}")
    commit = collection.commit(before=before)
    leaf = collection.changelog.leaf(before=before)
    reader = _Reader(
        collection.pod,
        schema,
        (schema.deserialize(start), schema.deserialize(stop), Closed.cast(closed)),
        _read_columns(schema, select, label_column),
        label_column,
        (collection.path, leaf.path if leaf is not None else None),
    )
    planned = _plan(commit, _labels(commit, labels), reader, size)
    meta = reader.to_pandas(Frame(schema.clone(*reader.names)), "")
    # dask would turn every object column into text: keep the dtypes of Frame.df()
    with dask.config.set({"dataframe.convert-string": False}):
        if not planned:
            return dd.from_pandas(meta, npartitions=1)
        planned, divisions = _divisions(planned, schema)
        return dd.from_map(
            reader, [p.part for p in planned], meta=meta, divisions=divisions, label="lakota-read"
        )


def _read_columns(schema: Schema, select: str | list[str] | None, label_column: str) -> list:
    """Schema columns to read: the selected ones, always with the first index column."""
    if label_column in schema:
        raise ValueError(
            f"The schema has a column named {label_column!r}: pass another label_column"
        )
    wanted = _columns(schema, select)
    return [name for name in schema if name in wanted or name == schema.idx[0]]


def _labels(commit: Commit | None, labels: list[str] | None) -> list[str]:
    existing = commit.labels() if commit is not None else []
    if labels is None:
        return existing
    if isinstance(labels, str):
        raise TypeError("labels must be a list of series labels, not a string")
    missing = sorted(set(labels) - set(existing))
    if missing:
        raise KeyError(f"Series not found: {', '.join(map(repr, missing))}")
    return list(dict.fromkeys(labels))


def _plan(commit: Commit | None, labels: list[str], reader: _Reader, size: int) -> list[_Planned]:
    """Partitions: consecutive visible rows of each series, about `size` stored rows each."""
    planned = []
    for label in labels:
        group: list[int] = []
        bounds: list = []
        for pos in range(*commit.label_range(label)):
            segments = reader.segments(commit.slice(pos, pos + 1), label)
            if not segments:
                continue
            if group and commit.length[group].sum() + commit.length[pos] > size:
                planned.append(_planned(commit, label, group, bounds))
                group, bounds = [], []
            group.append(pos)
            bounds.append(segments[0])
        if group:
            planned.append(_planned(commit, label, group, bounds))
    return planned


def _planned(commit: Commit, label: str, positions: list[int], segments: list) -> _Planned:
    first, last = segments[0], segments[-1]
    part = _Part(label, commit.take(numpy.array(positions)).encode())
    return _Planned(part, first.start[0], last.stop[0], not last.closed.right)


def _divisions(planned: list[_Planned], schema: Schema) -> tuple[list[_Planned], Any]:
    """Partitions sorted by range with their divisions, when the ranges are disjoint."""
    ordered = sorted(planned, key=lambda p: (p.lower, p.upper))
    single = len(schema.idx) == 1
    for prev, nxt in zip(ordered, ordered[1:]):
        apart = prev.upper < nxt.lower or (
            single and prev.upper == nxt.lower and prev.open_right
        )
        if not apart:
            return planned, None
    values = [p.lower for p in ordered] + [ordered[-1].upper]
    if any(a >= b for a, b in zip(values[:-2], values[1:-1])) or values[-2] > values[-1]:
        return planned, None
    pandas = require("pandas", "Collection.to_dask()")
    dtype = schema[schema.idx[0]].dt
    return ordered, tuple(pandas.Index(numpy.array(values, dtype=dtype)).tolist())


class _Reader:
    """Reads one partition; picklable, so a distributed scheduler can ship it."""

    def __init__(
        self,
        pod: POD,
        schema: Schema,
        query: tuple[tuple, tuple, Closed],
        names: list[str],
        label_column: str,
        source: tuple,
    ) -> None:
        self.pod = pod
        self.schema = schema
        self.query = query
        self.names = names
        self.label_column = label_column
        self.source = source

    def __dask_tokenize__(self) -> tuple:
        """Same storage, revision and query: same partitions (the storage is not hashed)."""
        start, stop, closed = self.query
        where = (type(self.pod).__name__, str(self.pod.path), *self.source)
        return (where, self.schema.dumps(), start, stop, closed.short, self.names)

    def segments(self, commit: Commit, label: str) -> list:
        start, stop, closed = self.query
        return commit.segments(label, self.pod, start, stop, closed)

    def __call__(self, part: _Part, columns: list[str] | None = None) -> Any:
        """The partition as a pandas DataFrame (only `columns` when dask asks for fewer)."""
        commit = Commit.decode(self.schema, part.commit)
        names = self.names
        if columns is not None:
            names = [n for n in names if n in columns or n == self.schema.idx[0]]
        frame = Frame.from_segments(self.schema, self.segments(commit, part.label), select=names)
        df = self.to_pandas(frame, part.label)
        return df if columns is None else df[list(columns)]

    def to_pandas(self, frame: Frame, label: str) -> Any:
        """Label column first, indexed by the first index column."""
        df = frame.df().set_index(self.schema.idx[0])
        df.insert(0, self.label_column, numpy.full(len(frame), label))
        return df


def write_series(uri: Any, collection: str, label: str, data: Any) -> int:
    """Write `data` to one series from any process, opening its own `Repo(uri)`.

    Meant to run on dask workers (or any other processes): concurrent writers fork the
    collection's changelog, so call `Collection.merge()` once they are all done.
    Returns the number of rows written.
    """
    from .repo import Repo

    clct = Repo(uri).collection(collection)
    if clct is None:
        raise CollectionNotFoundError(f"Collection {collection!r} not found in {uri!r}")
    series = clct.series(label)
    frame = Frame(clct.schema, data)
    series.write(frame)
    return len(frame)


def local_cluster(**kwargs: Any) -> Any:
    """A `distributed.LocalCluster(**kwargs)` whose workers do not run the profiler.

    Same arguments as `LocalCluster`. Worker threads (``processes=False``) and worker
    processes (their nanny copies the configuration) both start with
    `PROFILER_OFF`, which avoids the Python 3.11 deadlock described in the module
    docstring. Workers added later by ``cluster.scale`` need the same configuration:
    set it for the whole program with ``dask.config.set(PROFILER_OFF)``.
    """
    dask = require("dask", "local_cluster()")
    distributed = require("distributed", "local_cluster()")
    with dask.config.set(PROFILER_OFF):
        return distributed.LocalCluster(**kwargs)
