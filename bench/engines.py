"""One adapter per storage engine, all with the same small interface.

A store lives in one folder. Inside it, a *group* holds series by name: a lakota collection,
an ArcticDB library, or a sub-folder of parquet or ``.npy`` files. Reads return plain numpy
arrays by column name; the timestamp column may come back in any datetime64 unit.

Each adapter imports its package when it is built, so this module imports with numpy alone
and every engine runs in its own virtual environment. Opening a store and converting the
generated arrays to an engine's native input (`prepare`) are never timed: the workloads time
the calls a user makes on an open store.
"""

from __future__ import annotations

import gc
import importlib.metadata
import time
from pathlib import Path
from typing import Any

import numpy
from datagen import COLUMNS, INDEX, VALUES, Columns, concat

PART = "part-{:05d}"


class Engine:
    """The interface every adapter implements (see the module docstring)."""

    name = "engine"
    packages: tuple[str, ...] = ()

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @classmethod
    def versions(cls) -> dict[str, str]:
        """Installed versions of numpy and of the engine's packages."""
        return {name: importlib.metadata.version(name) for name in ("numpy", *cls.packages)}

    def create_group(self, group: str) -> None:
        """Make an empty group (untimed)."""

    def open_group(self, group: str) -> None:
        """Look up an existing group so the next call finds it open (untimed)."""

    def prepare(self, data: Columns) -> Any:
        """The engine's native input for `data` (untimed)."""
        return data

    def prepare_one(self, data: Columns) -> Any:
        """Native input for one of many small series written by `write_many` (untimed)."""
        return self.prepare(data)

    def write(self, group: str, name: str, native: Any) -> None:
        raise NotImplementedError

    def write_many(self, group: str, items: list[tuple[str, Any]]) -> None:
        raise NotImplementedError

    def append(self, group: str, name: str, native: Any) -> None:
        """Add rows after the end of the series as a new revision or version."""
        raise NotImplementedError

    def mark(self, group: str, name: str) -> Any:
        """A token for the current version, for `read_as_of` (untimed)."""
        raise NotImplementedError

    def read(self, group: str, name: str) -> Columns:
        raise NotImplementedError

    def read_range(
        self, group: str, name: str, start: numpy.datetime64, stop: numpy.datetime64
    ) -> Columns:
        """Rows with ``start <= ts <= stop``."""
        raise NotImplementedError

    def read_column(self, group: str, name: str, column: str) -> numpy.ndarray:
        raise NotImplementedError

    def read_as_of(self, group: str, name: str, token: Any) -> Columns:
        raise NotImplementedError

    def read_one(self, group: str, name: str) -> Columns:
        """Read a series written by `write_many`."""
        return self.read(group, name)

    def tag(self, group: str, tag: str) -> bool:
        """Name the current state of `group` as `tag`; False if the engine has no tags."""
        return False

    def read_at(self, group: str, name: str, tag: str) -> Columns:
        raise NotImplementedError

    def diff_added(self, group: str, name: str, tag: str) -> Columns:
        """The rows added to the series since `tag` (by a diff, not by a range read)."""
        raise NotImplementedError

    def names(self, group: str) -> list[str]:
        """The names of the series in `group`."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the store so another handle can open it."""


