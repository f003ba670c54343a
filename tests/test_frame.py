import sys
from datetime import date, datetime

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from limits import COMMAND_SECONDS

from lakota.errors import ExpressionError, FrameError
from lakota.frame import Frame
from lakota.schema import Schema
from lakota.sexpr import AST

SCHEMA = Schema(category="str*", ts="timestamp*", value="float")
DATA = {
    "category": ["a", "a", "b", "b", "c"],
    "ts": ["2020-01-01", "2020-02-03", "2020-01-05", "2020-01-06", "2020-03-01"],
    "value": [1, 2, 3, 4, 5],
}


@pytest.fixture
def frm():
    return Frame(SCHEMA, DATA)


def dt(*values):
    return numpy.array(values, dtype="M8[s]")


# --- construction --------------------------------------------------------------------


def test_init_casts_columns(frm):
    assert list(frm) == ["category", "ts", "value"]
    assert frm["value"].dtype == numpy.float64
    assert frm["ts"].dtype == numpy.dtype("M8[s]")
    assert frm["category"].tolist() == ["a", "a", "b", "b", "c"]
    assert len(frm) == 5
    assert not frm.empty
    assert frm.env == {}


def test_init_none_gives_empty_columns():
    frm = Frame(SCHEMA)
    assert list(frm) == ["category", "ts", "value"]
    assert len(frm) == 0 and frm.empty
    assert frm["ts"].dtype == numpy.dtype("M8[s]")


def test_init_keeps_only_schema_columns():
    frm = Frame(SCHEMA, {"value": [1.5], "other": [1]})
    assert list(frm) == ["value"]


def test_init_from_frame_and_arrays(frm):
    other = Frame(SCHEMA, frm)
    assert other == frm
    arrays = {k: numpy.asarray(v) for k, v in DATA.items()}
    assert Frame(SCHEMA, arrays) == frm


def test_init_from_pandas(frm):
    pandas = pytest.importorskip("pandas")
    df = pandas.DataFrame(DATA)
    df["ts"] = pandas.to_datetime(df["ts"])
    assert Frame(SCHEMA, df) == frm


def test_length_mismatch():
    with pytest.raises(FrameError, match="Length mismatch"):
        Frame(SCHEMA, {"category": ["a", "b"], "value": [1.0]})


def test_module_does_not_import_pandas():
    import subprocess

    code = "import sys, lakota.frame; print('pandas' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=COMMAND_SECONDS,
    )
    assert out.stdout.strip() == "False"


def test_from_records():
    records = [{"category": "x", "value": 1}, {"category": "y", "value": 2}]
    frm = Frame.from_records(SCHEMA, records)
    assert frm["category"].tolist() == ["x", "y"]
    assert frm["value"].tolist() == [1.0, 2.0]
    assert list(frm) == ["category", "value"]
    empty = Frame.from_records(SCHEMA, [])
    assert list(empty) == [] and len(empty) == 0
    with pytest.raises(FrameError):
        Frame.from_records(SCHEMA, [{"value": 1}, {"other": 2}])


# --- segments ------------------------------------------------------------------------


class FakeSegment:
    clipped = False

    def __init__(self, **columns):
        self.columns = {k: numpy.asarray(v) for k, v in columns.items()}
        self.calls = []

    def load(self, name):
        return self.columns[name]

    def __len__(self):
        return len(next(iter(self.columns.values())))

    def read(self, name, start_pos=None, stop_pos=None):
        self.calls.append((name, start_pos, stop_pos))
        return self.columns[name][start_pos:stop_pos]

    def read_into(self, name, start, stop, out):
        self.calls.append((name, start, stop))
        out[...] = self.columns[name][start:stop]


def segments():
    schema = Schema(x="int*", y="float")
    return schema, [
        FakeSegment(x=[0, 1, 2], y=[0.0, 0.1, 0.2]),
        FakeSegment(x=[3, 4], y=[0.3, 0.4]),
        FakeSegment(x=[5, 6, 7, 8], y=[0.5, 0.6, 0.7, 0.8]),
    ]


@pytest.mark.parametrize(
    "limit, offset, expected",
    [
        (None, None, list(range(9))),
        (None, 3, [3, 4, 5, 6, 7, 8]),
        (None, 4, [4, 5, 6, 7, 8]),
        (4, 1, [1, 2, 3, 4]),
        (2, 5, [5, 6]),
        (0, 0, []),
        (100, 0, list(range(9))),
        (None, 9, []),
        (None, 50, []),
        (1, 8, [8]),
    ],
)
def test_from_segments_limit_offset(limit, offset, expected):
    schema, sgms = segments()
    frm = Frame.from_segments(schema, sgms, limit=limit, offset=offset)
    assert frm["x"].tolist() == expected
    assert frm["y"].tolist() == pytest.approx([v / 10 for v in expected])
    assert list(frm) == ["x", "y"]


