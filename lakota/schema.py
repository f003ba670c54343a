"""Schemas: ordered, typed columns with their codecs, and the rules to cast data into them.

A column is declared with a small mini-language: ``"timestamp*"`` is an index column of
``datetime64[s]``, ``"float"`` a float64 value column, and ``"str* | zstd"`` an index
column of strings encoded with an explicit codec chain.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, timezone
from typing import Any

import numcodecs
import numpy
from numcodecs import Blosc

from .decoding import decode_within
from .errors import FrameError, SchemaError
from .utils import hexdigest, settings

__all__ = ["Codec", "Schema", "SchemaColumn", "ALIASES"]

ALIASES = {
    "date": "M8[D]",
    "timestamp": "M8[s]",
    "float": "f8",
    "int": "i8",
    "str": "U",
}
EMPTY_DIGEST = hexdigest(b"")
_TEXT_KINDS = "OU"
_NUMBER_CODECS = ("blosc",)  # the default chain of every other kind
_BLOSC_HEADER = 16


def resolve_dtype(text: str | numpy.dtype) -> numpy.dtype:
    """numpy dtype for an alias (``"timestamp"``) or any numpy dtype string."""
    if isinstance(text, numpy.dtype):
        return text
    try:
        return numpy.dtype(ALIASES.get(text, text))
    except TypeError:
        raise SchemaError(f"Unknown data type {text!r}") from None


class SizedBlosc(numcodecs.abc.Codec):
    """The ``blosc`` codec of a schema: zstd with bit shuffling, in blosc1 chunks.

    What is small enough to be embedded in a commit (under `settings.embed_max_size`)
    is compressed exactly as lakota 0.7.1 does (level 5, automatic blocks), so commits
    stay byte-identical with it. Data files use level 2 (zstd's default level 3) on
    blocks of up to `BLOCK` bytes: on time series this compresses within a few percent
    of level 5 (smaller in total on the benchmark's data), two to three times faster,
    and decodes as fast. Every blosc1 decoder reads both: a chunk's header says how it
    was made.
    """

    codec_id = "blosc"
    BLOCK = 1024 * 1024

    def __init__(self) -> None:
        self.compatible = Blosc(cname="zstd", clevel=5, shuffle=Blosc.BITSHUFFLE)
        self.fast = Blosc(cname="zstd", clevel=2, shuffle=Blosc.BITSHUFFLE, blocksize=self.BLOCK)

    def encode(self, buf: Any) -> bytes:
        limit = settings.embed_max_size
        if (buf.nbytes if hasattr(buf, "nbytes") else len(buf)) >= limit:
            data = self.fast.encode(buf)
            if len(data) >= limit:
                return data
        return self.compatible.encode(buf)

    def decode(self, buf: Any, out: Any = None) -> Any:
        return self.compatible.decode(buf, out=out)


# The numcodecs codecs a schema may name. Schemas come from repositories made elsewhere,
# so each one only reshapes bytes and numbers: never pickle, nothing that imports or runs
# code, and only codecs that work with their default arguments and give back every
# value they were given (packbits, for one, keeps one bit of each number). json2 is out
# too: its data names the shape of the array to allocate.
SAFE_CODECS = frozenset(
    {
        "adler32",
        "base64",
        "blosc",
        "bz2",
        "crc32",
        "fletcher32",
        "gzip",
        "jenkins_lookup3",
        "lz4",
        "lzma",
        "msgpack2",
        "shuffle",
        "vlen-bytes",
        "vlen-utf8",
        "zlib",
        "zstd",
    }
)


def check_codec_names(names: Iterable[str]) -> tuple[str, ...]:
    """`names` as a tuple if every one is in `SAFE_CODECS`, else `SchemaError` naming it.

    Checked before numcodecs is asked for anything: its registry would load plugins, and
    some of its codecs (pickle) run code found in the data they decode.
    """
    names = tuple(names)
    for name in names:
        if not isinstance(name, str):
            raise SchemaError(f"A codec name is a string, not {type(name).__name__}: {name!r}")
        if name not in SAFE_CODECS:
            raise SchemaError(
                f"Codec {name!r} is unknown or unsafe; allowed: {', '.join(sorted(SAFE_CODECS))}"
            )
    return names


def _build_codec(name: str) -> numcodecs.abc.Codec:
    if name == "blosc":
        return SizedBlosc()
    return numcodecs.get_codec({"id": name})


def _raw_bytes(arr: numpy.ndarray) -> memoryview:
    """The values of a numeric array as bytes, without a copy (datetimes as int64)."""
    if arr.dtype.kind in "mM":
        arr = arr.view("i8")
    return memoryview(arr).cast("B")


class Codec:
    """Encodes one column array into bytes with a chain of numcodecs codecs."""

    def __init__(self, dt: str | numpy.dtype, *codec_names: str) -> None:
        self.dt = resolve_dtype(dt)
        if not codec_names:
            codec_names = ("msgpack2", "zstd") if self.dt.kind in _TEXT_KINDS else _NUMBER_CODECS
        self.codec_names = check_codec_names(codec_names)
        self._codecs = [_build_codec(name) for name in self.codec_names]

    def encode(self, arr: numpy.ndarray, with_digest: bool = False) -> Any:
        """Encoded bytes of `arr` (and its digest when `with_digest`)."""
        if len(arr) == 0:
            return (b"", EMPTY_DIGEST) if with_digest else b""
        arr = numpy.ascontiguousarray(arr).astype(self.dt, copy=False)
        data = arr
        try:
            for codec in self._codecs:
                data = codec.encode(data)
        except (OverflowError, TypeError) as exc:  # objects msgpack cannot represent
            raise FrameError(f"Values that cannot be stored: {exc}") from None
        data = bytes(data)
        if self.dt.kind == "O":
            self._check_readable(data)
        if not with_digest:
            return data
        return data, self.digest(arr, data)

    def digest(self, arr: numpy.ndarray, data: bytes) -> str:
        """Content address of an encoded column: encoded bytes for text, raw bytes for
        numbers. A numeric column with an explicit codec chain hashes the chain too: the
        same values encoded differently must not share a data file."""
        if self.dt.kind in _TEXT_KINDS:
            return hexdigest(data)
        if self.codec_names == _NUMBER_CODECS:
            return hexdigest(_raw_bytes(arr))
        return hexdigest(" | ".join(self.codec_names).encode(), _raw_bytes(arr))

    def matches(self, arr: numpy.ndarray, data: bytes, digest: str) -> bool:
        """True if `digest` is the content address of this column, as `digest` computes
        it or as lakota 0.7.1 does (raw bytes whatever the codecs)."""
        if self.digest(arr, data) == digest:
            return True
        return self.dt.kind not in _TEXT_KINDS and hexdigest(_raw_bytes(arr)) == digest

    def _check_readable(self, data: bytes) -> None:
        """Objects are free-form: refuse those that would encode but not decode back."""
        try:
            self.decode(data)
        except (ValueError, TypeError) as exc:
            raise FrameError(f"Objects that could not be read back: {exc}") from None

    def decode_into(self, data: bytes, out: numpy.ndarray) -> None:
        """Decode `data` into `out`, which must hold exactly the stored values.

        The default numeric chain decompresses straight into `out`, skipping the
        temporary array and the copy a read would otherwise make. A size that does not
        match `out` raises `ValueError`: never a partly filled or overflowing output.
        """
        if (
            self.codec_names == _NUMBER_CODECS
            and len(data) >= _BLOSC_HEADER
            and out.flags.c_contiguous
        ):
            size = int.from_bytes(data[4:8], "little")  # blosc1 header: decoded size
            if size != out.nbytes:
                raise ValueError(
                    f"{size // out.itemsize} values ({size} bytes) decoded "
                    f"where {len(out)} are expected"
                )
            self._codecs[0].decode(data, out=_raw_bytes(out))
            return
        arr = self.decode(data, len(out))
        if arr.shape != out.shape:
            raise ValueError(f"{len(arr)} values decoded where {len(out)} are expected")
        out[...] = arr

    def decode(self, data: bytes, length: int | None = None) -> numpy.ndarray:
        """Inverse of `encode`. Given `length`, the number of values `data` holds (its
        commit row says), no codec may decode to more bytes than `max_decoded_size`
        allows (`CorruptedDataError`), whatever the data claims."""
        if len(data) == 0:
            return numpy.empty(0, dtype=self.dt)
        limit = None if length is None else self.max_decoded_size(length)
        for codec in reversed(self._codecs):
            data = codec.decode(data) if limit is None else decode_within(codec, data, limit)
        if self.dt.kind in _TEXT_KINDS:
            return numpy.asarray(data).astype(self.dt, copy=False)
        return numpy.frombuffer(data, dtype=self.dt)

    def max_decoded_size(self, length: int) -> int:
        """The most bytes any step of decoding `length` values may produce: their size
        for numbers, `settings.max_text_value_size` each for text and objects, plus room
        for the headers of compressed layers."""
        per_value = settings.max_text_value_size if self.dt.kind in _TEXT_KINDS else None
        raw = length * (per_value or self.dt.itemsize)
        return raw + raw // 8 + 1024

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Codec):
            return NotImplemented
        return self.dt == other.dt and self.codec_names == other.codec_names

    def __repr__(self) -> str:
        return f"<Codec {self.dt.str} {'|'.join(self.codec_names)}>"


class SchemaColumn:
    """One column of a schema: a name, a dtype with its codec chain, and the index flag."""

    def __init__(
        self, name: str, dt: str | numpy.dtype, codecs: Iterable[str] | None = None, idx=False
    ) -> None:
        if not isinstance(name, str) or not name:
            raise SchemaError(f"Invalid column name {name!r}")
        self.name = name
        self.codec = Codec(dt, *(codecs or ()))
        self.idx = bool(idx)

    @classmethod
    def from_ui(cls, name: str, text: str) -> SchemaColumn:
        """Parse a definition such as ``"timestamp*"`` or ``"str* | vlen-utf8 gzip"``."""
        if not isinstance(text, str):
            raise SchemaError(f"Column {name!r}: definition must be a string, got {text!r}")
        lexer = shlex.shlex(text, posix=True, punctuation_chars="|*")
        lexer.wordchars += "[]"
        try:
            tokens = list(lexer)
        except ValueError as exc:
            raise SchemaError(f"Column {name!r}: cannot parse {text!r} ({exc})") from None
        if not tokens:
            raise SchemaError(f"Column {name!r}: empty definition")
        dtype, idx, codecs, in_codecs = tokens[0], False, [], False
        for token in tokens[1:]:
            if token == "*":
                idx = True
            elif token == "|":  # "str | vlen-utf8 | gzip": a pipe may also separate codecs
                in_codecs = True
            elif in_codecs and not set(token) & set("|*"):
                codecs.append(token)
            else:
                raise SchemaError(f"Column {name!r}: Unexpected item {token!r} in {text!r}")
        return cls(name, resolve_dtype(dtype), codecs, idx)

    @property
    def numeric(self) -> bool:
        """True for fixed-size numbers, dates and booleans; False for text, bytes and
        objects, whose values vary in size."""
        return self.dt.kind in "biufcmM"

    @property
    def dt(self) -> numpy.dtype:
        return self.codec.dt

    def cast(self, values: Any) -> numpy.ndarray:
        """A 1-d array of this column's dtype, refusing conversions that would lose data."""
        try:
            return _cast_array(values, self.dt)
        except (ValueError, TypeError, OverflowError) as exc:
            raise FrameError(f"Column {self.name!r}: cannot cast to {self.dt}: {exc}") from None

    def cast_scalar(self, value: Any) -> Any:
        """One value in this column's dtype (used for query bounds)."""
        try:
            return _cast_scalar(value, self.dt)
        except (ValueError, TypeError, OverflowError) as exc:
            raise FrameError(
                f"Column {self.name!r}: bound {value!r} cannot be cast to {self.dt} ({exc})"
            ) from None

    def cast_bound(self, value: Any, side: str) -> tuple[Any, bool]:
        """A query bound in this column's dtype, and whether it was exact.

        A date finer than the column unit is rounded inward (up for a start, down for
        a stop): the caller then includes the rounded bound, which selects the same rows.
        """
        if self.dt.kind != "M" or value is None:
            return self.cast_scalar(value), True
        try:
            exact = _as_datetime64(value)
        except (ValueError, TypeError):
            return self.cast_scalar(value), True
        rounded = exact.astype(self.dt)
        if numpy.isnat(exact) or rounded == exact:
            return rounded, True
        if side == "start" and rounded < exact:
            rounded = rounded + numpy.timedelta64(1, numpy.datetime_data(self.dt)[0])
        return rounded, False

    def map_dtype(self, arr: numpy.ndarray, style: str | None = "default") -> Any:
        """Convert for output: Python objects (``"default"``) or epoch seconds (``"epoch"``)."""
        if style is None or arr.dtype.kind not in "Mif":
            return arr
        if style == "epoch":
            if arr.dtype.kind == "M":
                return arr.astype("M8[s]").astype("i8")
            return arr
        if style == "default":
            return arr.astype(object)
        raise ValueError(f"Unknown map_dtype style {style!r}, expected 'default' or 'epoch'")

    def zero(self) -> Any:
        """Filler value for missing cells: empty string for text, else zero."""
        return "" if self.dt.kind == "U" else 0

    def dumps(self) -> dict:
        return {"dt": str(self.dt), "codecs": list(self.codec.codec_names), "idx": self.idx}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SchemaColumn):
            return NotImplemented
        return (self.name, self.idx, self.codec) == (other.name, other.idx, other.codec)

    def __repr__(self) -> str:
        star = "*" if self.idx else ""
        return f"<SchemaColumn {self.name} {self.dt}{star} {'|'.join(self.codec.codec_names)}>"


def _cast_array(values: Any, dt: numpy.dtype) -> numpy.ndarray:
    if dt.kind == "O":
        return _object_array(values)
    arr = values if isinstance(values, numpy.ndarray) else _infer_array(values)
    if arr.ndim != 1:
        raise ValueError(f"expected a one-dimensional array, got shape {arr.shape}")
    if arr.size == 0:  # an empty list is inferred as float64, whatever the column
        return numpy.empty(0, dtype=dt)
    if arr.dtype == dt or (dt.kind == "U" and arr.dtype.kind == "U"):
        return arr
    if dt.kind == "M":
        return _cast_datetimes(arr, dt)
    if dt.kind == "U":
        return arr.astype("U")
    return _cast_numbers(arr, dt)


def _infer_array(values: Any) -> numpy.ndarray:
    if hasattr(values, "to_numpy"):  # pandas / polars / pyarrow columns
        return _pandas_values(values) if hasattr(values, "dt") else values.to_numpy()
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"expected a sequence of values, got {type(values).__name__}")
    if len(values) and all(isinstance(v, datetime) and v.tzinfo for v in values):
        values = [_naive_utc(v) for v in values]
    return numpy.asarray(values)


