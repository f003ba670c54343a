"""Arrow, Polars and pandas in and out of frames and series, and the optional extras."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakota import Frame, Repo, Schema
from lakota.errors import FrameError
from lakota.interop import require

pandas = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")

DOCS = Path(__file__).resolve().parent.parent / "docs" / "datastack.md"
MIXED = Schema(ts="timestamp*", value="float", count="int", name="str", flag="bool", meta="O")
UNITS = ["s", "ms", "us", "ns"]
ZONES = [None, "UTC", "Europe/Paris", "Asia/Tokyo", "America/New_York"]
# UTC instants in ns: whole seconds, and values with a digit at every sub-second unit
WHOLE = numpy.array([0, 1_600_000_000, 1_700_000_000], dtype="i8") * 10**9
FINE = numpy.array([-1_500_000_000_987_654_321, 0, 1_600_000_000_123_456_789], dtype="i8")


def mixed_frame() -> Frame:
    return Frame(
        MIXED,
        {
            "ts": ["2020-01-01", "2020-01-02", "2020-01-03"],
            "value": [1.5, numpy.nan, -2.0],
            "count": [1, 2, 3],
            "name": ["a", "bé", ""],
            "flag": [True, False, True],
            "meta": [{"k": 1}, {"k": 2}, {"k": 3}],
        },
    )


@pytest.fixture
def series():
    clct = Repo("memory://").create_collection(MIXED, "clct")
    srs = clct / "s"
    srs.write(mixed_frame())
    srs.write({**mixed_frame().slice(2, 3).columns, "value": [9.0]})
    return srs


# --- Arrow and Polars out ------------------------------------------------------------------


def test_frame_arrow_types_and_values():
    frame = mixed_frame()
    table = frame.arrow()
    assert table.column_names == list(MIXED)
    assert table.schema.types == [
        pa.timestamp("s"),
        pa.float64(),
        pa.int64(),
        pa.string(),
        pa.bool_(),
        pa.struct([("k", pa.int64())]),
    ]
    assert table.column("name").to_pylist() == ["a", "bé", ""]
    assert table.column("meta").to_pylist() == [{"k": 1}, {"k": 2}, {"k": 3}]
    assert numpy.array_equal(table.column("ts").to_numpy(), frame["ts"])
    assert numpy.array_equal(table.column("value").to_numpy(), frame["value"], equal_nan=True)


def test_frame_polars_types_and_values():
    frame = mixed_frame()
    df = frame.polars()
    assert df.columns == list(MIXED)
    assert df.dtypes == [pl.Datetime("ms"), pl.Float64, pl.Int64, pl.String, pl.Boolean, pl.Object]
    assert df["meta"].to_list() == [{"k": 1}, {"k": 2}, {"k": 3}]
    assert df["name"].to_list() == ["a", "bé", ""]
    assert numpy.array_equal(df["ts"].to_numpy(), frame["ts"])


@pytest.mark.parametrize("dt", ["f8", "i4", "u8", "M8[ms]", "M8[us]", "M8[ns]", "m8[ns]"])
def test_numbers_and_times_are_zero_copy(dt):
    schema = Schema(ts="int*", col=dt)
    frame = Frame(schema, {"ts": numpy.arange(50), "col": numpy.arange(50).astype(dt)})
    arrow = frame.arrow().column("col").to_numpy()
    assert numpy.shares_memory(arrow, frame["col"])
    polars = frame.polars()["col"].to_numpy()
    assert numpy.shares_memory(polars, frame["col"])
    assert numpy.array_equal(polars, frame["col"])


@pytest.mark.parametrize(
    "dt, arrow_type, polars_type",
    [
        ("M8[s]", pa.timestamp("s"), pl.Datetime("ms")),
        ("M8[m]", pa.timestamp("s"), pl.Datetime("ms")),
        ("M8[h]", pa.timestamp("s"), pl.Datetime("ms")),
        ("M8[D]", pa.date32(), pl.Date),
        ("m8[s]", pa.duration("s"), pl.Duration("ms")),
        ("m8[D]", pa.duration("s"), pl.Duration("ms")),
        ("M8[ps]", pa.timestamp("ns"), pl.Datetime("ns")),
    ],
)
def test_other_time_units_convert_losslessly(dt, arrow_type, polars_type):
    values = numpy.array([0, 1000, 20_000_000], dtype="i8").astype(dt)
    frame = Frame(Schema(ts="int*", col=dt), {"ts": [1, 2, 3], "col": values})
    arrow = frame.arrow().column("col")
    assert arrow.type == arrow_type
    assert (arrow.to_numpy() == values).all()
    polars = frame.polars()["col"]
    assert polars.dtype == polars_type
    assert (polars.to_numpy() == values).all()


def test_finer_than_ns_values_that_do_not_fit_raise():
    values = numpy.array([1, 2], dtype="M8[ps]")
    frame = Frame(Schema(ts="int*", col="M8[ps]"), {"ts": [1, 2], "col": values})
    with pytest.raises(ValueError, match="'col'.*do not fit in unit 'ns'"):
        frame.arrow()
    with pytest.raises(ValueError, match="'col'.*do not fit in unit 'ns'"):
        frame.polars()


def test_seconds_beyond_the_millisecond_range_raise_for_polars():
    values = numpy.array([2**62], dtype="M8[s]")
    frame = Frame(Schema(ts="int*", col="M8[s]"), {"ts": [1], "col": values})
    assert frame.arrow().column("col").to_numpy()[0] == values[0]
    with pytest.raises(ValueError, match="'col'.*do not fit in unit 'ms'"):
        frame.polars()


def test_nat_becomes_null():
    frame = Frame(Schema(ts="int*", t="M8[ns]"), {"ts": [1, 2], "t": ["2020-01-01", "NaT"]})
    assert frame.arrow().column("t").to_pylist()[1] is None
    assert frame.polars()["t"].to_list()[1] is None
    assert frame.polars()["t"].to_list()[0].year == 2020


def test_objects_without_a_common_arrow_type_raise_naming_the_column():
    frame = Frame(Schema(ts="int*", meta="O"), {"ts": [1, 2], "meta": [{"a": 1}, [1, 2]]})
    with pytest.raises(TypeError, match="Column 'meta'.*select="):
        frame.arrow()
    assert frame.polars()["meta"].to_list() == [{"a": 1}, [1, 2]]
    assert frame.select("ts").arrow().column_names == ["ts"]


def test_complex_numbers_have_no_arrow_equivalent():
    frame = Frame(Schema(ts="int*", z="c16"), {"ts": [1], "z": [1 + 2j]})
    with pytest.raises(TypeError, match="Column 'z'"):
        frame.arrow()
    assert frame.polars()["z"].dtype == pl.Object
    assert frame.polars()["z"].to_list() == [1 + 2j]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"start": "2020-01-02"},
        {"stop": "2020-01-03", "closed": "b"},
        {"start": "2020-01-01", "stop": "2020-01-03", "closed": "n"},
        {"select": ["value", "name"]},
        {"select": "count"},
        {"limit": 2, "offset": 1},
        {"before": "00000000000"},
    ],
)
def test_series_arrow_and_polars_filter_like_frame(series, kwargs):
    frame = series.frame(**kwargs)
    table = series.arrow(**kwargs)
    df = series.polars(**kwargs)
    assert table.column_names == df.columns == list(frame.columns)
    assert table.num_rows == df.height == len(frame)
    for name in frame.columns:
        if name != "meta":
            assert numpy.array_equal(
                table.column(name).to_numpy(), frame[name], equal_nan=name == "value"
            )
            assert numpy.array_equal(df[name].to_numpy(), frame[name], equal_nan=name == "value")
    if "meta" in frame.columns:
        assert table.column("meta").to_pylist() == df["meta"].to_list() == frame["meta"].tolist()


def test_series_arrow_before_an_older_revision(series):
    rev = series.collection.changelog.log()[-1]
    assert series.arrow(before=rev.epoch).column("value").to_pylist()[2] == -2.0
    assert series.arrow().column("value").to_pylist()[2] == 9.0


ROUND_TRIP = Schema(ts="M8[ns]*", day="date", value="float", count="i4", name="str")
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
NS_RANGE = (-(2**62), 2**62)  # inside the ns range, away from NaT


@st.composite
def round_trip_frames(draw) -> Frame:
    size = draw(st.integers(0, 20))
    stamps = sorted(draw(st.lists(st.integers(*NS_RANGE), min_size=size, max_size=size)))
    return Frame(
        ROUND_TRIP,
        {
            "ts": numpy.array(stamps, dtype="M8[ns]"),
            "day": numpy.array(
                draw(st.lists(st.integers(-50_000, 50_000), min_size=size, max_size=size)),
                dtype="M8[D]",
            ),
            "value": draw(st.lists(st.floats(), min_size=size, max_size=size)),
            "count": draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=size, max_size=size)),
            "name": draw(st.lists(TEXT, min_size=size, max_size=size)),
        },
    )


@settings(max_examples=50, deadline=None)
@given(round_trip_frames())
def test_arrow_polars_and_pandas_round_trips(frame):
    for out in (frame.arrow(), frame.arrow().to_batches(), frame.polars(), frame.df()):
        if isinstance(out, list):  # record batches, one by one
            parts = [Frame(ROUND_TRIP, batch) for batch in out]
            assert (Frame.concat(parts) if parts else frame.slice(0, 0)) == frame
        else:
            assert Frame(ROUND_TRIP, out) == frame


# --- Arrow, Polars and pandas in -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["pandas", "arrow", "batch", "polars"])
def test_tables_round_trip_through_write(series, kind):
    frame = series.frame()
    source = {
        "pandas": frame.df,
        "arrow": frame.arrow,
        "batch": lambda: frame.arrow().to_batches()[0],
        "polars": frame.polars,
    }[kind]()
    copy = series.collection / f"copy-{kind}"
    copy.write(source)
    assert copy.frame() == frame
    assert Frame(MIXED, source) == frame


def local_times(kind: str, ns: numpy.ndarray, unit: str, zone: str | None):
    """The instants `ns` (UTC) at `unit`, as a pandas, Arrow or Polars column in `zone`."""
    values = ns.astype("M8[ns]").astype(f"M8[{unit}]")
    if kind == "pandas":
        col = pandas.Series(values)
        return col.dt.tz_localize("UTC").dt.tz_convert(zone) if zone else col
    if kind == "arrow":
        return pa.array(values.view("i8"), type=pa.timestamp(unit, tz=zone))
    col = pl.Series(values)
    return col.dt.replace_time_zone("UTC").dt.convert_time_zone(zone) if zone else col


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("kind", ["pandas", "arrow", "polars"])
def test_timestamps_across_units_and_zones(kind, zone):
    """Zones become naive UTC; a coarser column unit refuses values it would truncate."""
    source_units = UNITS[1:] if kind == "polars" else UNITS  # polars has no seconds
    for unit in source_units:
        for ns in (WHOLE, FINE):
            given = ns.astype("M8[ns]").astype(f"M8[{unit}]")
            for column_unit in UNITS:
                schema = Schema(ts=f"M8[{column_unit}]*")
                expected = given.astype(f"M8[{column_unit}]")
                for data in (
                    {"ts": local_times(kind, ns, unit, zone)},
                    _table(kind, {"ts": local_times(kind, ns, unit, zone)}),
                ):
                    if (expected.astype(given.dtype) == given).all():
                        frame = Frame(schema, data)
                        assert frame["ts"].dtype == numpy.dtype(f"M8[{column_unit}]")
                        assert (frame["ts"] == expected).all(), (unit, column_unit)
                    else:
                        with pytest.raises(FrameError, match="'ts'.*truncated"):
                            Frame(schema, data)


def _table(kind: str, columns: dict):
    if kind == "pandas":
        return pandas.DataFrame(columns)
    return pa.table(columns) if kind == "arrow" else pl.DataFrame(columns)


def test_timezone_instants_are_stored_in_utc(series):
    clct = series.collection
    paris = pandas.Series(pandas.to_datetime(["2021-06-01 02:00"])).dt.tz_localize("Europe/Paris")
    tokyo = pa.array([pandas.Timestamp("2021-06-01 09:00", tz="Asia/Tokyo")])
    for label, ts in (("paris", paris), ("tokyo", tokyo)):
        srs = clct / label
        srs.write({**mixed_frame().slice(0, 1).columns, "ts": ts})
        assert srs.frame()["ts"].tolist() == [numpy.datetime64("2021-06-01T00:00", "s").item()]


@pytest.mark.parametrize(
    "kind, dates",
    [
        ("arrow", lambda: pa.array([18262, 18263], type=pa.date32())),
        ("arrow", lambda: pa.array([18262 * 86_400_000, 18263 * 86_400_000], type=pa.date64())),
        ("polars", lambda: pl.Series([18262, 18263]).cast(pl.Date)),
        ("pandas", lambda: pandas.Series(pandas.to_datetime(["2020-01-01", "2020-01-02"]))),
    ],
)
def test_dates_into_day_and_second_columns(kind, dates):
    days = numpy.array(["2020-01-01", "2020-01-02"], dtype="M8[D]")
    for dt in ("M8[D]", "M8[s]"):
        frame = Frame(Schema(d=f"{dt}*"), _table(kind, {"d": dates()}))
        assert frame["d"].dtype == numpy.dtype(dt)
        assert (frame["d"] == days).all()


def test_dates_with_a_time_of_day_refuse_a_day_column():
    with pytest.raises(FrameError, match="'d'.*truncated"):
        Frame(Schema(d="date*"), pa.table({"d": pa.array([3_600], type=pa.timestamp("s"))}))


@pytest.mark.parametrize(
    "column, make",
    [
        ("value", lambda: pa.table({"ts": [1, 2], "value": pa.array([1.0, None])})),
        (
            "ts",
            lambda: pa.table({"ts": pa.chunked_array([[1], [None]], pa.int64()), "value": [1, 2]}),
        ),
        (
            "name",
            lambda: pa.table({"ts": [1, 2], "value": [1, 2], "name": ["a", None]}).to_batches()[0],
        ),
        ("value", lambda: pl.DataFrame({"ts": [1, 2], "value": [1.0, None]})),
        ("name", lambda: pl.DataFrame({"ts": [1, 2], "value": [1, 2], "name": [None, "b"]})),
        ("name", lambda: pandas.DataFrame({"ts": [1, 2], "value": [1, 2], "name": ["a", None]})),
        (
            "value",
            lambda: pandas.DataFrame({"ts": [1, 2], "value": pandas.array([1, None], "Int64")}),
        ),
        (
            "name",
            lambda: pandas.DataFrame(
                {"ts": [1, 2], "value": [1, 2], "name": pandas.Categorical(["a", None])}
            ),
        ),
        ("name", lambda: {"ts": [1, 2], "value": [1, 2], "name": pa.array(["a", None])}),
        ("name", lambda: {"ts": [1, 2], "value": [1, 2], "name": pl.Series([None, "b"])}),
        ("name", lambda: {"ts": [1, 2], "value": [1, 2], "name": pandas.Series(["a", None])}),
    ],
)
def test_nulls_raise_naming_the_column(column, make):
    with pytest.raises(FrameError, match=rf"Column '{column}' has 1 missing value"):
        Frame(Schema(ts="int*", value="float", name="str"), make())


def test_nan_and_nat_from_pandas_are_values():
    stamps = pandas.to_datetime(["2020-01-01", None])
    data = pandas.DataFrame(
        {"ts": [1, 2], "value": [1.0, numpy.nan], "t": stamps, "z": stamps.tz_localize("UTC")}
    )
    frame = Frame(Schema(ts="int*", value="float", t="M8[ns]", z="M8[s]"), data)
    assert numpy.isnan(frame["value"][1])
    assert numpy.isnat(frame["t"][1]) and numpy.isnat(frame["z"][1])
    assert frame["z"][0] == numpy.datetime64("2020-01-01", "s")


def test_nulls_in_columns_the_schema_ignores_are_fine():
    table = pa.table({"ts": [1, 2], "value": [1.0, 2.0], "other": [None, "x"]})
    assert Frame(Schema(ts="int*", value="float"), table)["value"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    "make",
    [
        lambda: pa.array(["x", "y", "x"]).dictionary_encode(),
        lambda: pa.chunked_array(
            [pa.array(["x", "y"]).dictionary_encode(), pa.array(["x"]).dictionary_encode()]
        ),
        lambda: pa.array(["x", "y", "x"], type=pa.large_string()),
        lambda: pa.array(["x", "y", "x"], type=pa.string_view()),
        lambda: pa.chunked_array([["x"], [], ["y", "x"]]),
        lambda: pl.Series(["x", "y", "x"], dtype=pl.Categorical),
        lambda: pl.Series(["x", "y", "x"], dtype=pl.Enum(["y", "x"])),
        lambda: pandas.Series(pandas.Categorical(["x", "y", "x"])),
        lambda: pandas.Series(["x", "y", "x"], dtype="string[pyarrow]"),
    ],
)
def test_string_encodings(make):
    column = make()
    expected = ["x", "y", "x"]
    schema = Schema(pos="int*", name="str")
    for data in (
        {"pos": [1, 2, 3], "name": column},
        _table(_kind(column), {"pos": [1, 2, 3], "name": column}),
    ):
        frame = Frame(schema, data)
        assert frame["name"].dtype.kind == "U"
        assert frame["name"].tolist() == expected


def _kind(column) -> str:
    return {"pandas": "pandas", "pyarrow": "arrow", "polars": "polars"}[
        type(column).__module__.partition(".")[0]
    ]


def test_chunked_numbers_and_empty_tables():
    schema = Schema(ts="int*", value="float")
    table = pa.table(
        {"ts": pa.chunked_array([[1, 2], [3]]), "value": pa.chunked_array([[1.0], [2, 3]])}
    )
    assert Frame(schema, table)["ts"].tolist() == [1, 2, 3]
    empty = pa.table({"ts": pa.chunked_array([], pa.int64()), "value": pa.array([], pa.float64())})
    assert len(Frame(schema, empty)) == 0
    assert len(Frame(schema, pl.DataFrame({"ts": [], "value": []}))) == 0


def test_numbers_are_read_without_copy():
    values = numpy.arange(100, dtype="f8")
    schema = Schema(ts="int*", value="float")
    frame = Frame(schema, pa.table({"ts": numpy.arange(100), "value": values}))
    assert numpy.shares_memory(frame["value"], values)
    frame = Frame(schema, {"ts": numpy.arange(100), "value": pl.Series(values)})
    assert numpy.array_equal(frame["value"], values)


def test_polars_nested_and_object_columns_go_to_object_columns():
    schema = Schema(ts="int*", meta="O")
    data = pl.DataFrame({"ts": [1, 2], "meta": [{"a": 1}, {"a": 2}]})
    assert Frame(schema, data)["meta"].tolist() == [{"a": 1}, {"a": 2}]
    data = pl.DataFrame({"ts": [1, 2], "meta": pl.Series([[1], {"b": 2}], dtype=pl.Object)})
    assert Frame(schema, data)["meta"].tolist() == [[1], {"b": 2}]


def test_pandas_named_index_levels_are_columns():
    df = pandas.DataFrame({"value": [1.0, 2.0]}, index=pandas.Index([3, 4], name="ts"))
    assert Frame(Schema(ts="int*", value="float"), df)["ts"].tolist() == [3, 4]


def test_duplicate_column_names_raise():
    table = pa.table([pa.array([1]), pa.array([2])], names=["ts", "ts"])
    with pytest.raises(FrameError, match="Duplicate column name.*'ts'"):
        Frame(Schema(ts="int*"), table)


def test_unknown_objects_raise_type_error():
    with pytest.raises(TypeError, match="Cannot read columns from a int"):
        Frame(Schema(ts="int*"), 42)


# --- optional extras -----------------------------------------------------------------------


def run_without(modules: tuple[str, ...], body: str) -> dict:
    """Run `body` in a fresh interpreter where `modules` cannot be imported; its JSON `out`."""
    script = "\n".join(
        [
            "import json, sys",
            f"for name in {modules!r}:",
            "    sys.modules[name] = None",
            body,
            f"assert all(sys.modules[name] is None for name in {modules!r})",
            "print(json.dumps(out))",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


WITHOUT_EXTRAS = """
from lakota import Repo, Schema
clct = Repo("memory://").create_collection(Schema(ts="int*", value="float"), "c")
(clct / "s").write({"ts": [1, 2], "value": [1.0, 2.0]})
frame = (clct / "s").frame()
calls = {
    "arrow": frame.arrow, "polars": frame.polars, "df": frame.df,
    "series.arrow": (clct / "s").arrow, "to_dask": clct.to_dask,
}
out = {"values": frame["value"].tolist()}
for name, call in calls.items():
    try:
        call()
        out[name] = "no error"
    except ImportError as exc:
        out[name] = str(exc)