class LakotaEngine(Engine):
    """This project or lakota 0.7.1: the same public API, whichever `lakota` is importable."""

    name = "lakota"
    packages = ("lakota", "numcodecs", "msgpack")

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        import lakota

        self.repo = lakota.Repo(str(self.path))
        self.collections: dict[str, Any] = {}
        self.schema = lakota.Schema(ts="timestamp*", a="float", b="float", c="float", n="int")

    def create_group(self, group: str) -> None:
        self.collections[group] = self.repo.create_collection(self.schema, group)

    def open_group(self, group: str) -> None:
        collection = self.repo / group
        if collection is None:
            raise KeyError(f"No collection {group!r} in {self.path}")
        self.collections[group] = collection

    def _series(self, group: str, name: str) -> Any:
        return self.collections[group] / name

    def write(self, group: str, name: str, native: Columns) -> None:
        self._series(group, name).write(native)

    def write_many(self, group: str, items: list[tuple[str, Columns]]) -> None:
        collection = self.collections[group]
        with collection.multi():
            for name, native in items:
                (collection / name).write(native)

    append = write

    def names(self, group: str) -> list[str]:
        return self.collections[group].ls()

    def mark(self, group: str, name: str) -> str:
        """A time just after the leaf revision: ``before=`` it shows the current state."""
        from lakota.utils import hextime

        leaf = self.collections[group].changelog.leaf()
        token = hextime()
        while leaf is not None and token <= leaf.epoch:
            time.sleep(0.001)
            token = hextime()
        time.sleep(0.002)
        return token

    @staticmethod
    def _columns(frame: Any, names: tuple[str, ...] = COLUMNS) -> Columns:
        return {name: frame[name] for name in names}

    def read(self, group: str, name: str) -> Columns:
        return self._columns(self._series(group, name).frame())

    def read_range(
        self, group: str, name: str, start: numpy.datetime64, stop: numpy.datetime64
    ) -> Columns:
        return self._columns(self._series(group, name).frame(start=start, stop=stop, closed="b"))

    def read_column(self, group: str, name: str, column: str) -> numpy.ndarray:
        return self._series(group, name).frame(select=column)[column]

    def read_as_of(self, group: str, name: str, token: str) -> Columns:
        return self._columns(self._series(group, name).frame(before=token))

    def tag(self, group: str, tag: str) -> bool:
        collection = self.collections[group]
        if not hasattr(collection, "tag"):  # lakota 0.7.1
            return False
        collection.tag(tag, force=True)
        return True

    def read_at(self, group: str, name: str, tag: str) -> Columns:
        return self._columns(self._series(group, name).frame(at=tag))

    def diff_added(self, group: str, name: str, tag: str) -> Columns:
        return self._columns(self._series(group, name).diff(tag).added)


class LeanLakotaEngine(LakotaEngine):
    """This project without its safety costs: no fsync, no digest check on reads.

    Shown next to `lakota` to measure what durability and verification cost; the
    targets are judged on `lakota`, with its defaults.
    """

    name = "lakota-lean"

    def __init__(self, path: Path) -> None:
        from lakota.utils import settings

        settings.fsync = False
        settings.verify_digests = False
        super().__init__(path)


class ArcticEngine(Engine):
    """ArcticDB on LMDB: one library per group, one symbol per series, default options."""

    name = "arcticdb"
    packages = ("arcticdb", "pandas")

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        import arcticdb
        import pandas

        self.pandas = pandas
        self.arcticdb = arcticdb
        self.arctic = arcticdb.Arctic(f"lmdb://{self.path}")
        self.libraries: dict[str, Any] = {}

    def create_group(self, group: str) -> None:
        self.libraries[group] = self.arctic.create_library(group)

    def open_group(self, group: str) -> None:
        self.libraries[group] = self.arctic.get_library(group)

    def prepare(self, data: Columns) -> Any:
        index = self.pandas.DatetimeIndex(data[INDEX], name=INDEX)
        return self.pandas.DataFrame({name: data[name] for name in VALUES}, index=index)

    def write(self, group: str, name: str, native: Any) -> None:
        self.libraries[group].write(name, native)

    def write_many(self, group: str, items: list[tuple[str, Any]]) -> None:
        payloads = [self.arcticdb.WritePayload(name, frame) for name, frame in items]
        results = self.libraries[group].write_batch(payloads)
        failed = [r for r in results if not isinstance(r, self.arcticdb.VersionedItem)]
        if failed:
            raise RuntimeError(f"write_batch failed for {len(failed)} symbol(s): {failed[0]}")

    def append(self, group: str, name: str, native: Any) -> None:
        self.libraries[group].append(name, native)

    def mark(self, group: str, name: str) -> int:
        return self.libraries[group].read_metadata(name).version

    def names(self, group: str) -> list[str]:
        return self.libraries[group].list_symbols()

    @staticmethod
    def _columns(frame: Any) -> Columns:
        columns = {INDEX: frame.index.values}
        columns.update((name, frame[name].to_numpy()) for name in frame.columns)
        return columns

    def read(self, group: str, name: str) -> Columns:
        return self._columns(self.libraries[group].read(name).data)

    def read_range(
        self, group: str, name: str, start: numpy.datetime64, stop: numpy.datetime64
    ) -> Columns:
        bounds = (self.pandas.Timestamp(start), self.pandas.Timestamp(stop))
        return self._columns(self.libraries[group].read(name, date_range=bounds).data)

    def read_column(self, group: str, name: str, column: str) -> numpy.ndarray:
        return self.libraries[group].read(name, columns=[column]).data[column].to_numpy()

    def read_as_of(self, group: str, name: str, token: int) -> Columns:
        return self._columns(self.libraries[group].read(name, as_of=token).data)

    def close(self) -> None:
        """LMDB allows one open environment per path and process: drop every reference."""
        self.libraries.clear()
        self.arctic = None
        gc.collect()


