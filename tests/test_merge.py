"""Three-way merge of concurrent branches: no write of either side is lost."""

import time

import numpy
import pytest

from lakota import Repo, Schema

SCHEMA = Schema(k="int*", v="float")


@pytest.fixture
def sides():
    """Two writers (separate Repo objects) that both start from the same revision."""
    first = Repo()
    collection = first.create_collection(SCHEMA, "c")
    (collection / "a").write({"k": list(range(10)), "v": [0.0] * 10})
    (collection / "gone").write({"k": [1], "v": [1.0]})
    other = Repo(pod=first.pod) / "c"
    for side in (collection, other):
        side.ls()  # each writer loads the leaf now, so their later writes fork
    return collection, other


def merged(collection):
    fresh = Repo(pod=collection.repo.pod) / "c"
    assert len(fresh.changelog.heads()) == 2
    assert fresh.merge()
    fresh = Repo(pod=collection.repo.pod) / "c"
    assert len(fresh.changelog.heads()) == 1
    return fresh


def values(collection, label):
    return (collection / label).frame()["v"].tolist()


def test_overwrite_survives_a_concurrent_rewrite_of_the_same_segment(sides):
    ours, theirs = sides
    (ours / "a").write({"k": [2, 3], "v": [1.0, 1.0]})
    (theirs / "a").write({"k": list(range(12)), "v": [0.0] * 10 + [2.0, 2.0]})
    result = merged(ours)
    assert values(result, "a") == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 2, 2]


def test_overwrite_survives_a_concurrent_defrag(sides):
    ours, theirs = sides
    for k in range(10, 16):
        (theirs / "a").write({"k": [k], "v": [float(k)]})
    theirs.defrag(max_chunk=2)
    (ours / "a").write({"k": [5], "v": [-5.0]})
    result = merged(ours)
    assert values(result, "a") == [0] * 5 + [-5] + [0] * 4 + list(range(10, 16))


def test_both_sides_overwrite_different_keys_of_one_segment(sides):
    ours, theirs = sides
    (ours / "a").write({"k": [1], "v": [10.0]})
    (theirs / "a").write({"k": [8], "v": [80.0]}, start=7, stop=8)
    result = merged(ours)
    assert values(result, "a") == [0, 10, 0, 0, 0, 0, 0, 80, 0]


def test_later_branch_wins_on_a_key_both_changed(sides):
    ours, theirs = sides
    (ours / "a").write({"k": [4], "v": [1.0]})
    time.sleep(0.005)  # revision times have a millisecond resolution
    (theirs / "a").write({"k": [4], "v": [2.0]})
    result = merged(ours)
    assert values(result, "a")[4] == 2.0


def test_series_deleted_on_one_side_stays_deleted(sides):
    ours, theirs = sides
    theirs.delete("gone")
    (ours / "a").write({"k": [0], "v": [7.0]})
    result = merged(ours)
    assert result.ls() == ["a"]
    assert values(result, "a")[0] == 7.0


def test_range_delete_on_one_side_and_write_elsewhere_on_the_other(sides):
    ours, theirs = sides
    (theirs / "a").delete(0, 4)
    (ours / "a").write({"k": [9], "v": [9.0]})
    result = merged(ours)
    assert (result / "a").frame()["k"].tolist() == [5, 6, 7, 8, 9]
    assert values(result, "a") == [0, 0, 0, 0, 9]


def test_unchanged_nan_values_do_not_override_the_other_side():
    repo = Repo()
    collection = repo.create_collection(SCHEMA, "c")
    (collection / "a").write({"k": [1, 2], "v": [numpy.nan, 0.0]})
    theirs = Repo(pod=repo.pod) / "c"
    theirs.ls()
    collection.ls()
    (collection / "a").write({"k": [1], "v": [1.0]})
    (theirs / "a").write({"k": [1, 2, 3], "v": [numpy.nan, 0.0, 3.0]})
    result = merged(collection)
    assert values(result, "a") == [1.0, 0.0, 3.0]


def test_new_series_on_both_sides_are_kept(sides):
    ours, theirs = sides
    (ours / "x").write({"k": [1], "v": [1.0]})
    (theirs / "y").write({"k": [2], "v": [2.0]})
    result = merged(ours)
    assert result.ls() == ["a", "gone", "x", "y"]
