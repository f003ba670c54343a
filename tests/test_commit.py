"""Commits: the overlay rules of `Commit.update` (SPEC §2.4.1, §2.10), encoding, segments."""

from __future__ import annotations

import msgpack
import numpy
import pytest
from conftest import CORE_KINDS, check_invariants, visible_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from lakota import Repo, Schema
from lakota.commit import Commit
from lakota.errors import CorruptedDataError, FrameError
from lakota.schema import EMPTY_DIGEST
from lakota.utils import Closed
from lakota.utils import settings as lakota_settings

pytestmark = pytest.mark.pod_kinds(*CORE_KINDS)

SCHEMA = Schema(ts="int*", v="float")


@pytest.fixture
def series(repo):
    return repo.create_collection(SCHEMA, "clct") / "s"


def write(series, keys, values=None, **kwargs):
    values = keys if values is None else values
    return series.write({"ts": keys, "v": values}, **kwargs)


def content(series, **kwargs) -> list[tuple]:
    frm = series.frame(**kwargs)
    return list(zip(frm["ts"].tolist(), frm["v"].tolist()))


def rows(series) -> list[tuple]:
    commit = series.collection.commit()
    check_invariants(commit, series.pod)
    return visible_rows(commit, series.label)


# --- overlay rules on a real series -------------------------------------------------------


def test_overlap_splits_the_old_row(series):
    write(series, [1, 2, 3, 4, 5])
    write(series, [3, 4], [30, 40])
    assert rows(series) == [(1, 3, "l"), (3, 4, "b"), (4, 5, "r")]
    assert content(series) == [(1, 1), (2, 2), (3, 30), (4, 40), (5, 5)]


def test_adjacent_write_takes_the_shared_point(series):
    write(series, [1, 2, 3])
    write(series, [3, 4, 5], [30, 40, 50])
    assert rows(series) == [(1, 3, "l"), (3, 5, "b")]
    assert content(series) == [(1, 1), (2, 2), (3, 30), (4, 40), (5, 50)]


def test_adjacent_write_with_open_start_leaves_the_shared_point(series):
    write(series, [1, 2, 3])
    write(series, [4, 5], start=3, closed="r")
    assert rows(series) == [(1, 3, "b"), (3, 5, "r")]
    assert content(series) == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]


def test_adjacent_write_before_existing_rows(series):
    write(series, [3, 4, 5])
    write(series, [1, 2, 3], [10, 20, 30])
    assert rows(series) == [(1, 3, "b"), (3, 5, "r")]
    assert content(series) == [(1, 10), (2, 20), (3, 30), (4, 4), (5, 5)]


def test_explicit_wider_bounds_hide_more(series):
    write(series, [1, 2, 3, 4, 5, 6, 7])
    write(series, [2], [20], start=1, stop=3)
    assert content(series) == [(2, 20), (4, 4), (5, 5), (6, 6), (7, 7)]


def test_open_bounds_protect_boundary_values(series):
    write(series, [3, 4, 5])
    write(series, [6, 7], start=5, closed="r")
    assert content(series) == [(3, 3), (4, 4), (5, 5), (6, 6), (7, 7)]
    write(series, [7], [70], start=5, closed="r")
    assert content(series) == [(3, 3), (4, 4), (5, 5), (7, 70)]


def test_gaps_in_the_new_frame_hide_old_rows(series):
    write(series, [1, 2, 3, 4, 5])
    write(series, [1, 5], [10, 50])
    assert content(series) == [(1, 10), (5, 50)]


def test_write_covering_several_rows_replaces_them(series):
    for keys in ([1, 2], [4, 5], [7, 8]):
        write(series, keys)
    write(series, [2, 3, 7], [20, 30, 70])
    assert rows(series) == [(1, 2, "l"), (2, 7, "b"), (7, 8, "r")]
    assert content(series) == [(1, 1), (2, 20), (3, 30), (7, 70), (8, 8)]


