"""Import and export of collections as CSV and Parquet folders (lakota.io)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numcodecs.pickles
import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakota.schema
from lakota import POD, Frame, MemPOD, Repo, Schema
from lakota.errors import (
    CollectionNotFoundError,
    FrameError,
    InvalidLabelError,
    SchemaError,
    StorageError,
)
from lakota.io import decode_name, encode_name, export_series, import_series, read_series

ALL_TYPES = Schema(
    ts="timestamp*", day="date", count="int", value="float", name="str", extra="O", flag="bool"
)
ALL_ROWS = {
    "ts": ["2020-06-22", "2020-06-23", "2020-06-24"],
    "day": ["2020-01-01", "NaT", "1969-12-31"],
    "count": [0, -(2**63), 2**63 - 1],
    "value": [25.0, 0.1, float("nan")],
    "name": ["plain", 'a,b "quoted"\r\nnext', "é\x00ü"],
    "extra": [{"a": [1, 2.5, None]}, "text", None],
    "flag": [True, False, True],
}
FILE_TYPES = ["csv", "parquet"]
TEMP = Schema(timestamp="timestamp*", value="float")


@pytest.fixture(params=["memory", "file"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Repo, POD | str]:
    """A repository and an export destination on the same kind of storage."""
    if request.param == "memory":
        return Repo(pod=MemPOD()), MemPOD()
    return Repo(f"file://{tmp_path}/repo"), f"file://{tmp_path}/export"


def as_pod(dest: POD | str) -> POD:
    return dest if isinstance(dest, POD) else POD.from_uri(dest)


def assert_same(got: Frame, expected: Frame) -> None:
    """Exact equality, NaN and NaT included, and the sign of zero."""
    assert list(got) == list(expected)
    for name in expected:
        a, b = got[name], expected[name]
        assert a.dtype.kind == b.dtype.kind, name
        if b.dtype.kind in "Mm":
            assert a.astype(b.dtype).view("i8").tolist() == b.view("i8").tolist(), name
        elif b.dtype.kind == "f":
            assert numpy.array_equal(a, b, equal_nan=True), name
            assert numpy.signbit(a).tolist() == numpy.signbit(b).tolist(), name
        else:
            assert a.tolist() == b.tolist(), name


def round_trip(repo: Repo, dest: POD | str, file_type: str = "csv", **kw) -> Repo:
    repo.export_collections(dest, file_type=file_type, **kw)
    other = Repo(pod=MemPOD())
    other.import_collections(dest)
    return other


def revisions(repo: Repo, label: str) -> int:
    return len(repo.collection(label).changelog.log())


# --- export layout ---------------------------------------------------------------------


def test_export_layout_and_csv_text(storage) -> None:
    repo, dest = storage
    clct = repo.create_collection(TEMP, "temperature")
    clct.series("Brussels").write({"timestamp": ["2020-06-22", "2020-06-23"], "value": [25, 0.1]})
    repo.export_collections(dest)
    pod = as_pod(dest)
    assert sorted(pod.walk()) == ["temperature/Brussels.csv", "temperature/_schema.json"]
    assert pod.read("temperature/_schema.json", "r") == json.dumps(TEMP.dumps())
    assert pod.read("temperature/Brussels.csv", "r") == (
        "timestamp,value\r\n2020-06-22T00:00:00,25.0\r\n2020-06-23T00:00:00,0.1\r\n"
    )


def test_export_overwrites_previous_export(storage) -> None:
    repo, dest = storage
    series = repo.create_collection(TEMP, "temp").series("x")
    series.write({"timestamp": ["2020-01-01"], "value": [1.0]})
    repo.export_collections(dest)
    series.write({"timestamp": ["2020-01-01"], "value": [2.0]})
    repo.export_collections(dest)
    assert as_pod(dest).read("temp/x.csv", "r").endswith("2020-01-01T00:00:00,2.0\r\n")


def test_export_selected_collections_only(storage) -> None:
    repo, dest = storage
    repo.create_collection(TEMP, "a", "b")
    repo.export_collections(dest, collections=["b"])
    assert as_pod(dest).ls() == ["b"]


def test_export_series_returns_the_file_name() -> None:
    repo = Repo(pod=MemPOD())
    series = repo.create_collection(TEMP, "temp").series("a/b")
    series.write({"timestamp": ["2020-01-01"], "value": [1.5]})
    pod = MemPOD()
    assert export_series(pod, series, "parquet") == "a%2Fb.parquet"
    label, frame = read_series(pod, TEMP, "a%2Fb.parquet")
    assert label == "a/b"
    assert_same(frame, series.frame())


# --- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_round_trip_all_column_types(storage, file_type: str) -> None:
    repo, dest = storage
    clct = repo.create_collection(ALL_TYPES, "everything")
    clct.series("s1").write(ALL_ROWS)
    clct.series("s2").write({k: v[:1] for k, v in ALL_ROWS.items()})
    other = round_trip(repo, dest, file_type)
    copy = other.collection("everything")
    assert copy.schema == ALL_TYPES
    assert copy.ls() == ["s1", "s2"]
    for label in ("s1", "s2"):
        assert_same(copy.series(label).frame(), clct.series(label).frame())
    assert revisions(other, "everything") == 1


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_round_trip_multi_column_index(storage, file_type: str) -> None:
    repo, dest = storage
    schema = Schema(city="str*", day="date*", value="float")
    clct = repo.create_collection(schema, "weather")
    rows = {
        "city": ["Brussels", "Brussels", "Paris"],
        "day": ["2020-01-01", "2020-01-02", "2020-01-01"],
        "value": [1.0, -0.0, float("inf")],
    }
    clct.series("eu").write(rows)
    copy = round_trip(repo, dest, file_type).collection("weather")
    assert copy.schema == schema
    assert_same(copy.series("eu").frame(), clct.series("eu").frame())


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_round_trip_kv_collection(storage, file_type: str) -> None:
    repo, dest = storage
    schema = Schema.kv(key="str*", meta="O", hits="int")
    clct = repo.create_collection(schema, "kv")
    clct.series("registry").write({"key": ["b", "a"], "meta": [{"x": 1}, [1, 2]], "hits": [2, 1]})
    copy = round_trip(repo, dest, file_type).collection("kv")
    assert copy.schema.kind == "kv"
    assert_same(copy.series("registry").frame(), clct.series("registry").frame())
    copy.series("registry").write({"key": ["a"], "meta": [None], "hits": [5]})  # upserts
    assert copy.series("registry").frame()["hits"].tolist() == [5, 2]


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_round_trip_other_numeric_types(storage, file_type: str) -> None:
    repo, dest = storage
    schema = Schema(t="M8[ms]*", small="f4", unsigned="u8", span="m8[s]")
    clct = repo.create_collection(schema, "misc")
    clct.series("x").write(
        {
            "t": ["2020-01-01T00:00:00.001", "2020-01-01T00:00:00.002"],
            "small": numpy.array([0.1, 3.4e38], dtype="f4"),
            "unsigned": numpy.array([0, 2**64 - 1], dtype="u8"),
            "span": numpy.array([5, "NaT"], dtype="m8[s]"),
        }
    )
    copy = round_trip(repo, dest, file_type).collection("misc")
    assert_same(copy.series("x").frame(), clct.series("x").frame())


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_empty_series_round_trip(storage, file_type: str) -> None:
    repo, dest = storage
    clct = repo.create_collection(TEMP, "temp")
    clct.series("gone").write({"timestamp": ["2020-01-01"], "value": [1.0]})
    clct.series("gone").delete("2019-01-01", "2021-01-01")
    clct.series("kept").write({"timestamp": ["2020-01-01"], "value": [2.0]})
    assert clct.ls() == ["gone", "kept"] and len(clct.series("gone")) == 0
    other = round_trip(repo, dest, file_type)
    if file_type == "csv":
        assert as_pod(dest).read("temp/gone.csv", "r") == "timestamp,value\r\n"
    copy = other.collection("temp")
    assert copy.series("gone").frame().empty
    assert copy.series("kept").frame()["value"].tolist() == [2.0]


def test_empty_collection_round_trip(storage) -> None:
    repo, dest = storage
    repo.create_collection(TEMP, "nothing")
    other = round_trip(repo, dest)
    assert other.ls() == ["nothing"]
    assert other.collection("nothing").schema == TEMP
    assert other.collection("nothing").changelog.log() == []


# --- property round trip ---------------------------------------------------------------

PROPERTY_SCHEMA = Schema(
    idx="int*", ts="timestamp", day="date", value="float", name="str", extra="O", flag="bool"
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=5,
)
seconds = st.integers(-(2**40), 2**40) | st.just("NaT")
days = st.integers(-(2**31), 2**31 - 1) | st.just("NaT")  # Parquet's date32 range


@st.composite
def frames(draw: st.DrawFn) -> dict:
    idx = sorted(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=6)))
    size = len(idx)

    def column(strategy: st.SearchStrategy) -> list:
        return draw(st.lists(strategy, min_size=size, max_size=size))

    extra = numpy.empty(size, dtype=object)
    extra[:] = column(json_values)
    return {
        "idx": idx,
        "ts": numpy.array(column(seconds), dtype="M8[s]"),
        "day": numpy.array(column(days), dtype="M8[D]"),
        "value": column(st.floats()),
        "name": column(st.text(max_size=8)),
        "extra": extra,
        "flag": column(st.booleans()),
    }


@pytest.mark.parametrize("file_type", FILE_TYPES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=frames())
def test_round_trip_is_exact(file_type: str, data: dict) -> None:
    repo = Repo(pod=MemPOD())
    series = repo.create_collection(PROPERTY_SCHEMA, "prop").series("s")
    series.write(data)
    copy = round_trip(repo, MemPOD(), file_type).collection("prop")
    assert_same(copy.series("s").frame(), series.frame())


# --- labels that are not file names ----------------------------------------------------

TRICKY = ["a/b", "100%", "%2F", "_private", ".hidden", "..", "a\\b", "é ü", "x.csv"]


def test_labels_are_encoded_in_file_names(storage) -> None:
    repo, dest = storage
    clct = repo.create_collection(TEMP, "c/d")
    for pos, label in enumerate(TRICKY):
        clct.series(label).write({"timestamp": ["2020-01-01"], "value": [float(pos)]})
    other = round_trip(repo, dest)
    names = as_pod(dest).ls("c%2Fd")
    assert "a%2Fb.csv" in names and "%5Fprivate.csv" in names and "%2E..csv" in names
    assert not any(name.startswith(".") for name in names)
    copy = other.collection("c/d")
    assert copy.ls() == sorted(TRICKY)
    for pos, label in enumerate(TRICKY):
        assert copy.series(label).frame()["value"].tolist() == [float(pos)]


@settings(max_examples=200, deadline=None)
@given(label=st.text(min_size=1))
def test_name_encoding_is_reversible_and_safe(label: str) -> None:
    name = encode_name(label)
    assert decode_name(name) == label
    assert "/" not in name and "\\" not in name
    assert not name.startswith((".", "_"))


def test_decode_name_rejects_invalid_utf8_escape() -> None:
    with pytest.raises(InvalidLabelError, match="%FF"):
        decode_name("%FF.csv")


# --- import details --------------------------------------------------------------------


def write_export(pod: POD, files: dict[str, str], schema: Schema = TEMP) -> None:
    """A hand-made export of collection "temp"."""
    pod.write("temp/_schema.json", json.dumps(schema.dumps()), mode="w")
    for name, text in files.items():
        pod.write(f"temp/{name}", text, mode="w")


def test_import_hand_written_csv() -> None:
    src = MemPOD()
    write_export(
        src,
        {
            "a.csv": '\ufeffvalue,timestamp\r\n"1.5",2020-01-01\n\n2,2020-01-02T00:00:00\n',
            "_notes.txt": "ignored: starts with _",
        },
    )
    repo = Repo(pod=MemPOD())
    repo.import_collections(src)
    frame = repo.collection("temp").series("a").frame()
    assert frame["timestamp"].astype(str).tolist() == ["2020-01-01T00:00:00", "2020-01-02T00:00:00"]
    assert frame["value"].tolist() == [1.5, 2.0]


def test_import_makes_one_revision_per_collection(storage) -> None:
    repo, dest = storage
    clct = repo.create_collection(TEMP, "temp")
    for label in "abc":
        clct.series(label).write({"timestamp": ["2020-01-01"], "value": [1.0]})
    other = round_trip(repo, dest)
    assert other.collection("temp").ls() == ["a", "b", "c"]
    assert revisions(other, "temp") == 1


def test_import_selected_collections(storage) -> None:
    repo, dest = storage
    for label in ("a", "b"):
        repo.create_collection(TEMP, label).series("x").write(
            {"timestamp": ["2020-01-01"], "value": [1.0]}
        )
    repo.export_collections(dest)
    other = Repo(pod=MemPOD())
    other.import_collections(dest, collections=["b"])
    assert other.ls() == ["b"]


def test_import_into_existing_collection_overlays() -> None:
    src = MemPOD()
    write_export(src, {"a.csv": "timestamp,value\r\n2020-01-02T00:00:00,9.0\r\n"})
    repo = Repo(pod=MemPOD())
    series = repo.create_collection(TEMP, "temp").series("a")
    series.write({"timestamp": ["2020-01-01", "2020-01-03"], "value": [1.0, 3.0]})
    repo.import_collections(src)
    assert series.frame()["value"].tolist() == [1.0, 9.0, 3.0]


def test_import_series_writes_one_file() -> None:
    src = MemPOD()
    write_export(src, {"a%2Fb.csv": "timestamp,value\r\n2020-01-01T00:00:00,1.0\r\n"})
    clct = Repo(pod=MemPOD()).create_collection(TEMP, "temp")
    assert import_series(src.cd("temp"), clct, "a%2Fb.csv") == "a/b"
    assert clct.series("a/b").frame()["value"].tolist() == [1.0]


def test_import_uses_existing_schema_without_schema_file() -> None:
    src = MemPOD()
    src.write("temp/a.csv", "timestamp,value\r\n2020-01-01T00:00:00,1.0\r\n", mode="w")
    repo = Repo(pod=MemPOD())
    repo.create_collection(TEMP, "temp")
    repo.import_collections(src)
    assert repo.collection("temp").series("a").frame()["value"].tolist() == [1.0]


# --- errors ----------------------------------------------------------------------------


def test_export_missing_collection_writes_nothing(storage) -> None:
    repo, dest = storage
    repo.create_collection(TEMP, "here")
    with pytest.raises(CollectionNotFoundError, match="'nope'.*'gone'|'gone'.*'nope'"):
        repo.export_collections(dest, collections=["here", "nope", "gone"])
    assert as_pod(dest).ls(missing_ok=True) == []


def test_export_unknown_file_type(storage) -> None:
    repo, dest = storage
    repo.create_collection(TEMP, "temp")
    with pytest.raises(ValueError, match="Unsupported file type 'xls'"):
        repo.export_collections(dest, file_type="xls")
    assert as_pod(dest).ls(missing_ok=True) == []


def test_export_to_unwritable_place(tmp_path: Path) -> None:
    repo = Repo(pod=MemPOD())
    repo.create_collection(TEMP, "temp")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="_schema.json"):
        repo.export_collections(f"file://{blocker}")


def test_export_unsupported_column_type_writes_nothing() -> None:
    repo = Repo(pod=MemPOD())
    repo.create_collection(Schema(i="int*", z="c16"), "complex")
    dest = MemPOD()
    with pytest.raises(SchemaError, match="z"):
        repo.export_collections(dest)
    assert dest.ls() == []


@pytest.mark.parametrize(
    "value, reason",
    [
        (b"raw", "not JSON"),
        ({1: "int key"}, "would not survive JSON"),
        ([(1, 2)], "would not survive JSON"),
        ({"a": 1.0, "b": [True, 1]}, None),
        ([float("nan"), float("inf")], None),
    ],
)
def test_export_object_cells_must_survive_json(
    value, reason: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(numcodecs.pickles, "ALLOW_UNSAFE_PICKLE_DECODE", True)  # our own data
    monkeypatch.setattr(lakota.schema, "SAFE_CODECS", lakota.schema.SAFE_CODECS | {"pickle"})
    repo = Repo(pod=MemPOD())
    extra = numpy.empty(1, dtype=object)
    extra[0] = value
    clct = repo.create_collection(Schema(i="int*", o="O | pickle"), "obj")
    clct.series("s").write({"i": [1], "o": extra})
    if reason is None:
        copy = round_trip(repo, MemPOD()).collection("obj")
        assert repr(copy.series("s").frame()["o"][0]) == repr(value)
        return
    with pytest.raises(FrameError, match=f"obj/s.csv.*{reason}"):
        repo.export_collections(MemPOD())


@pytest.mark.parametrize(
    "schema, value, message",
    [
        (Schema(t="date*"), numpy.array([2**31], dtype="M8[D]"), "beyond Parquet's range"),
        (Schema(t="timestamp*"), numpy.array([2**62], dtype="M8[s]"), "overflow"),
    ],
)
def test_parquet_refuses_dates_it_cannot_hold(schema: Schema, value, message: str) -> None:
    repo = Repo(pod=MemPOD())
    clct = repo.create_collection(schema, "far")
    clct.series("s").write({"t": value})
    dest = MemPOD()
    with pytest.raises(FrameError, match=f"far/s.parquet.*{message}"):
        repo.export_collections(dest, file_type="parquet")
    assert not dest.isfile("far/s.parquet")
    copy = round_trip(repo, MemPOD(), "csv").collection("far")  # CSV has no such limit
    assert_same(copy.series("s").frame(), clct.series("s").frame())


def test_parquet_without_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Repo(pod=MemPOD())
    repo.create_collection(TEMP, "temp").series("a").write(
        {"timestamp": ["2020-01-01"], "value": [1.0]}
    )
    dest = MemPOD()
    repo.export_collections(dest, file_type="parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"lakota\[arrow\]"):
        repo.export_collections(MemPOD(), file_type="parquet")
    other = Repo(pod=MemPOD())
    with pytest.raises(ImportError, match=r"lakota\[arrow\]"):
        other.import_collections(dest)
    assert other.ls() == []


BAD_FILES = [
    ("a.csv", "timestamp,other\r\n", SchemaError, r"a\.csv.*\['timestamp', 'other'\].*value"),
    ("a.csv", "timestamp,value,value\r\n", SchemaError, r"a\.csv: columns"),
    ("a.csv", "", SchemaError, r"a\.csv: empty file"),
    (
        "a.csv",
        "timestamp,value\r\n2020-01-02T00:00:00,1\r\n2020-01-01T00:00:00,2\r\n",
        FrameError,
        r"a\.csv: rows are not sorted",
    ),
    ("a.csv", "timestamp,value\r\n2020-01-01T00:00:00,abc\r\n", FrameError, r"a\.csv.*value"),
    ("a.csv", "timestamp,value\r\n2020-01-01T00:00:00\r\n", FrameError, r"a\.csv: line 2"),
    ("a.csv", "timestamp,value\r\n2020-01-01T00:00:00.5,1\r\n", FrameError, r"a\.csv.*trunc"),
    ("a.csv", "timestamp,value\r\nyesterday,1\r\n", FrameError, r"a\.csv.*timestamp"),
    ("a.csv", b"timestamp,value\r\n\xff,1\r\n", FrameError, r"a\.csv: not UTF-8"),
    ("a.xlsx", "whatever", ValueError, r"a\.xlsx: unknown file extension"),
    ("README", "whatever", ValueError, r"README: unknown file extension"),
    (".csv", "timestamp,value\r\n", InvalidLabelError, r"\.csv.*invalid label"),
    ("a.parquet", "not parquet", FrameError, r"a\.parquet: unreadable parquet"),
]


@pytest.mark.parametrize("name, content, error, message", BAD_FILES)
def test_bad_file_imports_nothing(storage, name: str, content, error, message: str) -> None:
    repo, dest = storage
    clct = repo.create_collection(TEMP, "temp")
    clct.series("0good").write({"timestamp": ["2020-01-01"], "value": [1.0]})  # read first
    repo.export_collections(dest)
    data = content.encode() if isinstance(content, str) else content
    as_pod(dest).write(f"temp/{name}", data)
    other = Repo(pod=MemPOD())
    with pytest.raises(error, match=message):
        other.import_collections(dest)
    assert other.ls() == []
    existing_revisions = revisions(repo, "temp")
    with pytest.raises(error):
        repo.import_collections(dest)
    assert revisions(repo, "temp") == existing_revisions


@pytest.mark.parametrize(
    "schema, cells, message",
    [
        (Schema(i="int*", flag="bool"), "i,flag\r\n1,yes\r\n", "'yes' is not True or False"),
        (Schema(i="int*", o="O"), "i,o\r\n1,{oops\r\n", "invalid JSON cell"),
        (Schema(i="int*", n="int"), "i,n\r\n1,1.5\r\n", "Column 'n'"),
    ],
)
def test_bad_cells(schema: Schema, cells: str, message: str) -> None:
    src = MemPOD()
    write_export(src, {"s.csv": cells}, schema)
    with pytest.raises(FrameError, match=rf"temp/s\.csv: .*{message}"):
        Repo(pod=MemPOD()).import_collections(src)


def test_bad_second_collection_imports_nothing() -> None:
    src = MemPOD()
    write_export(src, {"a.csv": "timestamp,value\r\n2020-01-01T00:00:00,1.0\r\n"})
    src.write("zzz/_schema.json", json.dumps(TEMP.dumps()), mode="w")
    src.write("zzz/b.csv", "timestamp\r\n", mode="w")
    repo = Repo(pod=MemPOD())
    with pytest.raises(SchemaError, match="zzz/b.csv"):
        repo.import_collections(src)
    assert repo.ls() == []


def parquet_bytes(columns: dict) -> bytes:
    import pyarrow
    import pyarrow.parquet

    sink = pyarrow.BufferOutputStream()
    pyarrow.parquet.write_table(pyarrow.table(columns), sink)
    return sink.getvalue().to_pybytes()


def test_parquet_nulls() -> None:
    import pyarrow

    schema = Schema(i="int*", t="timestamp", value="float")
    stamps = pyarrow.array([0, None], type=pyarrow.timestamp("s"))
    src = MemPOD()
    write_export(src, {}, schema)
    src.write("temp/ok.parquet", parquet_bytes({"i": [1, 2], "t": stamps, "value": [1.0, 2.0]}))
    repo = Repo(pod=MemPOD())
    repo.import_collections(src)  # a null time is NaT
    frame = repo.collection("temp").series("ok").frame()
    assert frame["t"].astype(str).tolist() == ["1970-01-01T00:00:00", "NaT"]
    bad = {"i": [1, 2], "t": [0, 1], "value": [1.0, None]}
    src.write("temp/bad.parquet", parquet_bytes(bad))
    with pytest.raises(FrameError, match=r"temp/bad\.parquet: Column 'value' has 1 missing"):
        repo.import_collections(src)


def test_duplicate_series_files() -> None:
    repo = Repo(pod=MemPOD())
    repo.create_collection(TEMP, "temp").series("a").write(
        {"timestamp": ["2020-01-01"], "value": [1.0]}
    )
    dest = MemPOD()
    repo.export_collections(dest, file_type="csv")
    repo.export_collections(dest, file_type="parquet")
    with pytest.raises(ValueError, match=r"a\.parquet: series 'a' is also in a\.csv"):
        Repo(pod=MemPOD()).import_collections(dest)


def test_import_schema_mismatch() -> None:
    src = MemPOD()
    write_export(src, {})
    repo = Repo(pod=MemPOD())
    repo.create_collection(Schema(timestamp="timestamp*", value="int"), "temp")
    with pytest.raises(SchemaError, match="differs"):
        repo.import_collections(src)


def test_import_missing_schema_file() -> None:
    src = MemPOD()
    src.write("temp/a.csv", "timestamp,value\r\n", mode="w")
    with pytest.raises(SchemaError, match="_schema.json is missing"):
        Repo(pod=MemPOD()).import_collections(src)


def test_import_invalid_schema_file() -> None:
    src = MemPOD()
    src.write("temp/_schema.json", "{not json", mode="w")
    with pytest.raises(SchemaError, match="invalid JSON"):
        Repo(pod=MemPOD()).import_collections(src)


def test_import_unknown_collection() -> None:
    src = MemPOD()
    write_export(src, {})
    with pytest.raises(CollectionNotFoundError, match="'other'"):
        Repo(pod=MemPOD()).import_collections(src, collections=["temp", "other"])


def test_import_missing_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Nothing to import"):
        Repo(pod=MemPOD()).import_collections(f"file://{tmp_path}/nowhere")


def test_collections_argument_must_be_a_list() -> None:
    repo = Repo(pod=MemPOD())
    with pytest.raises(TypeError, match="list of labels"):
        repo.export_collections(MemPOD(), collections="temp")
    with pytest.raises(TypeError, match="list of labels"):
        repo.import_collections(MemPOD(), collections="temp")
