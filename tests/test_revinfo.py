"""Who and why: messages, authors and metadata recorded with revisions."""

import msgpack
import pytest

from lakota import Repo, Schema
from lakota.revinfo import default_author, make_info
from lakota.utils import settings

SCHEMA = Schema(k="int*", v="float")


@pytest.fixture
def clct():
    return Repo().create_collection(SCHEMA, "c")


def body_keys(rev) -> list[str]:
    return list(msgpack.unpackb(rev.read(), raw=False)[0])


def test_write_records_message_author_and_meta(clct):
    (rev,) = (clct / "s").write(
        {"k": [1, 2], "v": [1.0, 2.0]},
        message="first load",
        author="alice",
        meta={"job": "eod", "n": 3},
    )
    assert (rev.message, rev.author, rev.meta) == ("first load", "alice", {"job": "eod", "n": 3})
    leaf = Repo(pod=clct.repo.pod).collection("c").changelog.leaf()
    assert leaf.info == {"author": "alice", "message": "first load", "meta": {"job": "eod", "n": 3}}
    assert body_keys(leaf)[-1] == "info"


def test_plain_write_has_no_metadata_and_the_upstream_layout(clct):
    (rev,) = (clct / "s").write({"k": [1], "v": [1.0]})
    assert body_keys(rev) == ["start", "stop", "digest", "length", "closed", "label", "embedded"]
    assert (rev.author, rev.message, rev.meta, rev.tags) == ("", "", {}, [])
    assert rev.read() == clct.commit().encode()


def test_default_author_order(monkeypatch):
    monkeypatch.setattr(settings, "author", None)
    monkeypatch.setenv("LAKOTA_AUTHOR", "from-env")
    assert default_author() == "from-env"
    monkeypatch.setattr(settings, "author", "from-settings")
    assert default_author() == "from-settings"
    monkeypatch.setattr(settings, "author", None)
    monkeypatch.delenv("LAKOTA_AUTHOR")
    user, _, host = default_author().partition("@")
    assert user and host
    assert make_info(message="m")["author"] == default_author()


def test_default_author_is_read_when_used(clct, monkeypatch):
    monkeypatch.setattr(settings, "author", "bob")
    (rev,) = (clct / "s").write({"k": [1], "v": [1.0]}, message="x")
    assert rev.author == "bob"


def test_message_alone_on_unchanged_data_makes_no_revision(clct):
    series = clct / "s"
    series.write({"k": [1], "v": [1.0]}, message="one")
    assert series.write({"k": [1], "v": [1.0]}, message="again") == []
    assert len(clct.changelog.log()) == 1


def test_multi_takes_the_metadata_and_writes_inside_refuse_it(clct):
    with clct.multi(message="batch", meta={"rows": 2}):
        (clct / "a").write({"k": [1], "v": [1.0]})
        with pytest.raises(ValueError, match="multi"):
            (clct / "b").write({"k": [1], "v": [1.0]}, message="inner")
        (clct / "b").write({"k": [2], "v": [2.0]})
    leaf = clct.changelog.leaf()
    assert (leaf.message, leaf.meta) == ("batch", {"rows": 2})
    assert clct.ls() == ["a", "b"]


def test_every_history_operation_takes_a_message(clct):
    series = clct / "s"
    series.write({"k": [1, 2, 3], "v": [1.0, 2.0, 3.0]})
    assert series.delete(2, 2, message="drop 2")[0].message == "drop 2"
    assert series.update({"k": [1], "v": [9.0]}, message="fix 1")[0].message == "fix 1"
    assert clct.rename("s", "t", message="rename")[0].message == "rename"
    assert clct.delete("t", message="gone")[0].message == "gone"
    other = clct.repo.create_collection(SCHEMA, "d")
    (clct / "u").write({"k": [1], "v": [1.0]})
    assert clct.clone(other, message="copy")[0].message == "copy"
    kv = clct.repo.create_collection(Schema.kv(key="str*", value="int"), "kv")
    assert (kv / "m").write({"key": ["a"], "value": [1]}, message="kv")[0].message == "kv"
    assert (kv / "m").delete("a", message="kv del")[0].message == "kv del"


def test_defrag_and_merge_name_themselves(clct):
    series = clct / "s"
    for i in range(6):
        series.write({"k": [i], "v": [float(i)]})
    (rev,) = clct.defrag(max_chunk=2)
    assert rev.message == "Defrag" and rev.author
    other = Repo(pod=clct.repo.pod) / "c"
    other.ls()
    clct.ls()
    (clct / "x").write({"k": [1], "v": [1.0]})
    (other / "y").write({"k": [1], "v": [1.0]})
    merged = (Repo(pod=clct.repo.pod) / "c").merge()
    assert {rev.message for rev in merged} == {"Merge 2 branches"}
    assert (Repo(pod=clct.repo.pod) / "c").ls() == ["s", "x", "y"]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"message": 3}, TypeError),
        ({"author": b"x"}, TypeError),
        ({"meta": {"k": [1]}}, TypeError),
        ({"meta": {1: "x"}}, TypeError),
        ({"meta": "x"}, TypeError),
        ({"meta": {"k": 2**70}}, ValueError),
        ({"message": "x" * 20_000}, ValueError),
        ({"meta": {str(i): i for i in range(100)}}, ValueError),
    ],
)
def test_bad_metadata_is_refused_before_writing(clct, kwargs, error):
    with pytest.raises(error):
        (clct / "s").write({"k": [1], "v": [1.0]}, **kwargs)
    assert clct.changelog.log() == []