def test_from_segments_reads_only_what_is_needed():
    schema, sgms = segments()
    Frame.from_segments(schema, sgms, limit=2, offset=4, select="x")
    assert sgms[0].calls == []
    assert sgms[1].calls == [("x", 1, 2)]
    assert sgms[2].calls == [("x", 0, 1)]


def test_from_segments_select():
    schema, sgms = segments()
    frm = Frame.from_segments(schema, sgms, select=["y"])
    assert list(frm) == ["y"]
    assert len(frm) == 9
    empty = Frame.from_segments(schema, [], select="y")
    assert list(empty) == ["y"] and len(empty) == 0
    assert empty["y"].dtype == numpy.float64
    assert list(Frame.from_segments(schema, [])) == ["x", "y"]


def test_from_segments_negative_offset():
    schema, sgms = segments()
    with pytest.raises(ValueError):
        Frame.from_segments(schema, sgms, offset=-1)


# --- concat --------------------------------------------------------------------------


def test_concat(frm):
    assert Frame.concat() is None
    assert Frame.concat(frm) is frm
    both = Frame.concat(frm, frm.slice(0, 2))
    assert len(both) == 7
    assert both["value"].tolist() == [1, 2, 3, 4, 5, 1, 2]
    assert Frame.concat([frm, frm]) == Frame.concat(frm, frm)


def test_concat_schema_mismatch(frm):
    other = Frame(Schema(value="float*"), {"value": [1.0]})
    with pytest.raises(ValueError, match="different schema"):
        Frame.concat(frm, other)


def test_concat_columns_of_first_frame(frm):
    out = Frame.concat(frm.select(["value"]), frm)
    assert list(out) == ["value"]
    assert len(out) == 10


# --- export --------------------------------------------------------------------------


def test_df(frm):
    pytest.importorskip("pandas")
    df = frm[["value", "category"]].df()
    assert list(df.columns) == ["category", "value"]
    assert df["value"].tolist() == [1, 2, 3, 4, 5]


def test_values_and_records(frm):
    vals = frm.values()
    assert [v.dtype.kind for v in vals] == ["U", "M", "f"]
    mapped = frm.values("default")
    assert mapped[1][0] == datetime(2020, 1, 1)
    epoch = frm.values("epoch")
    assert epoch[1][0] == 1577836800
    recs = list(frm.records())
    assert recs[0] == {"category": "a", "ts": datetime(2020, 1, 1), "value": 1.0}
    assert len(recs) == 5
    raw = next(frm.records(map_dtype=None))
    assert raw["ts"] == numpy.datetime64("2020-01-01")


# --- sizes, bounds -------------------------------------------------------------------


def test_start_stop(frm):
    assert frm.start() == ("a", numpy.datetime64("2020-01-01"))
    assert frm.stop() == ("c", numpy.datetime64("2020-03-01"))
    with pytest.raises(IndexError):
        Frame(SCHEMA).start()
    with pytest.raises(IndexError):
        Frame(SCHEMA).stop()


def test_len_without_columns():
    frm = Frame(SCHEMA, {})
    assert len(frm) == 0 and frm.empty


# --- sorting -------------------------------------------------------------------------


def test_is_sorted(frm):
    assert frm.is_sorted()
    assert Frame(SCHEMA).is_sorted()
    unsorted = Frame(SCHEMA, {"category": ["b", "a"], "ts": [1, 2], "value": [0, 0]})
    assert not unsorted.is_sorted()
    tie = Frame(SCHEMA, {"category": ["a", "a"], "ts": [2, 1], "value": [0, 0]})
    assert not tie.is_sorted()
    dup = Frame(SCHEMA, {"category": ["a", "a"], "ts": [1, 1], "value": [9, 0]})
    assert dup.is_sorted()


def test_argsort_and_sorted():
    frm = Frame(
        SCHEMA,
        {"category": ["b", "a", "b", "a"], "ts": [4, 3, 1, 3], "value": [0, 1, 2, 3]},
    )
    assert frm.argsort().tolist() == [1, 3, 2, 0]
    out = frm.sorted()
    assert out["value"].tolist() == [1, 3, 2, 0]  # stable on ties
    assert out.is_sorted()
    assert frm.argsort("value").tolist() == [0, 1, 2, 3]
    assert frm.sorted("ts")["value"].tolist() == [2, 1, 3, 0]


