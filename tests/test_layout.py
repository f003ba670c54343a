"""How writes are laid out in segments: pages for large writes, compaction of small appends."""

import numpy
import pytest

from lakota import Repo, Schema
from lakota.utils import settings

SCHEMA = Schema(k="int*", v="float")


@pytest.fixture
def series():
    return Repo().create_collection(SCHEMA, "c") / "s"


def rows_of(series):
    commit = series.collection.commit()
    return list(commit.match(series.label))


def test_large_write_is_split_in_pages_that_cover_its_range(series, monkeypatch):
    monkeypatch.setattr(settings, "page_len", 10)
    keys = numpy.arange(0, 100, 2)
    series.write({"k": keys, "v": keys * 1.5}, start=-10, stop=200)
    rows = rows_of(series)
    assert len(rows) == 5
    assert rows[0].start == (-10,) and rows[-1].stop == (200,)
    for left, right in zip(rows, rows[1:]):
        assert left.stop == right.start and not left.closed.right and right.closed.left
    assert series.frame()["v"].tolist() == (keys * 1.5).tolist()
    assert series.frame(start=31, stop=41)["k"].tolist() == [32, 34, 36, 38, 40]


def test_pages_never_split_a_run_of_equal_keys(series, monkeypatch):
    monkeypatch.setattr(settings, "page_len", 4)
    keys = [1, 1, 1, 2, 2, 2, 2, 2, 3, 4]
    series.write({"k": keys, "v": range(10)})
    assert [row.length for row in rows_of(series)] == [8, 2]
    assert series.frame()["v"].tolist() == list(range(10))


def test_a_paged_write_hides_what_was_between_its_pages(series, monkeypatch):
    series.write({"k": [5, 15], "v": [-1.0, -1.0]})
    monkeypatch.setattr(settings, "page_len", 2)
    series.write({"k": [0, 2, 10, 12, 20, 22], "v": [1.0] * 6})
    assert series.frame()["k"].tolist() == [0, 2, 10, 12, 20, 22]


def test_small_appends_are_compacted_and_keep_every_value(series, monkeypatch):
    monkeypatch.setattr(settings, "append_merge_count", 4)
    for k in range(50):
        series.write({"k": [2 * k, 2 * k + 1], "v": [k, -k]})
    assert len(rows_of(series)) <= 4
    values = series.frame()["v"].tolist()
    assert values == [x for k in range(50) for x in (k, -k)]


def test_compaction_stops_at_large_segments(series, monkeypatch):
    monkeypatch.setattr(settings, "append_merge_count", 2)
    monkeypatch.setattr(settings, "append_merge_len", 6)
    for k in range(12):
        series.write({"k": [k], "v": [k]})
    lengths = [row.length for row in rows_of(series)]
    assert all(length <= 7 for length in lengths[:-2]) and sum(lengths) == 12
    assert series.frame()["k"].tolist() == list(range(12))


def test_overwrites_are_not_compacted(series, monkeypatch):
    monkeypatch.setattr(settings, "append_merge_count", 2)
    series.write({"k": list(range(10)), "v": [0.0] * 10})
    for k in range(5):
        series.write({"k": [k], "v": [1.0]})
    assert series.frame()["v"].tolist() == [1.0] * 5 + [0.0] * 5


def test_compaction_inside_a_batch_builds_on_pending_rows(series, monkeypatch):
    monkeypatch.setattr(settings, "append_merge_count", 3)
    with series.collection.multi():
        for k in range(10):
            series.write({"k": [k], "v": [k]})
    assert series.frame()["k"].tolist() == list(range(10))
    assert len(series.collection.changelog.log()) == 1


def test_own_appends_need_no_listing_on_a_folder(tmp_path, monkeypatch):
    series = Repo(str(tmp_path)).create_collection(SCHEMA, "c") / "s"
    series.write({"k": [0], "v": [0.0]})
    series.write({"k": [1], "v": [1.0]})  # the first revision of a history is listed once
    pod = series.changelog.pod
    listings = []
    original = type(pod)._ls
    monkeypatch.setattr(
        type(pod), "_ls", lambda self, parts: listings.append(1) or original(self, parts)
    )
    for k in range(2, 6):
        series.write({"k": [k], "v": [float(k)]})
    assert listings == []
    assert series.frame()["k"].tolist() == list(range(6))


def test_a_write_by_another_object_is_seen_after_own_writes(tmp_path):
    ours = Repo(str(tmp_path)).create_collection(SCHEMA, "c") / "s"
    ours.write({"k": [0], "v": [0.0]})
    theirs = Repo(str(tmp_path)) / "c" / "s"
    theirs.write({"k": [1], "v": [1.0]})
    assert ours.frame()["k"].tolist() == [0, 1]
    ours.write({"k": [2], "v": [2.0]})
    assert (Repo(str(tmp_path)) / "c" / "s").frame()["k"].tolist() == [0, 1, 2]


def test_many_small_appends_do_not_pile_up_embedded_arrays(series):
    """The commit kept after a write holds only the embedded arrays its rows reference."""
    for key in range(300):
        series.write({"k": [key], "v": [key / 2]})
    commit = series.collection.commit()
    assert set(commit.embedded) <= commit.digests()
    assert len(commit.embedded) <= 2 * len(commit) < 100
    assert series.frame()["v"].tolist() == [key / 2 for key in range(300)]