class PartsEngine(Engine):
    """Files in folders: a series is ``group/name/part-NNNNN`` (one part per version).

    The bulk write makes part 0 and each append the next part, so a version is a number
    of parts. Series written by `write_many` are single files ``group/name<suffix>``.
    """

    suffix = ""

    def _folder(self, group: str, name: str) -> Path:
        return self.path / group / name

    def _parts(self, group: str, name: str, count: int | None = None) -> list[Path]:
        parts = sorted(self._folder(group, name).iterdir())
        return parts if count is None else parts[:count]

    def _save_part(self, path: Path, native: Any) -> None:
        raise NotImplementedError

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.part_counts: dict[tuple[str, str], int] = {}

    def create_group(self, group: str) -> None:
        (self.path / group).mkdir(parents=True, exist_ok=True)

    def write(self, group: str, name: str, native: Any) -> None:
        folder = self._folder(group, name)
        folder.mkdir()
        self._save_part(folder / PART.format(0), native)
        self.part_counts[group, name] = 1

    def append(self, group: str, name: str, native: Any) -> None:
        """Save the next part; the folder is listed once per handle, then counted."""
        key = (group, name)
        if key not in self.part_counts:
            self.part_counts[key] = len(self._parts(group, name))
        self._save_part(self._folder(group, name) / PART.format(self.part_counts[key]), native)
        self.part_counts[key] += 1

    def mark(self, group: str, name: str) -> int:
        return len(self._parts(group, name))


class ParquetEngine(PartsEngine):
    """Parquet files written and read with pyarrow's defaults (snappy, 1 Mi-row row groups)."""

    name = "parquet"
    packages = ("pyarrow",)
    suffix = ".parquet"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        import pyarrow
        import pyarrow.parquet

        self.pa = pyarrow
        self.pq = pyarrow.parquet

    def prepare(self, data: Columns) -> Any:
        return self.pa.table({name: data[name] for name in COLUMNS})

    def _save_part(self, path: Path, native: Any) -> None:
        self.pq.write_table(native, path.with_suffix(self.suffix))

    def write_many(self, group: str, items: list[tuple[str, Any]]) -> None:
        for name, table in items:
            self.pq.write_table(table, self.path / group / f"{name}{self.suffix}")

    @staticmethod
    def _columns(table: Any, names: tuple[str, ...] = COLUMNS) -> Columns:
        return {name: table.column(name).to_numpy() for name in names}

    def _table(self, group: str, name: str, count: int | None = None, **options: Any) -> Any:
        parts = [str(path) for path in self._parts(group, name, count)]
        return self.pq.ParquetDataset(parts, **options).read()

    def read(self, group: str, name: str) -> Columns:
        return self._columns(self._table(group, name))

    def read_range(
        self, group: str, name: str, start: numpy.datetime64, stop: numpy.datetime64
    ) -> Columns:
        filters = [(INDEX, ">=", start), (INDEX, "<=", stop)]
        return self._columns(self._table(group, name, filters=filters))

    def read_column(self, group: str, name: str, column: str) -> numpy.ndarray:
        parts = [str(path) for path in self._parts(group, name)]
        return self.pq.ParquetDataset(parts).read(columns=[column]).column(column).to_numpy()

    def read_as_of(self, group: str, name: str, token: int) -> Columns:
        return self._columns(self._table(group, name, token))

    def read_one(self, group: str, name: str) -> Columns:
        return self._columns(self.pq.read_table(self.path / group / f"{name}{self.suffix}"))


