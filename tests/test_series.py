"""Series and KVSeries: writing, casting, reading, deleting, updating, upserts."""

from __future__ import annotations

import warnings
from datetime import date, datetime

import numpy
import pytest
from conftest import CORE_KINDS

from lakota import Frame, Schema
from lakota.errors import FrameError, SchemaError
from lakota.utils import digest_path

pytestmark = pytest.mark.pod_kinds(*CORE_KINDS)

TS = Schema(ts="timestamp*", value="float")
INT = Schema(ts="int*", value="float")
DAYS = ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04", "2020-01-05"]


def day(text: str) -> numpy.datetime64:
    return numpy.datetime64(text, "s")


@pytest.fixture
def series(repo):
    """A timestamp series holding five days with values 1 to 5."""
    srs = repo.create_collection(TS, "clct") / "s"
    srs.write({"ts": DAYS, "value": [1, 2, 3, 4, 5]})
    return srs


@pytest.fixture
def ints(repo):
    return repo.create_collection(INT, "ints") / "s"


def ts_list(frm) -> list[str]:
    return [str(v)[:10] for v in frm["ts"]]


def pairs(frm) -> list[tuple]:
    return list(zip(frm["ts"].tolist(), frm["value"].tolist()))


# --- input forms and casting --------------------------------------------------------------


@pytest.mark.pod_kinds()
def test_write_dict_numpy_pandas_and_frame_agree(repo):
    pandas = pytest.importorskip("pandas")
    clct = repo.create_collection(TS, "clct")
    data = {"ts": DAYS[:3], "value": [1, 2, 3]}
    (clct / "dict").write(data)
    (clct / "numpy").write(
        {"ts": numpy.array(DAYS[:3], dtype="M8[s]"), "value": numpy.array([1.0, 2, 3])}
    )
    (clct / "pandas").write(
        pandas.DataFrame({"ts": pandas.to_datetime(DAYS[:3]), "value": [1, 2, 3]})
    )
    (clct / "frame").write(Frame(TS, data))
    expected = (clct / "dict").frame()
    assert expected["ts"].dtype == numpy.dtype("M8[s]")
    assert expected["value"].dtype == numpy.float64
    for label in ("numpy", "pandas", "frame"):
        assert (clct / label).frame() == expected
    digests = {label: clct.commit().row(i).digest for i, label in enumerate(clct.ls())}
    assert len(set(digests.values())) == 1


def test_iso_strings_become_timestamps_and_ints_become_floats(ints, repo):
    ints.write({"ts": [1, 2], "value": [1, 2]})
    assert ints.frame()["value"].dtype == numpy.float64
    srs = repo.create_collection(TS, "clct") / "s"
    srs.write({"ts": ["2020-01-01T12:30:00", "2020-01-02"], "value": ["1.5", 2]})
    assert srs.frame()["ts"].tolist() == [datetime(2020, 1, 1, 12, 30), datetime(2020, 1, 2)]
    assert srs.frame()["value"].tolist() == [1.5, 2.0]


def test_float_with_fraction_into_int_column_raises(repo):
    srs = repo.create_collection(Schema(ts="int*", n="int"), "clct") / "s"
    with pytest.raises(FrameError, match="'n'.*precision"):
        srs.write({"ts": [1, 2], "n": [1.5, 2.0]})
    srs.write({"ts": [1, 2], "n": [1.0, 2.0]})
    assert srs.frame()["n"].tolist() == [1, 2]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e30])
def test_unrepresentable_floats_into_int_column_raise_without_warnings(repo, bad):
    srs = repo.create_collection(Schema(ts="int*", n="int"), "clct") / "s"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the refusal is the error, not a numpy warning
        with pytest.raises(FrameError, match="'n'.*precision"):
            srs.write({"ts": [1, 2], "n": [1.0, bad]})
    assert len(srs) == 0


@pytest.mark.parametrize(
    "values",
    [
        numpy.array(["2020-01-01T00:00:00.5"], dtype="M8[ns]"),
        ["2020-01-01T00:00:00.5"],
    ],
    ids=["M8[ns]", "iso-string"],
)
def test_sub_second_values_into_second_column_raise(series, values):
    with pytest.raises(FrameError, match="truncated"):
        series.write({"ts": values, "value": [1]})
    assert len(series) == 5