def _pandas_values(series: Any) -> numpy.ndarray:
    """A pandas column as numpy, time zones converted to naive UTC."""
    if getattr(getattr(series, "dt", None), "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.to_numpy()


def _object_array(values: Any) -> numpy.ndarray:
    if isinstance(values, numpy.ndarray) and values.dtype.kind == "O" and values.ndim == 1:
        return values
    items = list(values.tolist() if hasattr(values, "tolist") else values)
    arr = numpy.empty(len(items), dtype=object)
    arr[:] = items
    return arr


def _cast_datetimes(arr: numpy.ndarray, dt: numpy.dtype) -> numpy.ndarray:
    if arr.dtype.kind == "M":
        out = arr.astype(dt)
        if not numpy.array_equal(out.astype(arr.dtype), arr, equal_nan=True):
            raise ValueError(f"values finer than the column unit {dt} would be truncated")
        return out
    if arr.dtype.kind in "iu":
        return arr.astype(dt)
    if arr.dtype.kind == "f":
        return _float_datetimes(arr, dt)
    if arr.dtype.kind in "USO":
        if arr.dtype.kind == "O":
            arr = numpy.array([_naive_utc(v) if isinstance(v, datetime) else v for v in arr])
            if arr.dtype.kind == "M":
                return _cast_datetimes(arr, dt)
        if arr.dtype.kind in "US":  # parse at the text's own precision, then check the cast
            return _cast_datetimes(numpy.asarray(arr, dtype="M8"), dt)
        return numpy.asarray(arr, dtype=dt)
    raise TypeError(f"{arr.dtype} values are not dates")


def _float_datetimes(arr: numpy.ndarray, dt: numpy.dtype) -> numpy.ndarray:
    """Floats as counts of the column unit (epoch seconds for ``timestamp``), like ints.

    NaN becomes NaT; a fraction of the unit, an infinity or an out-of-range value is
    refused rather than truncated.
    """
    missing = numpy.isnan(arr)
    values = arr[~missing]
    if not numpy.all(numpy.abs(values) < 2.0**63):
        raise ValueError("values out of the range of dates (or infinite)")
    if not numpy.array_equal(values, numpy.trunc(values)):
        raise ValueError(f"fractional values would be truncated to whole units of {dt}")
    counts = numpy.where(missing, 0, arr).astype("i8")
    out = counts.astype(dt)
    out[missing] = numpy.datetime64("NaT")
    return out


def _time_counts(arr: numpy.ndarray, dt: numpy.dtype) -> numpy.ndarray:
    """Datetimes or durations as counts of their own unit (``M8[s]`` gives epoch seconds)."""
    if numpy.isnat(arr).any():
        raise ValueError("NaT has no numeric value")
    return _cast_numbers(arr.view("i8"), dt)


_BOOL_TEXT = {"true": True, "1": True, "false": False, "0": False}


def _cast_numbers(arr: numpy.ndarray, dt: numpy.dtype) -> numpy.ndarray:
    if arr.dtype.kind in "US" and dt.kind == "b":
        return _parse_bools(arr)
    if arr.dtype.kind in "US":
        return numpy.asarray(arr, dtype=dt)
    if arr.dtype.kind in "mM" and dt.kind != "b":
        return _time_counts(arr, dt)
    if arr.dtype.kind == "O" and dt.kind != "b":
        plain = numpy.asarray(arr.tolist())
        if plain.dtype.kind == "O":  # None, huge integers, mixed objects...
            raise TypeError(f"values {arr[:3].tolist()}... are not all {dt} numbers")
        return _cast_numbers(plain, dt)
    if numpy.can_cast(arr.dtype, dt, "safe") or (arr.dtype.kind in "biuf" and dt.kind == "f"):
        return arr.astype(dt)  # a narrower integer is checked below: it could wrap around
    with numpy.errstate(invalid="ignore"):  # a lossy cast is refused just below
        out = arr.astype(dt)
    if not numpy.array_equal(out, arr):
        raise ValueError(f"{arr.dtype} values would lose precision")
    return out


def _parse_bools(arr: numpy.ndarray) -> numpy.ndarray:
    """Text to booleans: only true/false/1/0 (any case), since any other text is ambiguous."""
    words = numpy.char.lower(numpy.char.strip(arr.astype("U")))
    unknown = sorted(set(words.tolist()) - set(_BOOL_TEXT))
    if unknown:
        raise ValueError(f"{unknown[:3]} are not booleans (use true/false or 1/0)")
    return numpy.isin(words, [w for w, flag in _BOOL_TEXT.items() if flag])


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _as_datetime64(value: Any) -> numpy.datetime64:
    """A date-like scalar (ISO text, date, datetime, pandas Timestamp) at its own precision."""
    if isinstance(value, datetime):
        value = _naive_utc(value)
    if hasattr(value, "to_datetime64"):
        value = value.to_datetime64()
    if not isinstance(value, (str, date, numpy.datetime64)):
        raise TypeError(f"{type(value).__name__} is not a date")
    return numpy.datetime64(value)


def _cast_scalar(value: Any, dt: numpy.dtype) -> Any:
    if dt.kind == "M":
        if isinstance(value, datetime):
            value = _naive_utc(value)
        if isinstance(value, (numpy.integer, int)) and not isinstance(value, bool):
            return numpy.datetime64(int(value), numpy.datetime_data(dt)[0])
        if isinstance(value, (str, date, numpy.datetime64)) or hasattr(value, "to_datetime64"):
            exact = _as_datetime64(value)
            cast = exact.astype(dt)
            if cast != exact and not numpy.isnat(exact):
                raise ValueError(f"{exact} is finer than the column unit {dt}")
            return cast
        raise TypeError(f"{type(value).__name__} is not a date")
    if dt.kind == "U":
        if not isinstance(value, (str, numpy.str_)):
            raise TypeError(f"{type(value).__name__} is not a string")
        return str(value)
    if dt.kind == "O":
        return value
    if isinstance(value, (str, bytes)) and dt.kind in "iuf":
        return dt.type(value)
    if isinstance(value, (datetime, date, numpy.datetime64)):
        raise TypeError(f"{type(value).__name__} is not a number")
    cast = dt.type(value)
    if dt.kind in "iu" and cast != value:
        raise ValueError(f"{value!r} is not an integer")
    return cast


class Schema:
    """Ordered columns; at least one of them is an index column.

    ``Schema(timestamp="timestamp*", value="float")`` declares a series indexed by time.
    ``Schema.kv(...)`` declares a key-value collection whose writes are upserts.
    """

    def __init__(self, **columns: str | SchemaColumn) -> None:
        self.kind: str | None = None
        self.columns: dict[str, SchemaColumn] = {}
        for name, definition in columns.items():
            if isinstance(definition, SchemaColumn):
                col = definition
                if col.name != name:
                    col = SchemaColumn(name, col.dt, col.codec.codec_names, col.idx)
            else:
                col = SchemaColumn.from_ui(name, definition)
            self.columns[name] = col
        self.idx = [name for name, col in self.columns.items() if col.idx]
        self.non_idx = [name for name, col in self.columns.items() if not col.idx]
        if not self.idx:
            raise SchemaError("Invalid schema, no index defined")

    @classmethod
    def kv(cls, **columns: str | SchemaColumn) -> Schema:
        """A key-value schema: writes upsert rows keyed on the index columns."""
        schema = cls(**columns)
        schema.kind = "kv"
        return schema

    @classmethod
    def loads(cls, dump: Mapping) -> Schema:
        """Inverse of `dumps` (the registry's representation)."""
        try:
            columns = {
                name: SchemaColumn(name, col["dt"], col.get("codecs"), col.get("idx", False))
                for name, col in dump["columns"].items()
            }
            kind = dump.get("kind")
        except (KeyError, TypeError, AttributeError) as exc:
            raise SchemaError(f"Invalid schema dump {dump!r}: {exc}") from None
        schema = cls(**columns)
        if kind not in (None, "kv"):
            raise SchemaError(f"Unknown schema kind {kind!r}")
        schema.kind = kind
        return schema

    def dumps(self) -> dict:
        return {"kind": self.kind, "columns": {n: c.dumps() for n, c in self.columns.items()}}

    @classmethod
    def from_frame(cls, frame: Any, idx_columns: Iterable[str] | None = None) -> Schema:
        """Schema from the dtypes of the columns of a dict, Frame, pandas, Arrow or Polars
        table (every column indexed by default)."""
        columns = as_column_mapping(frame)
        idx = set(columns if idx_columns is None else idx_columns)
        unknown = sorted(idx - set(columns))
        if unknown:
            raise SchemaError(f"Unknown index column(s): {', '.join(map(repr, unknown))}")
        return cls(
            **{
                name: SchemaColumn(name, _infer_array(columns[name]).dtype, idx=name in idx)
                for name in columns
            }
        )

    def clone(self, *keep: str) -> Schema:
        """A schema with only the `keep` columns (same order and kind)."""
        missing = [k for k in keep if k not in self.columns]
        if missing:
            raise KeyError(f"Unknown column(s): {', '.join(missing)}")
        schema = Schema(**{n: c for n, c in self.columns.items() if n in keep})
        schema.kind = self.kind
        return schema

    def cast(self, df: Any = None) -> dict[str, numpy.ndarray]:
        """Cast the columns of `df` that this schema knows; `None` gives empty columns."""
        if df is None:
            return {name: numpy.empty(0, dtype=col.dt) for name, col in self.columns.items()}
        source = as_column_mapping(df)
        return {
            name: col.cast(source[name]) for name, col in self.columns.items() if name in source
        }

    def serialize(self, values: Any) -> tuple[str, ...]:
        """Index values as a tuple of strings."""
        return tuple(str(v) for v in self._as_tuple(values))

    def deserialize(self, values: Any) -> tuple:
        """Index values (scalar or sequence, possibly partial) cast with the index dtypes."""
        values = self._as_tuple(values)
        if len(values) > len(self.idx):
            raise ValueError(
                f"Too many index values {values!r} for index columns {', '.join(self.idx)}"
            )
        return tuple(self.columns[name].cast_scalar(v) for name, v in zip(self.idx, values))

    def query_bound(self, values: Any, side: str) -> tuple[tuple, bool]:
        """Read bound as a tuple of index values, and whether it is exact.

        An inexact bound (a date finer than its column) was rounded inward and cut
        after the rounded value, so that including it selects exactly the asked rows.
        """
        values = self._as_tuple(values)
        if len(values) > len(self.idx):
            raise ValueError(
                f"Too many index values {values!r} for index columns {', '.join(self.idx)}"
            )
        bound = []
        for name, value in zip(self.idx, values):
            cast, exact = self.columns[name].cast_bound(value, side)
            bound.append(cast)
            if not exact:
                return tuple(bound), False
        return tuple(bound), True

    @staticmethod
    def _as_tuple(values: Any) -> tuple:
        if values is None:
            return ()
        if isinstance(values, (list, tuple)):
            return tuple(values)
        return (values,)

    def row(self, columns: Mapping, pos: int, full: bool = True) -> tuple:
        """The values at position `pos` (index columns only unless `full`)."""
        names = self.columns if full else self.idx
        return tuple(columns[name][pos] for name in names)

    @property
    def numeric(self) -> bool:
        """True if every column is `numeric`: encoding such columns cannot fail."""
        return all(col.numeric for col in self.columns.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __getitem__(self, name: str) -> SchemaColumn:
        try:
            return self.columns[name]
        except KeyError:
            raise KeyError(f"Unknown column {name!r}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schema):
            return NotImplemented
        return self.kind == other.kind and list(self.columns.values()) == list(
            other.columns.values()
        )

    __hash__ = None

    def __repr__(self) -> str:
        cols = " ".join(f"{n}:{c.dt}{'*' if c.idx else ''}" for n, c in self.columns.items())
        kind = " kv" if self.kind else ""
        return f"<Schema{kind} {cols}>"


def as_column_mapping(data: Any) -> Mapping:
    """A name -> array-like view of a dict, Frame, pandas, Arrow or Polars table.

    Columns that come from pandas, pyarrow or polars (whole tables, or single columns in
    a dict) are converted to numpy when they are looked up: time zones become naive UTC,
    dictionary and categorical columns are decoded, and a missing value (null, NA, None)
    raises a `FrameError` naming the column. NaN in float columns and NaT in datetime
    columns of pandas are values numpy can store, so they pass through.
    """
    if isinstance(data, Mapping):
        if any(_library(values) for values in data.values()):
            return _LazyColumns(list(data), lambda name: _foreign_values(data[name], name))
        return data
    columns = getattr(data, "columns", None)
    if isinstance(columns, Mapping):  # a Frame
        return columns
    if hasattr(data, "iloc"):  # pandas DataFrame
        return _pandas_mapping(data)
    if hasattr(data, "column_names") and hasattr(data, "column"):  # pyarrow Table/RecordBatch
        return _LazyColumns(data.column_names, lambda name: _arrow_values(data.column(name), name))
    if hasattr(data, "get_column") and hasattr(data, "to_arrow"):  # polars DataFrame
        return _LazyColumns(data.columns, lambda name: _polars_values(data.get_column(name), name))
    raise TypeError(f"Cannot read columns from a {type(data).__name__}")


class _LazyColumns(Mapping):
    """Read-only mapping that converts a column each time it is looked up."""

    def __init__(self, names: Iterable[str], convert: Any) -> None:
        self.names = list(names)
        duplicated = sorted({name for name in self.names if self.names.count(name) > 1})
        if duplicated:
            raise FrameError(f"Duplicate column name(s): {', '.join(map(repr, duplicated))}")
        self.convert = convert

    def __getitem__(self, name: str) -> Any:
        if name not in self.names:
            raise KeyError(name)
        return self.convert(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def _library(values: Any) -> str | None:
    """The library ("pandas", "pyarrow" or "polars") that `values` comes from, if any."""
    root = type(values).__module__.partition(".")[0]
    return root if root in ("pandas", "pyarrow", "polars") else None


def _foreign_values(values: Any, name: str) -> Any:
    """One column given in a dict: pandas, Arrow and Polars columns become numpy."""
    library = _library(values)
    if library == "pandas" and hasattr(values, "isna"):
        if hasattr(values, "to_series") and not hasattr(values, "iloc"):  # an Index
            values = values.to_series(index=None)
        return _pandas_column(values, name)
    if library == "pyarrow" and hasattr(values, "null_count"):
        return _arrow_values(values, name)
    if library == "polars" and hasattr(values, "null_count"):
        return _polars_values(values, name)
    return values


def _pandas_mapping(df: Any) -> Mapping:
    """Columns, then named index levels (those not shadowed by a column)."""
    names = list(df.columns)
    levels = {}
    for level, name in enumerate(df.index.names):
        if name is not None and name not in names:
            levels[name] = level
    names.extend(levels)

    def column(name: str) -> numpy.ndarray:
        if name in levels:
            values = df.index.get_level_values(levels[name])
            return _pandas_column(values.to_series(index=None), name)
        return _pandas_column(df[name], name)

    return _LazyColumns(names, column)


def _pandas_column(series: Any, name: str) -> numpy.ndarray:
    """A pandas column as numpy; missing values raise unless they are NaN or NaT."""
    dtype = series.dtype
    numpy_values = isinstance(dtype, numpy.dtype) and dtype.kind != "O"
    if not numpy_values and getattr(dtype, "tz", None) is None:  # tz-aware: NaT is a value
        _refuse_missing(int(series.isna().sum()), name)
    return _pandas_values(series)


def _refuse_missing(count: int, name: str) -> None:
    if count:
        raise FrameError(
            f"Column {name!r} has {count} missing value(s) (null, NA or None): "
            "lakota columns cannot hold them, fill or drop them first"
        )


def _arrow_values(column: Any, name: str) -> numpy.ndarray:
    """An Arrow array or chunked array as numpy (zero-copy for numbers without nulls)."""
    import pyarrow
    import pyarrow.compute as pc

    _refuse_missing(column.null_count, name)
    kind = column.type
    if pyarrow.types.is_dictionary(kind):
        kind = kind.value_type
        column = pc.cast(column, kind)
    if pyarrow.types.is_timestamp(kind) and kind.tz is not None:
        column = pc.cast(column, pyarrow.timestamp(kind.unit))
    elif pyarrow.types.is_string_view(kind):
        column = pc.cast(column, pyarrow.large_string())
    return column.to_numpy(zero_copy_only=False)  # zero-copy from a single chunk


def _polars_values(series: Any, name: str) -> numpy.ndarray:
    """A Polars series as numpy (zero-copy for numbers and datetimes without nulls)."""
    import polars

    _refuse_missing(series.null_count(), name)
    dtype = series.dtype
    if dtype == polars.Object or dtype.is_nested():
        return _object_array(series.to_list())
    if isinstance(dtype, (polars.Categorical, polars.Enum)):
        series = series.cast(polars.String)
    elif isinstance(dtype, polars.Datetime) and dtype.time_zone is not None:
        series = series.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return series.to_numpy()
