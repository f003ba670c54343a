"""Import and export of collections as plain files: one folder per collection.

```
dest/<collection>/_schema.json      json.dumps(schema.dumps())
dest/<collection>/<series>.csv      or <series>.parquet, one file per series
```

Cell values are written so that they read back exactly:

* CSV (stdlib `csv`, RFC 4180: CRLF line ends, quotes only where needed). The header
  holds the schema's column names. Floats use the shortest round-trip `repr` (``25.0``,
  ``nan``, ``-nan``, ``-inf``), datetimes ISO 8601 at the column's unit
  (``2020-06-22T00:00:00``), timedeltas an integer count of the column's unit, booleans
  ``True``/``False``, strings as they are, and **object columns one JSON document per
  cell** (``{"a": [1, 2]}``, ``"text"``, ``null``); objects that JSON cannot hold exactly
  (bytes, tuples, non-string keys) are refused. Missing dates and timedeltas are ``NaT``.
* Parquet (needs the ``lakota[arrow]`` extra): native Arrow types, and object columns
  as JSON text, like in CSV.

File and folder names are labels with ``%``, ``/`` and ``\\`` and a leading ``.`` or
``_`` percent-encoded (``a/b`` -> ``a%2Fb.csv``), so any label has a safe name that
never starts with ``_`` (names starting with ``_`` are skipped on import).

Export writes every file atomically and checks its arguments before writing anything.
Import reads and checks every file (header, values, sort order) before creating any
collection or revision, then writes each collection in one `Collection.multi()`
revision: a bad file leaves the repository unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import numpy

from .errors import (
    CollectionNotFoundError,
    FrameError,
    InvalidLabelError,
    SchemaError,
    StorageError,
)
from .frame import Frame
from .pod import POD
from .schema import Schema, SchemaColumn, as_column_mapping
from .utils import logger

if TYPE_CHECKING:
    from .collection import Collection
    from .repo import Repo
    from .series import Series

__all__ = [
    "FILE_TYPES",
    "SCHEMA_FILE",
    "decode_name",
    "encode_name",
    "export_collections",
    "export_series",
    "frame_bytes",
    "import_collections",
    "import_series",
    "read_series",
]

FILE_TYPES = ("csv", "parquet")
SCHEMA_FILE = "_schema.json"
ARROW_HINT = "parquet files need pyarrow: pip install 'lakota[arrow]'"
_SUPPORTED_KINDS = "biufMmUO"
_UNSAFE = re.compile(r"[%/\\]|^[._]")


# --- names ---------------------------------------------------------------------------


def encode_name(label: str) -> str:
    """A file name for `label`: ``%``, ``/``, ``\\`` and a leading ``.``/``_`` escaped."""
    return _UNSAFE.sub(lambda match: f"%{ord(match.group()):02X}", label)


def decode_name(name: str) -> str:
    """Inverse of `encode_name` (any ``%XX`` escape is decoded, as UTF-8)."""
    try:
        return unquote(name, errors="strict")
    except UnicodeDecodeError:
        raise InvalidLabelError(f"File name {name!r} holds an invalid %-escape") from None


def _label(name: str, where: str) -> str:
    """The label a file or folder name stands for, checked as collections and series do."""
    label = decode_name(name).strip()
    if not label or "\x00" in label:
        raise InvalidLabelError(f"{where}: the name gives the invalid label {label!r}")
    return label


def _where(pod: POD, name: str) -> str:
    return f"{pod.path}/{name}"


def _as_pod(location: Any) -> POD:
    return location if isinstance(location, POD) else POD.from_uri(location)


# --- export --------------------------------------------------------------------------


def export_collections(
    repo: Repo, dest: Any, collections: list[str] | None = None, file_type: str = "csv"
) -> None:
    """Write collections (default: all) under `dest` (URI or POD), one file per series.

    Raises before writing anything if `file_type` is unknown, a collection does not
    exist, or a column type cannot be exported.
    """
    _check_file_type(file_type)
    clcts = _pick_collections(repo, collections)
    for clct in clcts:
        _check_exportable(clct.schema, clct.label)
    if file_type == "parquet":
        _parquet()
    pod = _as_pod(dest)
    for clct in clcts:
        logger.info("Export collection %s", clct.label)
        folder = pod.cd(encode_name(clct.label))
        _write(folder, SCHEMA_FILE, json.dumps(clct.schema.dumps()).encode("utf-8"))
        for series in clct:
            export_series(folder, series, file_type)


def export_series(pod: POD, series: Series, file_type: str = "csv") -> str:
    """Write one series as ``<label>.<file_type>`` in `pod`; returns the file name."""
    _check_file_type(file_type)
    _check_exportable(series.schema, series.collection.label)
    name = f"{encode_name(series.label)}.{file_type}"
    frame = series.frame()
    _write(pod, name, frame_bytes(frame, file_type, _where(pod, name)))
    return name


def frame_bytes(frame: Frame, file_type: str, where: str) -> bytes:
    """`frame` as the bytes of a CSV or parquet file (`where` names it in error messages)."""
    _check_file_type(file_type)
    return _to_csv(frame, where) if file_type == "csv" else _to_parquet(frame, where)


def _check_file_type(file_type: str) -> None:
    if file_type not in FILE_TYPES:
        raise ValueError(
            f"Unsupported file type {file_type!r}, expected one of {', '.join(FILE_TYPES)}"
        )


def _pick_collections(repo: Repo, labels: list[str] | None) -> list[Collection]:
    if labels is None:
        return list(repo.search())
    if isinstance(labels, str):
        raise TypeError("collections must be a list of labels, not a string")
    found = {label: repo.collection(label) for label in labels}
    missing = [label for label, clct in found.items() if clct is None]
    if missing:
        raise CollectionNotFoundError(f"Collection(s) not found: {', '.join(map(repr, missing))}")
    return list(found.values())


def _check_exportable(schema: Schema, label: str) -> None:
    bad = [
        f"{name} ({col.dt})"
        for name, col in schema.columns.items()
        if col.dt.kind not in _SUPPORTED_KINDS or (col.dt.kind == "f" and col.dt.itemsize > 8)
    ]
    if bad:
        raise SchemaError(f"Collection {label!r}: cannot export column(s) {', '.join(bad)}")


def _write(pod: POD, name: str, data: bytes) -> None:
    try:
        pod.write(name, data, force=True)
    except OSError as exc:
        raise StorageError(f"Cannot write {_where(pod, name)}: {exc}") from exc


def _to_csv(frame: Frame, where: str) -> bytes:
    names = list(frame.schema)
    cells = [_format_column(frame.schema[name], frame[name], where) for name in names]
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(names)
    writer.writerows(zip(*cells))
    try:
        return buf.getvalue().encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FrameError(f"{where}: text that is not valid Unicode ({exc})") from None


def _format_column(col: SchemaColumn, arr: numpy.ndarray, where: str) -> list[str]:
    """CSV cells of one column (see the module docstring)."""
    kind = arr.dtype.kind
    if kind == "f":
        return [_float_cell(value) for value in arr.tolist()]
    if kind == "M":
        return arr.astype(str).tolist()
    if kind == "m":
        counts = arr.view("i8").astype(str)
        return numpy.where(numpy.isnat(arr), "NaT", counts).tolist()
    if kind == "O":
        return [_json_cell(value, col.name, where) for value in arr.tolist()]
    return [str(value) for value in arr.tolist()]


def _float_cell(value: float) -> str:
    """Shortest text that reads back as the same float (the sign of NaN included)."""
    if math.isnan(value) and math.copysign(1.0, value) < 0:
        return "-nan"
    return repr(value)


def _json_cell(value: Any, column: str, where: str) -> str:
    """JSON text of an object cell, refusing values JSON would change (bytes, int keys)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise FrameError(f"{where}: column {column!r}: {value!r} is not JSON ({exc})") from None
    if not _same(json.loads(text), value):
        raise FrameError(f"{where}: column {column!r}: {value!r} would not survive JSON")
    return text