def test_finer_unit_without_loss_is_accepted(series):
    series.write({"ts": numpy.array(["2020-01-06"], dtype="M8[ns]"), "value": [6]})
    assert ts_list(series.frame())[-1] == "2020-01-06"


def test_datetime_digest_does_not_depend_on_input_unit(series):
    """SPEC §6 item 6: the same data given in another unit made a spurious revision."""
    pandas = pytest.importorskip("pandas")
    assert series.write({"ts": numpy.array(DAYS, dtype="M8[us]"), "value": [1, 2, 3, 4, 5]}) == []
    df = pandas.DataFrame({"ts": pandas.to_datetime(DAYS).as_unit("ns"), "value": range(1, 6)})
    assert series.write(df) == []
    assert len(series.changelog.log()) == 1


def test_writing_the_same_data_twice_is_a_no_op(series):
    log = series.changelog.log()
    assert series.write({"ts": DAYS, "value": [1, 2, 3, 4, 5]}) == []
    assert series.changelog.log() == log


SIX_TYPES = Schema(ts="timestamp*", d="date", f="float", i="int", s="str", o="O")
SIX_VALUES = {
    "ts": ["2020-01-01T10:00:00", "2020-01-02T00:00:01"],
    "d": ["2020-01-01", "2021-02-03"],
    "f": [1.0, -2.5],
    "i": [1, -(2**40)],
    "s": ["a", "bé ü"],
    "o": [{"a": [1, 2]}, None],
}


@pytest.mark.pod_kinds()
def test_all_six_column_types_round_trip(repo, reopen):
    (repo.create_collection(SIX_TYPES, "six") / "s").write(SIX_VALUES)
    frm = (reopen() / "six" / "s").frame()
    assert [frm[n].dtype.str for n in SIX_TYPES] == ["<M8[s]", "<M8[D]", "<f8", "<i8", "<U4", "|O"]
    assert list(frm.records()) == [
        {
            "ts": datetime(2020, 1, 1, 10),
            "d": date(2020, 1, 1),
            "f": 1.0,
            "i": 1,
            "s": "a",
            "o": {"a": [1, 2]},
        },
        {
            "ts": datetime(2020, 1, 2, 0, 0, 1),
            "d": date(2021, 2, 3),
            "f": -2.5,
            "i": -(2**40),
            "s": "bé ü",
            "o": None,
        },
    ]


@pytest.mark.parametrize(
    "definition, values",
    [
        ("timestamp", ["2020-01-01T00:00:00", "2020-01-01T00:00:01", "2020-06-01T00:00:00"]),
        ("date", ["1999-12-31", "2020-01-01", "2020-01-02"]),
        ("float", [-1.5, 0.0, 2.25]),
        ("int", [-3, 0, 2**50]),
        ("str", ["", "abc", "é"]),
    ],
)
def test_each_index_type(repo, reopen, definition, values):
    schema = Schema(key=f"{definition}*", value="float")
    srs = repo.create_collection(schema, "clct") / "s"
    srs.write({"key": values, "value": [1, 2, 3]})
    srs.write({"key": values[1:2], "value": [20]})
    srs = reopen() / "clct" / "s"
    assert srs.frame()["value"].tolist() == [1, 20, 3]
    assert srs.frame(start=values[1])["value"].tolist() == [20, 3]
    assert srs.frame(stop=values[1])["value"].tolist() == [1]
    assert srs.frame(start=values[1], stop=values[1], closed="b")["value"].tolist() == [20]
    srs.delete(values[0], values[1])
    assert srs.frame()["value"].tolist() == [3]


@pytest.mark.pod_kinds()
def test_large_columns_are_stored_in_files(repo, reopen):
    srs = repo.create_collection(INT, "ints") / "big"
    values = numpy.random.default_rng(0).random(2000)
    srs.write({"ts": numpy.arange(2000), "value": values})
    commit = srs.collection.commit()
    value_digest = commit.digest["value"][0]
    assert value_digest not in commit.embedded
    assert repo.pod.isfile(digest_path(value_digest))
    frm = (reopen() / "ints" / "big").frame(start=500, stop=1500)
    assert frm["ts"].tolist() == list(range(500, 1500))
    assert numpy.array_equal(frm["value"], values[500:1500])