def test_argsort_object_column():
    schema = Schema(k="O*", v="int")
    frm = Frame(schema, {"k": ["b", "a", "b"], "v": [3, 1, 2]})
    assert frm.argsort("k", "v").tolist() == [1, 2, 0]


@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from("abc")), max_size=30))
def test_is_sorted_matches_python(rows):
    schema = Schema(x="int*", y="str*")
    frm = Frame(schema, {"x": [r[0] for r in rows], "y": [r[1] for r in rows]})
    assert frm.is_sorted() == (rows == sorted(rows))
    srt = frm.sorted()
    assert list(zip(srt["x"].tolist(), srt["y"].tolist())) == sorted(rows)


# --- mask, eval ----------------------------------------------------------------------


def test_mask_bool_int_expr(frm):
    sel = frm.mask(numpy.array([True, False, True, False, False]))
    assert sel["value"].tolist() == [1, 3]
    assert frm.mask(numpy.array([4, 0]))["value"].tolist() == [5, 1]
    assert frm.mask("(> self.value 3)")["value"].tolist() == [4, 5]
    assert frm.mask("(= (% self.value 2) 0)")["value"].tolist() == [2, 4]
    assert frm.mask("(isin self.category (list 'a' 'c'))")["value"].tolist() == [1, 2, 5]
    assert frm.mask("(and (> self.value 2) (< self.value 4))")["value"].tolist() == [3]
    assert frm.mask("(< 2 value 5)")["value"].tolist() == [3, 4]
    assert frm.mask("(~ (> self.value 1))")["value"].tolist() == [1]
    assert frm.mask(AST.parse("(> self.value 4)"))["value"].tolist() == [5]
    assert len(frm.mask("true")) == 5
    assert len(frm.mask("false")) == 0
    assert list(frm.mask("false")) == list(frm)


def test_mask_with_env(frm):
    assert frm.mask("(> self.value limit)", env={"limit": 4})["value"].tolist() == [5]
    frm.env["limit"] = 3
    assert frm.mask("(> self.value limit)")["value"].tolist() == [4, 5]


def test_mask_errors(frm):
    with pytest.raises(FrameError, match="Length mismatch"):
        frm.mask(numpy.array([True]))
    with pytest.raises(FrameError):
        frm.mask(numpy.array([0.5]))


def test_eval(frm):
    assert frm.eval("(sum self.value)") == 15
    assert frm.eval("(+ value 1)").tolist() == [2, 3, 4, 5, 6]
    assert frm.eval("(floor self.ts 'M')").dtype == numpy.dtype("M8[M]")
    assert frm.eval("(pretty_nb 1500)") == "1.5k"
    local = frm.eval("(as-tz self.ts 'Europe/Brussels')")
    assert local[0] == numpy.datetime64("2020-01-01T01:00:00")
    assert frm.eval("(+ x 1)", env={"x": 1}) == 2
    with pytest.raises(ExpressionError, match="self.nope"):
        frm.eval("self.nope")


# --- index / slicing -----------------------------------------------------------------


def test_index(frm):
    assert frm.index(None) is None
    assert frm.index(()) is None
    assert frm.index(("b",)) == 2
    assert frm.index(("b",), right=True) == 4
    assert frm.index("b") == 2
    assert frm.index(("b", numpy.datetime64("2020-01-06"))) == 3
    assert frm.index(("b", numpy.datetime64("2020-01-06")), right=True) == 4
    assert frm.index(("b", "2020-01-06")) == 3
    assert frm.index(("b", datetime(2020, 1, 6))) == 3
    assert frm.index(("b", date(2020, 1, 6)), right=True) == 4
    assert frm.index(("a0",)) == 2
    assert frm.index(("0",)) == 0
    assert frm.index(("z",)) == 5
    with pytest.raises(FrameError):
        frm.index(("a", numpy.datetime64("2020-01-01"), 1.0))


def test_slice_index(frm):
    start = ("a", numpy.datetime64("2020-02-03"))
    stop = ("b", numpy.datetime64("2020-01-06"))
    assert frm.slice_index(start, stop) == (1, 3)
    assert frm.slice_index(start, stop, closed="b") == (1, 4)
    assert frm.slice_index(start, stop, closed="r") == (2, 4)
    assert frm.slice_index(start, stop, closed="n") == (2, 3)
    assert frm.slice_index(None, stop) == (None, 3)
    assert frm.slice_index(start) == (1, None)