def test_duplicates_in_index(series):
    write(series, [1, 1, 2], [1, 2, 3])
    assert content(series) == [(1, 1), (1, 2), (2, 3)]
    write(series, [1], [10])
    assert content(series) == [(1, 10), (2, 3)]
    write(series, [2, 2], [20, 21])
    assert content(series) == [(1, 10), (2, 20), (2, 21)]


def test_single_point_row_survives_adjacent_write(series):
    """SPEC §6 item 3: upstream tested the wrong neighbour's flag and dropped [5]."""
    write(series, [5])
    write(series, [3, 4], stop=5, closed="l")
    assert rows(series) == [(3, 5, "l"), (5, 5, "b")]
    assert content(series) == [(3, 3), (4, 4), (5, 5)]


def test_single_point_row_survives_write_starting_after_it(series):
    write(series, [3])
    write(series, [4, 5], start=3, closed="r")
    assert content(series) == [(3, 3), (4, 4), (5, 5)]


def test_single_point_row_is_hidden_by_a_write_including_it(series):
    write(series, [3])
    write(series, [3, 4], [30, 40])
    assert rows(series) == [(3, 4, "b")]
    write(series, [1, 2], [10, 20], stop=3, closed="l")
    assert content(series) == [(1, 10), (2, 20), (3, 30), (4, 40)]


def test_other_labels_are_untouched(series):
    other = series.collection / "other"
    write(other, [1, 2, 3])
    write(series, [1, 2, 3], [10, 20, 30])
    write(series, [2], [200])
    assert content(other) == [(1, 1), (2, 2), (3, 3)]
    assert [row.label for row in series.collection.commit().match("other")] == ["other"]


# --- Commit.update directly ---------------------------------------------------------------


def one(label="s", start=1, stop=5, closed="b") -> Commit:
    return Commit.one(SCHEMA, label, (start,), (stop,), ("d1", "d2"), 5, closed)


def update(commit: Commit, start, stop, closed="b", label="s") -> Commit:
    return commit.update(label, (start,), (stop,), ("n1", "n2"), 2, closed)


@pytest.mark.parametrize(
    "start, stop, closed, expected",
    [
        (3, 4, "b", [(1, 3, "l"), (3, 4, "b"), (4, 5, "r")]),
        (3, 4, "n", [(1, 3, "b"), (3, 4, "n"), (4, 5, "b")]),
        (1, 5, "b", [(1, 5, "b")]),
        (1, 5, "n", [(1, 1, "b"), (1, 5, "n"), (5, 5, "b")]),
        (0, 9, "b", [(0, 9, "b")]),
        (5, 9, "b", [(1, 5, "l"), (5, 9, "b")]),
        (5, 9, "r", [(1, 5, "b"), (5, 9, "r")]),
        (0, 1, "l", [(0, 1, "l"), (1, 5, "b")]),
        (6, 9, "b", [(1, 5, "b"), (6, 9, "b")]),
        (3, 3, "b", [(1, 3, "l"), (3, 3, "b"), (3, 5, "r")]),
    ],
)
def test_update_rows(start, stop, closed, expected):
    result = update(one(), start, stop, closed)
    assert visible_rows(result, "s") == expected


def test_update_keeps_rows_of_other_labels():
    base = Commit.concat(one("a"), one("s"), one("z"))
    result = update(base, 3, 4)
    assert [str(x) for x in result.label] == ["a", "s", "s", "s", "z"]
    assert visible_rows(result, "a") == [(1, 5, "b")]
    assert visible_rows(result, "z") == [(1, 5, "b")]


def test_update_new_label_is_inserted_in_order():
    result = update(Commit.concat(one("a"), one("z")), 3, 4, label="m")
    assert [str(x) for x in result.label] == ["a", "m", "z"]


def test_update_rejects_reversed_range():
    with pytest.raises(ValueError, match="Invalid range"):
        update(one(), 4, 3)