def test_multi_column_index(repo):
    schema = Schema(name="str*", ts="int*", value="float")
    srs = repo.create_collection(schema, "clct") / "s"
    srs.write({"name": ["a", "a", "b", "b"], "ts": [2, 3, 1, 5], "value": [1, 2, 3, 4]})
    srs.write({"name": ["a", "b"], "ts": [3, 1], "value": [20, 30]})
    frm = srs.frame()
    assert list(zip(frm["name"].tolist(), frm["ts"].tolist(), frm["value"].tolist())) == [
        ("a", 2, 1.0),
        ("a", 3, 20.0),
        ("b", 1, 30.0),
        ("b", 5, 4.0),
    ]
    assert srs.frame(start=("a", 3), stop="b", closed="b")["value"].tolist() == [20, 30, 4]
    with pytest.raises(FrameError, match="not sorted"):
        srs.write({"name": ["a", "a"], "ts": [3, 2], "value": [1, 2]})


# --- reading ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, DAYS),
        ({"start": "2020-01-02"}, DAYS[1:]),
        ({"stop": "2020-01-04"}, DAYS[:3]),
        ({"start": "2020-01-02", "stop": "2020-01-04"}, DAYS[1:3]),
        ({"start": "2020-01-02", "stop": "2020-01-04", "closed": "b"}, DAYS[1:4]),
        ({"start": "2020-01-02", "stop": "2020-01-04", "closed": "r"}, DAYS[2:4]),
        ({"start": "2020-01-02", "stop": "2020-01-04", "closed": "n"}, DAYS[2:3]),
        ({"start": "2020-01-02", "stop": "2020-01-04", "closed": "BOTH"}, DAYS[1:4]),
        ({"start": datetime(2020, 1, 2), "stop": date(2020, 1, 3)}, DAYS[1:2]),
        ({"start": day("2020-01-02")}, DAYS[1:]),
        ({"stop": "2020-01-03", "closed": "r"}, DAYS[:3]),
        ({"limit": 2}, DAYS[:2]),
        ({"offset": 3}, DAYS[3:]),
        ({"offset": 1, "limit": 2}, DAYS[1:3]),
        ({"limit": 0}, []),
        ({"start": "2020-01-02", "offset": 1, "limit": 10}, DAYS[2:]),
    ],
)
def test_frame_ranges(series, kwargs, expected):
    assert ts_list(series.frame(**kwargs)) == [d for d in expected]


def test_frame_across_segments_with_limit_and_offset(ints):
    for start in range(0, 20, 5):
        ints.write({"ts": list(range(start, start + 5)), "value": list(range(start, start + 5))})
    assert ints.frame(offset=3, limit=9)["ts"].tolist() == list(range(3, 12))
    assert ints.frame(start=2, stop=17, offset=6, limit=4)["ts"].tolist() == [8, 9, 10, 11]


def test_frame_select(series):
    frm = series.frame(select="value")
    assert list(frm) == ["value"] and frm["value"].tolist() == [1, 2, 3, 4, 5]
    frm = series.frame(select=["value", "ts"])
    assert list(frm) == ["ts", "value"]
    with pytest.raises(KeyError, match="nope"):
        series.frame(select=["nope"])


def test_empty_series_reads(repo):
    srs = repo.create_collection(TS, "clct") / "empty"
    assert list(srs.frame()) == ["ts", "value"] and srs.frame().empty
    assert list(srs.frame(select="value")) == ["value"]
    assert srs.tail(3).empty
    assert list(srs.paginate(2)) == []
    assert len(srs) == 0 and not srs


def test_df_returns_pandas(series):
    pytest.importorskip("pandas")
    df = series.df(start="2020-01-04")
    assert df["value"].tolist() == [4, 5]
    assert list(df.columns) == ["ts", "value"]


@pytest.mark.pod_kinds()
def test_before_reads_older_revisions(series):
    rev = series.write({"ts": DAYS[:1], "value": [10]})[0]
    series.delete("2020-01-05", "2020-01-05")
    assert series.frame()["value"].tolist() == [10, 2, 3, 4]
    assert series.frame(before=rev.epoch)["value"].tolist() == [1, 2, 3, 4, 5]
    assert series.frame(before=datetime(2999, 1, 1))["value"].tolist() == [10, 2, 3, 4]
    assert series.frame(before="00000000000").empty