def test_slice_is_a_view(frm):
    part = frm.slice(1, 3)
    assert part["value"].tolist() == [2, 3]
    assert numpy.shares_memory(part["value"], frm["value"])
    assert frm.slice(-2)["value"].tolist() == [4, 5]
    assert frm.slice(None, -4)["value"].tolist() == [1]


def test_islice(frm):
    assert frm.islice(("b",), ("c",))["value"].tolist() == [3, 4]
    assert frm.islice(("b",), ("c",), closed="b")["value"].tolist() == [3, 4, 5]
    assert frm.islice(("a",), ("a",), closed="b")["value"].tolist() == [1, 2]
    assert frm.islice(None, ("b",))["value"].tolist() == [1, 2]


def test_getitem_slice_casts_bounds(frm):
    assert frm["b":]["value"].tolist() == [3, 4, 5]
    assert frm[:"b"]["value"].tolist() == [1, 2]
    assert frm["a":"c"]["value"].tolist() == [1, 2, 3, 4]
    assert frm[("b", "2020-01-06"):]["value"].tolist() == [4, 5]
    assert frm[:]["value"].tolist() == [1, 2, 3, 4, 5]
    schema = Schema(x="int*", y="float")
    ints = Frame(schema, {"x": [-1, 0, 1, 2], "y": [0, 1, 2, 3]})
    assert ints[0:2]["y"].tolist() == [1, 2]
    assert ints[:0]["y"].tolist() == [0]
    with pytest.raises(ValueError):
        ints[0:2:1]


def test_getitem_column_list_mask(frm):
    assert frm["value"].tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(KeyError):
        frm["nope"]
    sub = frm[["value", "category"]]
    assert isinstance(sub, Frame)
    assert list(sub) == ["value", "category"]
    assert sub.schema == frm.schema
    with pytest.raises(KeyError):
        frm[["value", "nope"]]
    assert frm[frm["value"] > 3]["value"].tolist() == [4, 5]
    assert frm[[True, False, False, False, True]]["value"].tolist() == [1, 5]
    assert frm[[0, 2]]["value"].tolist() == [1, 3]
    with pytest.raises(TypeError):
        frm[1.5]


@settings(max_examples=200)
@given(
    rows=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)), max_size=40),
    start=st.one_of(st.none(), st.lists(st.integers(-1, 5), min_size=1, max_size=3)),
    stop=st.one_of(st.none(), st.lists(st.integers(-1, 5), min_size=1, max_size=3)),
    closed=st.sampled_from("lrbn"),
)
def test_slice_index_matches_brute_force(rows, start, stop, closed):
    rows = sorted(rows)
    schema = Schema(a="int*", b="int*", c="int*", pos="int")
    frm = Frame(
        schema,
        {
            "a": [r[0] for r in rows],
            "b": [r[1] for r in rows],
            "c": [r[2] for r in rows],
            "pos": list(range(len(rows))),
        },
    )
    start = tuple(start) if start else None
    stop = tuple(stop) if stop else None

    def keep(row):
        if start is not None:
            prefix = row[: len(start)]
            if prefix < start or (prefix == start and closed in "rn"):
                return False
        if stop is not None:
            prefix = row[: len(stop)]
            if prefix > stop or (prefix == stop and closed in "ln"):
                return False
        return True

    expected = [i for i, row in enumerate(rows) if keep(row)]
    assert frm.islice(start, stop, closed)["pos"].tolist() == expected


# --- select / drop / rename ----------------------------------------------------------


def test_select(frm):
    assert frm.select(None) is frm
    assert frm.select([]) is frm
    assert list(frm.select("value")) == ["value"]
    assert list(frm.select("val")) == []  # no substring matching
    assert list(frm.select(["value", "category"])) == ["category", "value"]
    assert list(frm.select(["value", "nope"])) == ["value"]


def test_drop(frm):
    assert list(frm.drop("ts")) == ["category", "value"]
    assert list(frm.drop("ts", "value")) == ["category"]
    assert list(frm.drop(["ts", "value"])) == ["category"]
    assert list(frm.drop()) == ["category", "ts", "value"]
    assert list(frm) == ["category", "ts", "value"]  # unchanged