def test_update_merges_embedded_maps():
    base = Commit.one(SCHEMA, "s", (1,), (2,), ("d1", "d2"), 2, "b", {"d1": b"x", "d2": b"y"})
    result = base.update("s", (3,), (4,), ("n1", "n2"), 2, "b", {"n1": b"z", "n2": b"w"})
    assert {d: result.embedded[d] for d in ("d1", "d2", "n1", "n2")} == {
        "d1": b"x",
        "d2": b"y",
        "n1": b"z",
        "n2": b"w",
    }


def test_concat_refuses_overlapping_parts():
    with pytest.raises(ValueError, match="overlap"):
        Commit.concat(one(start=1, stop=5), one(start=3, stop=8))


def test_row_membership():
    commit = update(one(), 3, 4)
    assert commit.at(1) in commit
    moved = dict(commit.at(1), start=(2,))
    assert moved not in commit


# --- model test ---------------------------------------------------------------------------

FLAGS = ["b", "l", "r", "n"]


@st.composite
def operations(draw):
    """A write (possibly empty: a delete) with random explicit bounds and closed flag."""
    keys = sorted(draw(st.lists(st.integers(0, 12), max_size=5)))
    lo = keys[0] if keys else draw(st.integers(0, 12))
    hi = keys[-1] if keys else draw(st.integers(lo, 14))
    start = draw(st.one_of(st.none(), st.integers(lo - 2, lo))) if keys else lo
    stop = draw(st.one_of(st.none(), st.integers(hi, hi + 2))) if keys else hi
    return {
        "label": draw(st.sampled_from("ab")),
        "keys": keys,
        "start": start,
        "stop": stop,
        "closed": draw(st.sampled_from(FLAGS)),
        "query": (
            draw(st.integers(-1, 15)),
            draw(st.integers(-1, 15)),
            draw(st.sampled_from(FLAGS)),
        ),
    }


def in_range(key: int, start: int, stop: int, closed: Closed) -> bool:
    return (key > start or (key == start and closed.left)) and (
        key < stop or (key == stop and closed.right)
    )


def apply_model(model: dict, op: dict, values: list[float]) -> bool:
    """Apply `op` to the model; False when the write must be refused."""
    keys, closed = op["keys"], Closed.cast(op["closed"])
    start = keys[0] if op["start"] is None else op["start"]
    stop = keys[-1] if op["stop"] is None else op["stop"]
    if not all(in_range(k, start, stop, closed) for k in keys):
        return False
    kept = [(k, v) for k, v in model[op["label"]] if not in_range(k, start, stop, closed)]
    model[op["label"]] = sorted(kept + list(zip(keys, values)), key=lambda kv: kv[0])
    return True


def apply_series(collection, op: dict, values: list[float]) -> None:
    collection.series(op["label"]).write(
        {"ts": op["keys"], "v": values}, start=op["start"], stop=op["stop"], closed=op["closed"]
    )


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(operations(), min_size=1, max_size=8), embed=st.sampled_from([0, 1024]))
def test_writes_match_a_list_model(ops, embed):
    previous = lakota_settings.embed_max_size
    lakota_settings.embed_max_size = embed
    try:
        check_model(ops)
    finally:
        lakota_settings.embed_max_size = previous


def check_model(ops: list[dict]) -> None:
    repo = Repo()
    clct, replay = repo.create_collection(SCHEMA, "clct", "replay")
    model: dict[str, list] = {"a": [], "b": []}
    accepted = []
    for num, op in enumerate(ops):
        values = [num * 100.0 + i for i in range(len(op["keys"]))]
        if apply_model(model, op, values):
            apply_series(clct, op, values)
            accepted.append((op, values))
        else:
            with pytest.raises(FrameError):
                apply_series(clct, op, values)
        if clct.commit() is not None:
            check_invariants(clct.commit(), repo.pod)
        for label, expected in model.items():
            series = clct / label
            assert content(series) == expected
            assert len(series) == len(expected)
        q_start, q_stop, q_closed = op["query"]
        flags = Closed.cast(q_closed)
        series = clct / op["label"]
        expected = [kv for kv in model[op["label"]] if in_range(kv[0], q_start, q_stop, flags)]
        assert content(series, start=q_start, stop=q_stop, closed=q_closed) == expected
    with replay.multi():
        for op, values in accepted:
            apply_series(replay, op, values)
    for label, expected in model.items():
        assert content(replay / label) == expected
    assert len(replay.changelog.log()) <= 1