def test_bound_of_the_wrong_type_raises(series, ints):
    with pytest.raises(FrameError, match="bound"):
        series.frame(start=2.5)
    with pytest.raises(FrameError, match="bound"):
        ints.frame(stop="2020-01-01")
    with pytest.raises(FrameError, match="not a date"):
        series.frame(start="not a date")
    with pytest.raises(ValueError, match="Too many index values"):
        series.frame(start=("2020-01-01", 3))
    with pytest.raises(FrameError, match="bound"):
        series.delete(1.5, 2.5)


@pytest.mark.parametrize("limit, offset", [(-1, None), (None, -2), ("3", None)])
def test_invalid_limit_or_offset(series, limit, offset):
    with pytest.raises(ValueError, match="non-negative"):
        series.frame(limit=limit, offset=offset)


def test_invalid_closed(series):
    with pytest.raises(KeyError, match="Invalid closed"):
        series.frame(closed="both")


# --- tail and paginate --------------------------------------------------------------------


@pytest.fixture
def chunked(ints):
    """ts 0..11 in four segments of three rows, value = ts."""
    for start in range(0, 12, 3):
        keys = list(range(start, start + 3))
        ints.write({"ts": keys, "value": keys})
    return ints


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"length": 1}, [11]),
        ({"length": 5}, [7, 8, 9, 10, 11]),
        ({"length": 50}, list(range(12))),
        ({"length": 4, "stop": 9}, [5, 6, 7, 8]),
        ({"length": 4, "stop": 9, "closed": "b"}, [6, 7, 8, 9]),
        ({"length": 4, "start": 10}, [10, 11]),
        ({"length": 5, "offset": 2}, [9, 10, 11]),
        ({"length": 5, "offset": 2, "limit": 2}, [9, 10]),
        ({"length": 5, "limit": 1}, [7]),
        ({"length": 5, "offset": 9}, []),
    ],
)
def test_tail(chunked, kwargs, expected):
    """SPEC §6 item 9: `offset` without `limit` used to return nothing."""
    assert chunked.tail(**kwargs)["ts"].tolist() == expected


def test_tail_select_and_before(chunked):
    rev = chunked.write({"ts": [11], "value": [110]})[0]
    assert chunked.tail(2, select="value")["value"].tolist() == [10, 110]
    assert chunked.tail(2, before=rev.epoch)["value"].tolist() == [10, 11]


@pytest.mark.parametrize("length", [0, -1, 1.5])
def test_tail_rejects_bad_length(chunked, length):
    with pytest.raises(ValueError, match="positive"):
        chunked.tail(length)


@pytest.mark.parametrize("step", [1, 2, 3, 5, 50])
def test_paginate_covers_everything_once(chunked, step):
    pages = list(chunked.paginate(step))
    assert all(0 < len(page) <= step for page in pages)
    assert [v for page in pages for v in page["ts"].tolist()] == list(range(12))


def test_paginate_keeps_duplicates_at_page_boundaries(ints):
    """SPEC §6 item 9: rows sharing the boundary index value were skipped."""
    ints.write({"ts": [1, 2, 2, 2, 2, 3], "value": [1, 2, 3, 4, 5, 6]})
    ints.write({"ts": [4, 4, 5], "value": [7, 8, 9]})
    pages = list(ints.paginate(2))
    assert [page["value"].tolist() for page in pages] == [[1, 2], [3, 4], [5, 6], [7, 8], [9]]


def test_paginate_range_limit_offset(chunked):
    pages = chunked.paginate(4, start=2, stop=11, offset=1, limit=6)
    assert [page["ts"].tolist() for page in pages] == [[3, 4, 5, 6], [7, 8]]
    pages = chunked.paginate(4, start=2, stop=11, closed="b", offset=8)
    assert [page["ts"].tolist() for page in pages] == [[10, 11]]