class NpyEngine(PartsEngine):
    """Raw ``.npy`` files, the physical limit: one file per column and part.

    Range reads memory-map the timestamps and binary-search them. Series written by
    `write_many` are one structured-array file each.
    """

    name = "npy"
    suffix = ".npy"

    def prepare_one(self, data: Columns) -> numpy.ndarray:
        records = numpy.empty(len(data[INDEX]), dtype=[(n, data[n].dtype) for n in COLUMNS])
        for name in COLUMNS:
            records[name] = data[name]
        return records

    def _save_part(self, path: Path, native: Columns) -> None:
        path.mkdir()
        for name in COLUMNS:
            numpy.save(path / f"{name}{self.suffix}", native[name])

    def write_many(self, group: str, items: list[tuple[str, numpy.ndarray]]) -> None:
        for name, records in items:
            numpy.save(self.path / group / f"{name}{self.suffix}", records)

    def _load(self, parts: list[Path], name: str) -> numpy.ndarray:
        arrays = [numpy.load(part / f"{name}{self.suffix}") for part in parts]
        return arrays[0] if len(arrays) == 1 else numpy.concatenate(arrays)

    def _read_parts(self, parts: list[Path]) -> Columns:
        return {name: self._load(parts, name) for name in COLUMNS}

    def read(self, group: str, name: str) -> Columns:
        return self._read_parts(self._parts(group, name))

    def read_range(
        self, group: str, name: str, start: numpy.datetime64, stop: numpy.datetime64
    ) -> Columns:
        parts = self._parts(group, name)
        pieces = []
        for part in parts:
            index = numpy.load(part / f"{INDEX}{self.suffix}", mmap_mode="r")
            lo = int(numpy.searchsorted(index, start, "left"))
            hi = int(numpy.searchsorted(index, stop, "right"))
            if lo < hi:
                pieces.append({n: self._slice(part, n, lo, hi) for n in COLUMNS})
        if not pieces:
            return {n: self._slice(parts[-1], n, 0, 0) for n in COLUMNS}
        return pieces[0] if len(pieces) == 1 else concat(*pieces)

    def _slice(self, part: Path, name: str, lo: int, hi: int) -> numpy.ndarray:
        return numpy.array(numpy.load(part / f"{name}{self.suffix}", mmap_mode="r")[lo:hi])

    def read_column(self, group: str, name: str, column: str) -> numpy.ndarray:
        return self._load(self._parts(group, name), column)

    def read_as_of(self, group: str, name: str, token: int) -> Columns:
        return self._read_parts(self._parts(group, name, token))

    def read_one(self, group: str, name: str) -> Columns:
        records = numpy.load(self.path / group / f"{name}{self.suffix}")
        return {name: records[name] for name in COLUMNS}


ENGINES: dict[str, type[Engine]] = {
    "lakota": LakotaEngine,
    "lakota-lean": LeanLakotaEngine,
    "lakota071": LakotaEngine,
    "arcticdb": ArcticEngine,
    "parquet": ParquetEngine,
    "npy": NpyEngine,
}