# --- encoding -----------------------------------------------------------------------------

MULTI = Schema(day="date*", name="str*", value="float", note="O")


@pytest.fixture
def multi_clct(repo):
    clct = repo.create_collection(MULTI, "multi")
    rng = numpy.random.default_rng(0)
    (clct / "big").write(
        {
            "day": ["2020-01-01"] * 300,
            "name": [f"n{i:03d}" for i in range(300)],
            "value": rng.random(300),
            "note": [{"i": i} for i in range(300)],
        }
    )
    (clct / "small").write(
        {"day": ["2020-01-01", "2020-01-02"], "name": ["b", "a"], "value": [1, 2], "note": [1, "x"]}
    )
    (clct / "small").write({"day": ["2020-01-02"], "name": ["a"], "value": [3], "note": [None]})
    return clct


def test_encode_decode_round_trip(multi_clct):
    commit = multi_clct.commit()
    decoded = Commit.decode(MULTI, commit.encode())
    assert decoded.encode() == commit.encode()
    assert decoded.label.tolist() == ["big", "small", "small"]
    for name in MULTI.idx:
        assert numpy.array_equal(decoded.start[name], commit.start[name])
        assert numpy.array_equal(decoded.stop[name], commit.stop[name])
        assert decoded.start[name].dtype == MULTI[name].dt or MULTI[name].dt.kind == "U"
    for name in MULTI:
        assert decoded.digest[name].tolist() == commit.digest[name].tolist()
    assert decoded.length.tolist() == [300, 2, 1]
    assert decoded.closed.tolist() == ["b", "l", "b"]
    payload = multi_clct.changelog.leaf().read()
    assert Commit.decode(MULTI, payload).encode() == payload


def test_encoding_layout(multi_clct):
    commit = multi_clct.commit()
    commit.embedded["f" * 40] = b"unreferenced"
    body, dtype, shape = msgpack.unpackb(commit.encode(), raw=False)
    assert (dtype, shape) == ("|O", [1])
    assert list(body) == ["start", "stop", "digest", "length", "closed", "label", "embedded"]
    assert list(body["start"]) == ["day", "name"]
    assert list(body["digest"]) == ["day", "name", "value", "note"]
    embedded = list(body["embedded"])
    assert embedded == sorted(embedded)
    assert "f" * 40 not in embedded
    assert set(embedded) <= commit.digests()
    big_digests = [commit.digest[name][0] for name in MULTI]
    assert any(d not in embedded for d in big_digests)


def test_decode_garbage_raises():
    with pytest.raises(CorruptedDataError):
        Commit.decode(SCHEMA, b"not a commit")
    body = msgpack.packb([{"label": b""}, "|O", [1]])
    with pytest.raises(CorruptedDataError):
        Commit.decode(SCHEMA, body)


def test_tombstone_is_embedded_as_empty(series):
    write(series, [1, 2, 3])
    series.delete(2, 2)
    commit = series.collection.commit()
    assert commit.embedded[EMPTY_DIGEST] == b""
    assert visible_rows(commit, "s") == [(1, 2, "l"), (2, 2, "b"), (2, 3, "r")]
    assert commit.length.tolist() == [3, 0, 3]


# --- segments on a multi-column index -----------------------------------------------------

PAIR = Schema(a="int*", b="int*", v="float")


@pytest.fixture
def pairs(repo):
    """Three segments: a=1, a=2 and a=3, each with b in 0..2."""
    series = repo.create_collection(PAIR, "pairs") / "s"
    for a in (1, 2, 3):
        series.write({"a": [a] * 3, "b": [0, 1, 2], "v": [a * 10 + b for b in range(3)]})
    return series


