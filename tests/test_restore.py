"""Restore: a new revision equal to an earlier state; history is kept."""

import pytest

from lakota import Repo, Schema

SCHEMA = Schema(k="int*", v="float")


@pytest.fixture
def clct():
    clct = Repo().create_collection(SCHEMA, "c")
    (clct / "s").write({"k": [1, 2], "v": [1.0, 2.0]})
    (clct / "t").write({"k": [1], "v": [1.0]})
    clct.tag("good")
    (clct / "s").write({"k": [2, 3], "v": [-2.0, -3.0]})
    (clct / "t").delete(1, 1)
    (clct / "u").write({"k": [1], "v": [1.0]})
    return clct


def values(clct, label):
    return (clct / label).frame()["v"].tolist()


def test_series_restore(clct):
    count = len(clct.changelog.log())
    (rev,) = (clct / "s").restore("good")
    assert values(clct, "s") == [1.0, 2.0]
    assert values(clct, "t") == [] and values(clct, "u") == [1.0]
    assert rev.message == "Restore s to good" and rev.author
    assert len(clct.changelog.log()) == count + 1
    assert (clct / "s").restore("good") == []  # already there


def test_collection_restore_all_and_some(clct):
    clct.restore("good", labels=["t"], message="bring t back")
    assert values(clct, "t") == [1.0] and values(clct, "s") == [1.0, -2.0, -3.0]
    assert clct.changelog.leaf().message == "bring t back"
    clct.restore("good")
    assert clct.ls() == ["s", "t"]
    assert values(clct, "s") == [1.0, 2.0]
    assert clct.commit() == clct.commit(at="good")
    assert clct.diff("good") == []


def test_restore_to_before_a_series_existed_removes_it(clct):
    first = clct.changelog.log()[0]
    (clct / "t").restore(first)
    assert "t" not in clct.ls()


def test_restore_refuses_multi(clct):
    with pytest.raises(ValueError, match="multi"):
        with clct.multi():
            clct.restore("good")
    with pytest.raises(TypeError):
        clct.restore("good", labels="s")