def test_paginate_honours_before(chunked):
    """SPEC §6 item 9: upstream read the current leaf whatever `before` said."""
    rev = chunked.write({"ts": [0, 1], "value": [100, 101]})[0]
    chunked.delete(5, 8)
    old = [v for page in chunked.paginate(5, before=rev.epoch) for v in page["value"].tolist()]
    assert old == list(range(12))
    new = [v for page in chunked.paginate(5) for v in page["value"].tolist()]
    assert new == [100, 101, 2, 3, 4, 9, 10, 11]


def test_paginate_select_as_str_or_list(chunked):
    as_str = list(chunked.paginate(5, select="value"))
    as_list = list(chunked.paginate(5, select=["value"]))
    assert [list(page) for page in as_str] == [["value"]] * 3
    assert [p["value"].tolist() for p in as_str] == [p["value"].tolist() for p in as_list]


@pytest.mark.parametrize("step", [0, -5, 2.5])
def test_paginate_rejects_bad_step(chunked, step):
    with pytest.raises(ValueError, match="step"):
        next(chunked.paginate(step))


# --- len, bool, slicing -------------------------------------------------------------------


def test_len_bool_and_slicing(series):
    assert len(series) == 5 and bool(series)
    series.write({"ts": DAYS[1:3], "value": [20, 30]})
    assert len(series) == 5
    frm = series["2020-01-02":"2020-01-04"]
    assert ts_list(frm) == DAYS[1:4]
    assert ts_list(series[:"2020-01-02"]) == DAYS[:2]
    assert ts_list(series["2020-01-04":]) == DAYS[3:]
    with pytest.raises(TypeError, match="sliced"):
        series["2020-01-02"]
    with pytest.raises(TypeError, match="sliced"):
        series[::2]


def test_series_with_only_tombstones_is_listed(series):
    series.delete(DAYS[0], DAYS[-1])
    assert len(series) == 0
    assert bool(series) and series.collection.ls() == ["s"]
    missing = series.collection / "missing"
    assert not missing


# --- delete -------------------------------------------------------------------------------


def test_delete_with_string_bounds_on_a_timestamp_index(series):
    """SPEC §6 item 6: bounds were not cast, so strings failed on a timestamp index."""
    series.delete("2020-01-02", "2020-01-03")
    assert ts_list(series.frame()) == [DAYS[0], *DAYS[3:]]
    series.delete("2020-01-04", "2020-01-05", closed="l")
    assert ts_list(series.frame()) == [DAYS[0], DAYS[4]]


def test_sub_second_bounds_never_delete_whole_seconds(series):
    with pytest.raises(FrameError, match="finer than the column unit"):
        series.delete("2020-01-01T00:00:00.5", "2020-01-01T00:00:00.9")
    assert len(series) == 5


def test_sub_second_read_bounds_select_the_rows_they_name(series):
    """A read bound finer than the index unit rounds inward instead of failing."""
    after_first = series.frame(start=datetime(2020, 1, 1, 0, 0, 0, 500))
    assert ts_list(after_first) == DAYS[1:]
    for closed in ("l", "r", "b", "n"):
        inner = series.frame(
            start="2020-01-01T00:00:00.5", stop="2020-01-03T00:00:00.5", closed=closed
        )
        assert ts_list(inner) == DAYS[1:3]


def test_write_root_starts_a_new_history(series):
    other = series.collection / "other"
    other.write({"ts": DAYS[:1], "value": [1]})
    rev = series.write({"ts": DAYS[:2], "value": [10, 20]}, root=True)[0]
    assert rev.parent == "0" * 11 + "-" + "0" * 40
    assert series.collection.ls() == ["s"]
    assert series.frame()["value"].tolist() == [10, 20]


def test_delete_needs_both_bounds(series):
    with pytest.raises(ValueError, match="both start and stop"):
        series.delete("2020-01-02")


def test_delete_an_empty_range_is_a_no_op(series):
    assert series.delete("2020-01-02", "2020-01-02", closed="l") == []
    assert len(series) == 5
    with pytest.raises(ValueError, match="Invalid range"):
        series.delete("2020-01-03", "2020-01-02")


def test_empty_frame_without_bounds_raises(series):
    with pytest.raises(IndexError, match="explicit start and stop"):
        series.write({"ts": [], "value": []})


