"""Repositories: the registry of collections, reopening, archive, sync and GC."""

from __future__ import annotations

import time

import numpy
import pytest
from conftest import CORE_KINDS

from lakota import Collection, Repo, Schema
from lakota.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidLabelError,
    MissingDataError,
)
from lakota.utils import digest_path, hextime, settings

SCHEMA = Schema(ts="timestamp*", value="float")
DATA = {"ts": ["2020-01-01", "2020-01-02", "2020-01-03"], "value": [1, 2, 3]}

CORE = pytest.mark.pod_kinds(*CORE_KINDS)  # engine logic, not storage


def registry_revisions(repo: Repo) -> int:
    repo.refresh()
    return len(repo.registry.changelog.log())


@CORE
def test_empty_repo(repo):
    assert repo.ls() == [] and list(repo) == []
    assert repo.collection("missing") is None and repo / "missing" is None
    assert "missing" not in repo


def test_create_collection(repo):
    clct = repo.create_collection(SCHEMA, "temperature")
    assert isinstance(clct, Collection)
    assert clct.label == "temperature" and clct.schema == SCHEMA
    assert repo.ls() == ["temperature"] and "temperature" in repo
    assert (repo / "temperature").path == clct.path
    assert len(clct.path.split("/")) == 3 and len(clct.path.replace("/", "")) == 40
    meta = repo.registry.series("collection").frame()["meta"][0]
    assert meta == {"path": clct.path, "schema": SCHEMA.dumps()}


@CORE
def test_create_several_collections_in_one_revision(repo):
    found = repo.create_collection(SCHEMA, "b", " a ", "c")
    assert [clct.label for clct in found] == ["b", "a", "c"]
    assert repo.ls() == ["a", "b", "c"]
    assert len({clct.path for clct in found}) == 3
    assert registry_revisions(repo) == 1


def test_unusual_labels(repo, reopen):
    labels = ["foo bar", "é", "$", "abc+abc", "a/b"]
    for clct in repo.create_collection(SCHEMA, *labels):
        (clct / clct.label).write(DATA)
    fresh = reopen()
    assert fresh.ls() == sorted(labels)
    for label in labels:
        assert (fresh / label / label).frame()["value"].tolist() == [1, 2, 3]


def test_duplicate_collection_raises(repo):
    first = repo.create_collection(SCHEMA, "x")
    with pytest.raises(CollectionExistsError, match="'x' already exists"):
        repo.create_collection(SCHEMA, "x")
    with pytest.raises(ValueError):
        repo.create_collection(Schema(k="int*"), "y", "x")
    assert repo.ls() == ["x"]
    again = repo.create_collection(Schema(k="int*"), "x", "y", raise_if_exists=False)
    assert again[0].path == first.path and again[0].schema == SCHEMA
    assert repo.ls() == ["x", "y"]


@CORE
@pytest.mark.parametrize("label", ["", "   ", "\n"])
def test_empty_collection_label_raises(repo, label):
    with pytest.raises(InvalidLabelError, match="Invalid label"):
        repo.create_collection(SCHEMA, label)
    assert repo.ls() == []


@CORE
def test_create_collection_bad_arguments(repo):
    """SPEC §6 item 12: upstream asserted on a non-Schema argument."""
    with pytest.raises(TypeError, match="Schema"):
        repo.create_collection({"ts": "int*"}, "x")
    with pytest.raises(TypeError, match="string"):
        repo.create_collection(SCHEMA, 3)
    with pytest.raises(ValueError, match="at least one label"):
        repo.create_collection(SCHEMA)


def test_delete_collections(repo):
    a, _ = repo.create_collection(SCHEMA, "a", "b")
    (a / "s").write(DATA)
    assert repo.pod.isdir(a.path)
    repo.delete("a", "unknown")
    assert repo.ls() == ["b"]
    assert not repo.pod.isdir(a.path)
    repo.delete("unknown")
    assert repo.ls() == ["b"]
    assert repo.create_collection(SCHEMA, "a").path != a.path


def test_rename_collection(repo, reopen):
    clct = repo.create_collection(SCHEMA, "old")
    (clct / "s").write(DATA)
    repo.rename("old", " new ")
    assert repo.ls() == ["new"]
    renamed = reopen() / "new"
    assert renamed.path == clct.path
    assert (renamed / "s").frame()["value"].tolist() == [1, 2, 3]


@CORE
def test_rename_collection_errors(repo):
    repo.create_collection(SCHEMA, "a", "b")
    with pytest.raises(CollectionNotFoundError, match="missing"):
        repo.rename("missing", "c")
    with pytest.raises(CollectionExistsError, match="'b'"):
        repo.rename("a", "b")
    with pytest.raises(InvalidLabelError):
        repo.rename("a", "")
    assert repo.ls() == ["a", "b"]


@CORE
def test_archive(repo):
    clct = repo.create_collection(SCHEMA, "temperature")
    archive = repo.archive(clct)
    assert archive.label == "temperature" and archive.schema == SCHEMA
    assert archive.path != clct.path
    assert repo.archive(clct).path == archive.path
    assert repo.ls() == ["temperature"]
    assert [c.label for c in repo.search(namespace="archive")] == ["temperature"]