"""


def test_lakota_works_without_the_optional_extras():
    out = run_without(("pandas", "pyarrow", "polars", "dask", "distributed"), WITHOUT_EXTRAS)
    assert out["values"] == [1.0, 2.0]
    assert "pip install 'lakota[arrow]'" in out["arrow"]
    assert "pip install 'lakota[arrow]'" in out["series.arrow"]
    assert "pip install 'lakota[polars]'" in out["polars"]
    assert "pip install 'lakota[pandas]'" in out["df"]
    assert "pip install 'lakota[dask]'" in out["to_dask"]


POLARS_ONLY = """
import polars
from lakota import Repo, Schema
srs = Repo("memory://").create_collection(Schema(ts="M8[us]*", name="str"), "c") / "s"
srs.write(polars.DataFrame({
    "ts": polars.Series([0, 1]).cast(polars.Datetime("us", "Asia/Tokyo")),
    "name": polars.Series(["a", "b"], dtype=polars.Categorical),
}))
df = srs.polars()
out = {"ts": df["ts"].cast(polars.Int64).to_list(), "name": df["name"].to_list()}
"""


def test_the_polars_extra_alone_reads_and_writes_polars():
    out = run_without(("pandas", "pyarrow"), POLARS_ONLY)
    assert out == {"ts": [0, 1], "name": ["a", "b"]}


def test_require_names_the_feature_and_the_extra():
    with pytest.raises(
        ImportError, match=r"Frame\.thing\(\) needs nosuchmodule.*lakota\[nosuchmodule\]"
    ):
        require("nosuchmodule", "Frame.thing()")
    assert require("numpy", "anything") is numpy


# --- docs/datastack.md ---------------------------------------------------------------------


def test_docs_examples_run(tmp_path, monkeypatch):
    """Every ```python block of docs/datastack.md, in order, in one namespace."""
    pytest.importorskip("dask.dataframe")
    blocks = re.findall(r"^```python\n(.*?)^```", DOCS.read_text(), flags=re.S | re.M)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), namespace)