def test_rename(frm):
    out = frm.rename({"value": "v", "category": "cat"})
    assert list(out) == ["cat", "ts", "v"]
    assert out["v"].tolist() == [1, 2, 3, 4, 5]
    assert out.schema.idx == ["cat", "ts"]
    assert list(frm) == ["category", "ts", "value"]
    with pytest.raises(KeyError):
        frm.rename({"nope": "x"})
    with pytest.raises(FrameError):
        frm.rename({"value": "ts"})


# --- dict-like -----------------------------------------------------------------------


def test_dict_like(frm):
    assert "value" in frm and "nope" not in frm
    assert list(frm.keys()) == ["category", "ts", "value"]
    assert frm.get("nope") is None
    assert frm.get("nope", 1) == 1
    assert frm.get("value").tolist() == [1, 2, 3, 4, 5]
    sub = frm.select("value")
    assert "category" not in sub


def test_setitem(frm):
    frm["value"] = [5, 4, 3, 2, 1]
    assert frm["value"].dtype == numpy.float64
    assert frm["value"].tolist() == [5, 4, 3, 2, 1]
    frm["value"] = 7
    assert frm["value"].tolist() == [7.0] * 5
    with pytest.raises(FrameError, match="Length mismatch"):
        frm["value"] = [1, 2]
    with pytest.raises(KeyError):
        frm["nope"] = [1, 2, 3, 4, 5]
    sub = frm.select("category")
    sub["value"] = [1, 1, 1, 1, 1]
    assert list(sub) == ["category", "value"]


def test_eq(frm):
    assert frm == Frame(SCHEMA, DATA)
    assert frm == DATA
    assert not frm == {**DATA, "value": [1, 2, 3, 4, 6]}
    assert frm != frm.slice(1)
    assert frm != frm.select("value")
    assert not frm == {"value": [1, 2]}
    assert (frm == 5) is False
    nan = Frame(Schema(x="int*", y="float"), {"x": [1], "y": [numpy.nan]})
    assert nan == {"x": [1], "y": [numpy.nan]}


# --- reduce --------------------------------------------------------------------------


def test_reduce_group_sum(frm):
    out = frm.reduce(category="category", total="(sum self.value)")
    assert out["category"].tolist() == ["a", "b", "c"]
    assert out["total"].tolist() == [3.0, 7.0, 5.0]
    assert out.schema.idx == ["category"]
    assert list(out) == ["category", "total"]


def test_reduce_group_by_expression(frm):
    out = frm.reduce(ts="(floor self.ts 'M')", mx="(max self.value)")
    assert out["ts"].astype(str).tolist() == ["2020-01", "2020-02", "2020-03"]
    assert out["mx"].tolist() == [4.0, 2.0, 5.0]


def test_reduce_all_aggregates(frm):
    out = frm.reduce(
        "category",
        mn="(min self.value)",
        mx="(max self.value)",
        s="(sum self.value)",
        m="(mean self.value)",
        a="(average self.value)",
        c="(count self.value)",
        n="(len self.value)",
        f="(first self.ts)",
        lst="(last self.value)",
    )
    assert list(out) == ["category", "mn", "mx", "s", "m", "a", "c", "n", "f", "lst"]
    assert out["mn"].tolist() == [1, 3, 5]
    assert out["mx"].tolist() == [2, 4, 5]
    assert out["s"].tolist() == [3, 7, 5]
    assert out["m"].tolist() == [1.5, 3.5, 5]
    assert out["a"].tolist() == [1.5, 3.5, 5]
    assert out["c"].tolist() == [2, 2, 1]
    assert out["n"].tolist() == [2, 2, 1]
    assert out["f"].tolist() == dt("2020-01-01", "2020-01-05", "2020-03-01").tolist()
    assert out["lst"].tolist() == [2, 4, 5]


def test_reduce_multiple_keys():
    schema = Schema(a="str*", b="int*", v="float")
    frm = Frame(
        schema,
        {"a": ["x", "y", "x", "x", "y"], "b": [1, 1, 2, 1, 1], "v": [1, 2, 3, 4, 5]},
    )
    out = frm.reduce("a", "b", total="(sum self.v)")
    assert out["a"].tolist() == ["x", "x", "y"]
    assert out["b"].tolist() == [1, 2, 1]
    assert out["total"].tolist() == [5.0, 3.0, 7.0]
    assert out.schema.idx == ["a", "b"]