def test_fresh_repo_object_sees_everything(repo, reopen):
    clct, kv = repo.create_collection(SCHEMA, "clct", "other")
    with clct.multi():
        (clct / "a").write(DATA)
        (clct / "b").write(DATA)
    (clct / "a").delete("2020-01-02", "2020-01-02")
    kv_clct = repo.create_collection(Schema.kv(key="str*", val="O"), "kv")
    (kv_clct / "main").write({"key": ["x"], "val": [{"nested": [1, 2]}]})
    fresh = reopen()
    assert fresh.ls() == ["clct", "kv", "other"]
    assert (fresh / "clct").ls() == ["a", "b"]
    assert (fresh / "clct" / "a").frame()["value"].tolist() == [1, 3]
    assert (fresh / "clct" / "b").frame()["value"].tolist() == [1, 2, 3]
    assert (fresh / "kv" / "main").frame()["val"].tolist() == [{"nested": [1, 2]}]
    assert (fresh / "clct").changelog.log() == clct.changelog.log()


def test_refresh_sees_collections_made_by_another_repo_object(repo, reopen):
    other = reopen()
    assert other.ls() == []
    repo.create_collection(SCHEMA, "new")
    other.refresh()
    assert other.ls() == ["new"]


def _next_millisecond() -> None:
    """Let the revision clock tick, so that the next write is the later leaf.

    Two writes in the same millisecond from different Repo objects tie on time, and
    their order then follows their digests, like in lakota 0.7.1.
    """
    start = hextime()
    while hextime() == start:
        time.sleep(0.0005)


@CORE
def test_concurrent_creations_merge(repo, reopen):
    other = reopen()
    other.registry.changelog.log()
    repo.create_collection(SCHEMA, "mine")
    _next_millisecond()
    other.create_collection(SCHEMA, "theirs")
    repo.refresh()
    assert repo.ls() == ["theirs"]
    assert repo.merge()
    assert repo.ls() == ["mine", "theirs"]


def test_push_and_pull(repo, tmp_path):
    clct = repo.create_collection(SCHEMA, "clct")
    (clct / "s").write(
        {"ts": numpy.arange(2000), "value": numpy.random.default_rng(0).random(2000)}
    )
    remote = Repo(str(tmp_path / "remote"))
    repo.push(remote)
    assert remote.ls() == ["clct"]
    pushed = remote / "clct" / "s"
    assert pushed.frame() == (clct / "s").frame()
    (remote / "clct" / "s").write({"ts": [5000], "value": [1.0]})
    repo.pull(remote, "clct")
    clct.refresh()
    assert len(clct / "s") == 2001
    with pytest.raises(CollectionNotFoundError):
        repo.pull(remote, "missing")
    with pytest.raises(TypeError, match="Repo"):
        repo.push("not a repo")


@CORE
def test_pull_refuses_a_different_schema(repo, tmp_path):
    """SPEC §6 item 5: schemas differing only by an extra column were accepted."""
    repo.create_collection(SCHEMA, "clct")
    remote = Repo(str(tmp_path / "remote"))
    wider = Schema(ts="timestamp*", value="float", extra="int")
    (remote.create_collection(wider, "clct") / "s").write({**DATA, "extra": [1, 2, 3]})
    with pytest.raises(ValueError, match="Unable to sync"):
        repo.pull(remote)
    assert (repo / "clct").schema == SCHEMA


def test_gc_soft_then_hard_deletes_unreferenced_files(repo, monkeypatch):
    keep, drop = repo.create_collection(SCHEMA, "keep", "drop")
    big = {"ts": numpy.arange(1000), "value": numpy.random.default_rng(1).random(1000)}
    (keep / "s").write(big)
    (drop / "s").write({**big, "value": big["value"] + 1})
    dropped = drop.commit().digest["value"][0]
    repo.delete("drop")
    assert repo.gc() == (0, 1)
    assert not repo.pod.isfile(digest_path(dropped))
    assert repo.gc() == (0, 0)
    monkeypatch.setattr(settings, "timeout", -10)
    assert repo.gc() == (1, 0)
    assert (repo / "keep" / "s").frame()["value"].tolist() == big["value"].tolist()


def test_soft_deleted_data_is_read_and_restored(repo):
    srs = repo.create_collection(SCHEMA, "clct") / "s"
    values = numpy.random.default_rng(2).random(1000)
    srs.write({"ts": numpy.arange(1000), "value": values})
    path = digest_path(srs.collection.commit().digest["value"][0])
    repo.pod.mv(path, f"{path}.{hextime()}")
    assert srs.frame()["value"].tolist() == values.tolist()
    assert repo.gc() == (0, 0)
    assert repo.pod.isfile(path)
    repo.pod.rm(path)
    with pytest.raises(MissingDataError, match="missing"):
        srs.frame()