def a_values(frm) -> list[tuple]:
    return list(zip(frm["a"].tolist(), frm["b"].tolist()))


@pytest.mark.parametrize(
    "closed, expected_a",
    [("b", [2, 3]), ("l", [2]), ("r", [3]), ("n", [])],
)
def test_partial_key_range_query(pairs, closed, expected_a):
    """SPEC §6 item 4: upstream skipped segments when bounds were shorter than the index."""
    frm = pairs.frame(start=2, stop=3, closed=closed)
    assert a_values(frm) == [(a, b) for a in expected_a for b in range(3)]


def test_partial_key_segments(pairs):
    commit = pairs.collection.commit()
    segments = commit.segments("s", pairs.pod, (2,), (2,), "b")
    assert [len(sgm) for sgm in segments] == [3]
    assert segments[0].frame["v"].tolist() == [20, 21, 22]
    assert commit.segments("s", pairs.pod, (2,), (2,), "l") == []


def test_partial_start_full_stop(pairs):
    frm = pairs.frame(start=(2,), stop=(3, 1), closed="b")
    assert a_values(frm) == [(2, 0), (2, 1), (2, 2), (3, 0), (3, 1)]
    frm = pairs.frame(start=(1, 2), stop=(2,), closed="n")
    assert a_values(frm) == []
    frm = pairs.frame(start=(1, 1), stop=(2,), closed="b")
    assert a_values(frm) == [(1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]


def test_segments_inside_one_row(repo):
    series = repo.create_collection(SCHEMA, "clct") / "s"
    write(series, list(range(10)))
    segments = series.segments((2,), (5,), closed="r")
    assert len(segments) == 1
    sgm = segments[0]
    assert (sgm.start, sgm.stop, sgm.closed) == ((2,), (5,), Closed.RIGHT)
    assert (sgm.start_pos, sgm.stop_pos, len(sgm)) == (3, 6, 3)
    assert sgm.read("ts").tolist() == [3, 4, 5]
    assert sgm.read("v", 1, 2).tolist() == [4.0]


@settings(max_examples=150, deadline=None)
@given(
    base_rows=st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 20)), max_size=8),
    rows=st.lists(
        st.tuples(
            st.sampled_from("abcde"),
            st.integers(0, 20),
            st.integers(0, 6),
            st.sampled_from(["b", "l", "r", "n"]),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_batch_overlay_matches_one_update_at_a_time(base_rows, rows):
    """`_overlay` applies a batch label by label; the result is that of `update` in order."""
    from lakota.collection import _overlay

    base = None
    for label, start in base_rows:
        digests = (f"f{start:039}", "x" * 40)  # 40 characters, like real digests
        row = Commit.one(SCHEMA, label, (start,), (start + 2,), digests, 3)
        base = row if base is None else base.update(**base_row(row))
    batch = [
        {
            "label": label,
            "start": (start,),
            "stop": (start + width,),
            "digest": (f"{label}{i:039}", f"e{i:039}"),
            "length": width + 1,
            "closed": closed,
            "embedded": {f"{label}{i:039}": f"v{i}".encode()},
        }
        for i, (label, start, width, closed) in enumerate(rows)
    ]
    expected = base
    for row in batch:
        expected = expected.update(**row) if expected is not None else Commit.one(SCHEMA, **row)
    result = _overlay(SCHEMA, base, batch)
    assert result == expected
    assert result.encode() == expected.encode()
    referenced = result.digests()
    assert set(result.embedded) <= referenced  # hidden rows' arrays are not kept
    for i, row in enumerate(batch):
        if row["digest"][0] in referenced:
            assert result.embedded[row["digest"][0]] == f"v{i}".encode()


def base_row(commit: Commit) -> dict:
    row = commit.at(0)
    row.pop("embedded", None)
    return row