def _same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (``[1]`` is not ``(1,)``, NaN is NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        a, b = list(a.items()), list(b.items())
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and a != a:
        return b != b
    return a == b


def _to_parquet(frame: Frame, where: str) -> bytes:
    pyarrow, parquet = _parquet()
    try:
        table = pyarrow.table(
            {
                name: _arrow_array(pyarrow, col, frame[name], where)
                for name, col in frame.schema.columns.items()
            }
        )
        sink = pyarrow.BufferOutputStream()
        parquet.write_table(table, sink)
    except pyarrow.ArrowException as exc:
        raise FrameError(f"{where}: {exc}") from None
    return sink.getvalue().to_pybytes()


def _arrow_array(pyarrow: Any, col: SchemaColumn, arr: numpy.ndarray, where: str) -> Any:
    """An Arrow column: native types, text for strings, JSON text for objects."""
    if col.dt.kind in "OU":
        cells = _format_column(col, arr, where) if col.dt.kind == "O" else arr.tolist()
        return pyarrow.array(cells, type=pyarrow.string())
    if col.dt == numpy.dtype("M8[D]"):  # date32: Arrow would wrap larger values silently
        days = arr[~numpy.isnat(arr)].view("i8")
        if days.size and (days.min() < -(2**31) or days.max() >= 2**31):
            raise FrameError(f"{where}: column {col.name!r} has dates beyond Parquet's range")
    return pyarrow.array(arr)


def _parquet() -> tuple[Any, Any]:
    """The pyarrow and pyarrow.parquet modules, imported on first use."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise ImportError(f"{ARROW_HINT} ({exc})") from exc
    return pyarrow, pyarrow.parquet


# --- import --------------------------------------------------------------------------


def import_collections(repo: Repo, src: Any, collections: list[str] | None = None) -> None:
    """Load the collections (default: every folder) of `src` (URI or POD) into `repo`.

    Missing collections are created from ``_schema.json``. Every file is read and
    checked first; then each collection gets one revision holding all its series.
    """
    pod = _as_pod(src)
    plans = [
        _read_collection(repo, pod.cd(folder), label)
        for label, folder in _source_collections(pod, collections)
    ]
    for label, schema, frames in plans:
        clct = repo.create_collection(schema, label, raise_if_exists=False)
        logger.info("Import collection %s (%d series)", label, len(frames))
        with clct.multi():
            for series_label, frame in frames.items():
                if not frame.empty:
                    clct.series(series_label).write(frame)


def import_series(from_pod: POD, collection: Collection, filename: str) -> str:
    """Read one file of `from_pod` and write it to its series; returns the series label."""
    label, frame = read_series(from_pod, collection.schema, filename)
    if not frame.empty:
        collection.series(label).write(frame)
    return label


def read_series(pod: POD, schema: Schema, filename: str) -> tuple[str, Frame]:
    """The series label and checked, sorted frame held by one exported file."""
    where = _where(pod, filename)
    stem, dot, ext = filename.rpartition(".")
    reader = _READERS.get(ext.lower()) if dot else None
    if reader is None:
        raise ValueError(
            f"{where}: unknown file extension, expected one of {', '.join(FILE_TYPES)}"
        )
    label = _label(stem, where)
    columns = reader(pod, filename, schema, where)
    try:
        frame = Frame(schema, columns)
    except (ValueError, TypeError) as exc:
        raise FrameError(f"{where}: {exc}") from None
    if not frame.is_sorted():
        raise FrameError(f"{where}: rows are not sorted on the index {', '.join(schema.idx)}")
    return label, frame


def _source_collections(pod: POD, labels: list[str] | None) -> list[tuple[str, str]]:
    """``(label, folder)`` of the collections to import."""
    if labels is None:
        try:
            names = pod.ls()
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"Nothing to import: {pod.path} does not exist") from exc
        return [(_label(name, _where(pod, name)), name) for name in names if pod.isdir(name)]
    if isinstance(labels, str):
        raise TypeError("collections must be a list of labels, not a string")
    pairs = [(label, encode_name(label)) for label in labels]
    missing = [label for label, folder in pairs if not pod.isdir(folder)]
    if missing:
        raise CollectionNotFoundError(
            f"Collection(s) not found in {pod.path}: {', '.join(map(repr, missing))}"
        )
    return pairs


def _read_collection(repo: Repo, pod: POD, label: str) -> tuple[str, Schema, dict[str, Frame]]:
    schema = _target_schema(repo, pod, label)
    frames: dict[str, Frame] = {}
    origin: dict[str, str] = {}
    for name in sorted(pod.ls()):
        if name.startswith("_"):
            continue
        series_label, frame = read_series(pod, schema, name)
        if series_label in origin:
            raise ValueError(
                f"{_where(pod, name)}: series {series_label!r} is also in {origin[series_label]}"
            )
        origin[series_label] = name
        frames[series_label] = frame
    return label, schema, frames


def _target_schema(repo: Repo, pod: POD, label: str) -> Schema:
    """The schema of the existing collection, else the one in ``_schema.json``."""
    existing = repo.collection(label)
    dumped = _read_schema(pod) if pod.isfile(SCHEMA_FILE) else None
    if existing is None:
        if dumped is None:
            raise SchemaError(f"{_where(pod, SCHEMA_FILE)} is missing: cannot create {label!r}")
        return dumped
    if dumped is not None and dumped != existing.schema:
        raise SchemaError(
            f"Cannot import {label!r}: the repository's schema {existing.schema!r} differs "
            f"from {dumped!r} in {_where(pod, SCHEMA_FILE)}"
        )
    return existing.schema


def _read_schema(pod: POD) -> Schema:
    try:
        dump = json.loads(pod.read(SCHEMA_FILE))
    except ValueError as exc:
        raise SchemaError(f"{_where(pod, SCHEMA_FILE)}: invalid JSON ({exc})") from None
    return Schema.loads(dump)


def _check_header(found: list[str], schema: Schema, where: str) -> None:
    expected = list(schema)
    if len(found) != len(set(found)) or set(found) != set(expected):
        raise SchemaError(f"{where}: columns {found} do not match the schema's {expected}")


def _read_csv(pod: POD, filename: str, schema: Schema, where: str) -> dict[str, Any]:
    try:
        text = pod.read(filename).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FrameError(f"{where}: not UTF-8 text ({exc})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise SchemaError(f"{where}: empty file, expected the header {list(schema)}")
        _check_header(header, schema, where)
        rows = _csv_rows(reader, len(header), where)
    except csv.Error as exc:
        raise FrameError(f"{where}: line {reader.line_num}: {exc}") from None
    values = list(zip(*rows)) if rows else [()] * len(header)
    return {
        name: _parse_cells(schema[name], list(cells), where) for name, cells in zip(header, values)
    }


def _csv_rows(reader: Any, width: int, where: str) -> list[list[str]]:
    """The data rows, each checked to have `width` fields; blank lines are not rows."""
    rows = []
    for row in reader:
        if not row:
            continue
        if len(row) != width:
            raise FrameError(f"{where}: line {reader.line_num} has {len(row)} fields, not {width}")
        rows.append(row)
    return rows


def _parse_cells(col: SchemaColumn, cells: list[str], where: str) -> Any:
    """Column values from CSV text, before the schema cast (see the module docstring)."""
    kind = col.dt.kind
    if kind == "b":
        return [_parse_bool(cell, col.name, where) for cell in cells]
    if kind == "M" and cells:
        try:  # parse at the unit the text shows, so that the cast refuses truncation
            return numpy.array(cells, dtype="M8")
        except ValueError as exc:
            raise FrameError(f"{where}: column {col.name!r}: {exc}") from None
    if kind == "O":
        return _parse_json(cells, col.name, where)
    return numpy.array(cells, dtype=str)


def _parse_bool(cell: str, column: str, where: str) -> bool:
    if cell not in ("True", "False"):
        raise FrameError(f"{where}: column {column!r}: {cell!r} is not True or False")
    return cell == "True"


def _parse_json(cells: list[Any], column: str, where: str) -> list[Any]:
    try:
        return [json.loads(cell) for cell in cells]
    except (TypeError, ValueError) as exc:
        raise FrameError(f"{where}: column {column!r}: invalid JSON cell ({exc})") from None


def _read_parquet(pod: POD, filename: str, schema: Schema, where: str) -> dict[str, Any]:
    pyarrow, parquet = _parquet()
    try:
        table = parquet.read_table(io.BytesIO(pod.read(filename)))
    except (pyarrow.ArrowException, OSError) as exc:
        raise FrameError(f"{where}: unreadable parquet file ({exc})") from None
    _check_header(table.column_names, schema, where)
    mapping = as_column_mapping(table)
    return {
        name: _arrow_column(table.column(name), mapping, col, where)
        for name, col in schema.columns.items()
    }


def _arrow_column(arrow: Any, mapping: Any, col: SchemaColumn, where: str) -> Any:
    """Values of one Parquet column: nulls are NaT in time columns, objects are JSON."""
    if col.dt.kind in "Mm" and arrow.null_count:  # Arrow stores NaT as null
        return arrow.combine_chunks().to_numpy(zero_copy_only=False)
    try:
        values = mapping[col.name]
    except FrameError as exc:  # nulls elsewhere
        raise FrameError(f"{where}: {exc}") from None
    return _parse_json(values.tolist(), col.name, where) if col.dt.kind == "O" else values


_READERS: dict[str, Callable[[POD, str, Schema, str], dict[str, Any]]] = {
    "csv": _read_csv,
    "parquet": _read_parquet,
}