def test_reduce_without_keys(frm):
    out = frm.reduce(total="(sum self.value)", n="(count self.value)", q="(quantile self.value)")
    assert len(out) == 1
    assert out["total"].tolist() == [15.0]
    assert out["n"].tolist() == [5]
    assert out["q"].tolist() == [3.0]
    assert out.schema.idx == ["total", "n", "q"]
    first = frm.reduce(f="(first self.value)", lst="(last self.value)")
    assert first["f"].tolist() == [1.0] and first["lst"].tolist() == [5.0]


def test_reduce_elementwise(frm):
    out = frm.reduce("category", double="(* self.value 2)", one="value")
    assert out["double"].tolist() == [2, 4, 6, 8, 10]
    assert out["category"].tolist() == DATA["category"]
    assert out["one"].tolist() == DATA["value"]
    assert out.schema.idx == ["category", "double", "one"]
    with pytest.raises(KeyError):
        frm.reduce("nope")
    with pytest.raises(KeyError):
        frm.reduce(x="1")  # not an s-expression: a column name


def test_reduce_elementwise_broadcasts_scalars(frm):
    out = frm.reduce(k="(+ 1 2)", v="value")
    assert out["k"].tolist() == [3] * 5


def test_reduce_alias(frm):
    out = frm.reduce("category", "(as (sum self.value) 'total')")
    assert list(out) == ["category", "total"]
    assert out["total"].tolist() == [3.0, 7.0, 5.0]
    out = frm.reduce("(as self.category 'cat')", "(as (max self.value) 'top')")
    assert list(out) == ["cat", "top"]
    assert out.schema.idx == ["cat"]


def test_reduce_deeply_nested_aggregate(frm):
    out = frm.reduce("category", x="(+ 1 (* 2 (- (max self.value) 1)))")
    assert out["x"].tolist() == [3.0, 7.0, 9.0]


def test_reduce_on_empty_frame():
    out = Frame(SCHEMA).reduce("category", total="(sum self.value)")
    assert len(out) == 0
    assert list(out) == ["category", "total"]


def test_reduce_quantile_with_keys_fails(frm):
    with pytest.raises(ExpressionError, match="quantile"):
        frm.reduce("category", q="(quantile self.value)")


def test_reduce_needs_columns(frm):
    with pytest.raises(ExpressionError):
        frm.reduce()


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 2), st.integers(-9, 9))))
def test_reduce_matches_brute_force(rows):
    schema = Schema(k="str*", j="int*", v="int")
    frm = Frame(schema, {n: [r[i] for r in rows] for i, n in enumerate("kjv")})
    groups = {}
    for k, j, v in rows:
        groups.setdefault((k, j), []).append(v)
    keys = sorted(groups)
    for data in (frm, frm.sorted()):  # unique-based and presorted code paths
        out = data.reduce(
            "k", "j", s="(sum self.v)", c="(count self.v)", mx="(max self.v)", f="(first self.v)"
        )
        expected = {}
        for k, j, v in zip(data["k"].tolist(), data["j"].tolist(), data["v"].tolist()):
            expected.setdefault((k, j), v)
        assert list(zip(out["k"].tolist(), out["j"].tolist())) == keys
        assert out["s"].tolist() == [sum(groups[k]) for k in keys]
        assert out["c"].tolist() == [len(groups[k]) for k in keys]
        assert out["mx"].tolist() == [max(groups[k]) for k in keys]
        assert out["f"].tolist() == [expected[k] for k in keys]


def test_reduce_presorted_multiple_keys():
    schema = Schema(a="str*", b="int*", v="float")
    frm = Frame(
        schema,
        {"a": ["x", "x", "x", "y", "y"], "b": [1, 1, 2, 1, 1], "v": [1, 2, 3, 4, 5]},
    )
    out = frm.reduce("a", "b", f="(first self.v)", lst="(last self.v)", n="(len self.v)")
    assert out["a"].tolist() == ["x", "x", "y"]
    assert out["b"].tolist() == [1, 2, 1]
    assert out["f"].tolist() == [1.0, 3.0, 4.0]
    assert out["lst"].tolist() == [2.0, 3.0, 5.0]
    assert out["n"].tolist() == [2, 1, 2]


def test_repr(frm):
    assert "5 rows" in repr(frm)


def test_copy_owns_its_columns():
    source = {"x": numpy.arange(3), "y": numpy.array([0.5, 1.5, 2.5])}
    frame = Frame(Schema(x="int*", y="float"), source)
    copied = frame.copy()
    source["y"][:] = 0
    assert copied["y"].tolist() == [0.5, 1.5, 2.5]
    assert copied.schema == frame.schema and list(copied) == ["x", "y"]