def test_write_bounds_must_hold_the_frame(ints):
    with pytest.raises(FrameError, match="before the write range"):
        ints.write({"ts": [1, 2], "value": [1, 2]}, start=1, closed="r")
    with pytest.raises(FrameError, match="after the write range"):
        ints.write({"ts": [1, 2], "value": [1, 2]}, stop=1)
    assert len(ints) == 0


def test_write_bounds_need_the_full_index(repo):
    srs = repo.create_collection(Schema(a="int*", b="int*", v="float"), "clct") / "s"
    with pytest.raises(ValueError, match="one value per index column"):
        srs.delete(1, 2)
    srs.delete((1, 0), (2, 0))


# --- update -------------------------------------------------------------------------------

UPD = Schema(ts="int*", a="float", b="str")


@pytest.fixture
def upd(repo):
    srs = repo.create_collection(UPD, "upd") / "s"
    srs.write({"ts": [1, 2, 3], "a": [1, 2, 3], "b": ["x", "y", "z"]})
    return srs


def test_update_replaces_some_columns(upd):
    upd.update({"ts": [2, 3], "a": [20, 30]})
    frm = upd.frame()
    assert frm["a"].tolist() == [1, 20, 30] and frm["b"].tolist() == ["x", "y", "z"]


def test_update_adds_rows_outside_the_stored_range(upd):
    upd.update({"ts": [0, 1, 2, 3, 4], "b": ["p", "q", "r", "s", "t"]})
    frm = upd.frame()
    assert frm["ts"].tolist() == [0, 1, 2, 3, 4]
    assert frm["a"].tolist() == [0, 1, 2, 3, 0]
    assert frm["b"].tolist() == ["p", "q", "r", "s", "t"]


def test_update_on_a_range_with_nothing_stored(upd):
    """SPEC §6 item 9: upstream raised IndexError."""
    upd.update({"ts": [10, 11], "a": [10, 11]})
    frm = upd.frame(start=10)
    assert frm["a"].tolist() == [10, 11] and frm["b"].tolist() == ["", ""]


def test_update_must_align_with_stored_index(upd):
    with pytest.raises(FrameError, match="not aligned"):
        upd.update({"ts": [1, 3], "a": [10, 30]})
    assert upd.frame()["a"].tolist() == [1, 2, 3]


def test_update_bad_input(upd):
    with pytest.raises(KeyError, match="index column"):
        upd.update({"a": [1.0]})
    with pytest.raises(KeyError, match="typo"):
        upd.update({"ts": [1], "typo": [1.0]})
    with pytest.raises(FrameError, match="not sorted"):
        upd.update({"ts": [2, 1], "a": [1, 2]})
    assert upd.update({"ts": [], "a": []}) == []


# --- bad input ----------------------------------------------------------------------------


def test_unsorted_frame_raises(series):
    with pytest.raises(FrameError, match="not sorted"):
        series.write({"ts": ["2020-01-02", "2020-01-01"], "value": [1, 2]})
    assert len(series.changelog.log()) == 1


def test_columns_of_different_lengths_raise(series):
    with pytest.raises(FrameError, match="Length mismatch"):
        series.write({"ts": DAYS[:2], "value": [1]})


def test_missing_column_raises(series):
    with pytest.raises(KeyError, match="value"):
        series.write({"ts": DAYS[:2]})


def test_extra_columns_are_dropped(series):
    series.write({"ts": DAYS[:1], "value": [10], "extra": ["ignored"]})
    assert list(series.frame()) == ["ts", "value"]


@pytest.mark.parametrize(
    "data",
    [
        {"ts": ["2020-01-01"], "value": ["abc"]},
        {"ts": ["yesterday"], "value": [1]},
        {"ts": [1.5], "value": [1]},
        {"ts": ["2020-01-01"], "value": [[1, 2]]},
        {"ts": "2020-01-01", "value": 1},
    ],
)
def test_values_that_cannot_be_cast_raise(series, data):
    with pytest.raises((ValueError, TypeError)):
        series.write(data)
    assert len(series) == 5


def test_schema_without_index_raises():
    with pytest.raises(SchemaError, match="no index"):
        Schema(value="float")


def test_series_label_must_not_be_empty(series):
    with pytest.raises(ValueError, match="empty"):
        series.collection / "  "
    with pytest.raises(TypeError):
        series.collection.series(3)


# --- KV series ----------------------------------------------------------------------------

KV = Schema.kv(key="str*", val="int")


@pytest.fixture
def kv(repo):
    return repo.create_collection(KV, "kv") / "main"


def kv_items(srs) -> dict:
    frm = srs.frame()
    index = zip(*(frm[n].tolist() for n in srs.schema.idx))
    return dict(zip(index, frm[srs.schema.non_idx[0]].tolist()))


def test_kv_upserts(kv):
    kv.write({"key": ["b", "a"], "val": [2, 1]})
    kv.write({"key": ["a"], "val": [10]})
    assert kv_items(kv) == {("a",): 10, ("b",): 2}
    kv.write({"key": ["c", "aa"], "val": [3, 5]})
    assert kv_items(kv) == {("a",): 10, ("aa",): 5, ("b",): 2, ("c",): 3}


def test_kv_duplicate_keys_in_one_write_last_wins(kv):
    """SPEC §6 item 8: duplicates were kept when nothing was stored."""
    kv.write({"key": ["b", "a", "b", "a"], "val": [1, 2, 3, 4]})
    assert kv.frame()["key"].tolist() == ["a", "b"]
    assert kv_items(kv) == {("a",): 4, ("b",): 3}
    kv.write({"key": ["b", "b"], "val": [5, 6]})
    assert kv_items(kv) == {("a",): 4, ("b",): 6}


def test_kv_same_data_is_a_no_op(kv):
    kv.write({"key": ["a", "b"], "val": [1, 2]})
    log = kv.changelog.log()
    assert not kv.write({"key": ["b", "a"], "val": [2, 1]})
    assert kv.changelog.log() == log


def test_kv_delete_on_any_schema(kv):
    """SPEC §6 item 8: delete only worked on the registry schema."""
    kv.write({"key": ["a", "b", "c", "d"], "val": [1, 2, 3, 4]})
    kv.delete("b", "d", "zz")
    assert kv_items(kv) == {("a",): 1, ("c",): 3}
    assert kv.delete("nothing") == []
    assert kv.delete() == []


def test_kv_multi_column_index(repo):
    srs = repo.create_collection(Schema.kv(k="str*", n="int*", val="float"), "kv2") / "x"
    srs.write({"k": ["b", "a", "a"], "n": [1, 2, 1], "val": [1, 2, 3]})
    srs.write({"k": ["a", "c"], "n": [2, 0], "val": [20, 30]})
    assert kv_items(srs) == {("a", 1): 3, ("a", 2): 20, ("b", 1): 1, ("c", 0): 30}
    srs.delete(("a", 2), ("c", 0))
    assert kv_items(srs) == {("a", 1): 3, ("b", 1): 1}
    with pytest.raises(ValueError, match="one value per index column"):
        srs.delete("a")


@pytest.mark.pod_kinds()
def test_kv_upserts_inside_multi_build_on_each_other(repo):
    clct = repo.create_collection(KV, "kv")
    kv = clct / "main"
    with clct.multi():
        kv.write({"key": ["b"], "val": [2]})
        kv.write({"key": ["a", "c"], "val": [1, 3]})
        kv.delete("c")
        kv.write({"key": ["c"], "val": [30]})
    assert kv_items(kv) == {("a",): 1, ("b",): 2, ("c",): 30}
    assert len(clct.changelog.log()) == 1


def test_update_inside_multi_sees_earlier_writes(repo):
    clct = repo.create_collection(UPD, "upd")
    srs = clct / "s"
    with clct.multi():
        srs.write({"ts": [1, 2], "a": [1, 2], "b": ["x", "y"]})
        srs.update({"ts": [2], "a": [20]})
    assert srs.frame()["a"].tolist() == [1, 20]
    assert srs.frame()["b"].tolist() == ["x", "y"]


def test_kv_explicit_bounds_write_like_a_series(kv):
    kv.write({"key": ["a", "b", "c"], "val": [1, 2, 3]})
    kv.write({"key": ["b"], "val": [20]}, start="a", stop="c", closed="n")
    assert kv_items(kv) == {("a",): 1, ("b",): 20, ("c",): 3}
