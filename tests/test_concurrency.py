"""Processes writing, reading, merging and collecting garbage on one repository at once.

The scenarios live in bench/stress.py, which runs them at full size (8 writers x 50
commits, 50 GC rounds...); here they run small. Deterministic regression tests for the
bugs they found follow.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy
import pytest
from conftest import CORE_KINDS

from lakota import Schema
from lakota.utils import hextime, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import stress  # noqa: E402

SCHEMA = Schema(ts="int*", value="float")
CORE = pytest.mark.pod_kinds(*CORE_KINDS)


def test_concurrent_writers_on_a_folder(tmp_path):
    figures = stress.concurrent_writers(str(tmp_path / "repo"), writers=4, commits=10)
    assert figures.errors == []
    assert figures.branches_merged > 1  # the writers did fork the history
    assert figures.visible == figures.attempted == 40
    assert figures.reads >= 2 and figures.stale_reads == 0


def test_concurrent_writers_on_s3(s3_server, s3_bucket):
    figures = stress.concurrent_writers(s3_server.uri(s3_bucket), writers=3, commits=5)
    assert figures.errors == []
    assert figures.visible == figures.attempted == 15
    assert figures.reads >= 2 and figures.stale_reads == 0


def test_concurrent_collection_creation_and_deletion(tmp_path):
    figures = stress.registry_churn(str(tmp_path / "repo"), processes=3, rounds=4)
    assert figures.errors == []
    assert figures.present == figures.created == 24
    assert figures.deleted == 24 and figures.resurrected == 0
    assert figures.shared_visible == figures.shared_writes == 12


def test_gc_while_writing(tmp_path):
    figures = stress.gc_while_writing(str(tmp_path / "repo"), writers=2, rounds=10, timeout=2.0)
    assert figures.errors == []
    assert figures.problems == []  # every file a revision refers to is still there
    assert figures.commits > 0 and figures.reads > 0
    assert figures.soft_deleted > 0 and figures.hard_deleted > 0  # gc did collect


def test_figures_flag_lost_writes_and_stale_reads():
    """The scenario figures must fail when a write is missing or a read is stale."""
    good = stress.WriterFigures("file", 2, 2, attempted=4, visible=4, reads=3)
    assert good.ok
    assert not stress.WriterFigures("file", 2, 2, attempted=4, visible=3).ok
    assert not stress.WriterFigures("file", 2, 2, attempted=4, visible=4, stale_reads=1).ok
    assert "visible after merge: 4" in "\n".join(good.lines())


# --- regressions -----------------------------------------------------------------------------


def frame(seed: int, rows: int = 1000) -> dict:
    return {"ts": numpy.arange(rows), "value": numpy.random.default_rng(seed).random(rows)}


@CORE
def test_gc_keeps_collections_of_unmerged_registry_branches(repo, reopen, monkeypatch):
    """gc read the collections of the registry leaf only, so the data of a collection
    created on a concurrent (not yet merged) registry branch was deleted."""
    reopen().create_collection(SCHEMA, "base")
    other = reopen()
    other.registry.changelog.log()
    repo.registry.changelog.log()
    (repo.create_collection(SCHEMA, "mine") / "s").write(frame(1))
    (other.create_collection(SCHEMA, "theirs") / "s").write(frame(2))
    monkeypatch.setattr(settings, "timeout", 0)
    collector = reopen()
    assert len(collector.ls()) == 2  # one of the new collections is hidden
    assert collector.gc() == (0, 0) and collector.gc() == (0, 0)
    collector.merge()
    assert collector.ls() == ["base", "mine", "theirs"]
    assert (collector / "mine" / "s").frame()["value"].tolist() == frame(1)["value"].tolist()
    assert (collector / "theirs" / "s").frame()["value"].tolist() == frame(2)["value"].tolist()


@CORE
def test_create_collection_returns_it_when_another_branch_is_the_leaf(
    repo, reopen, monkeypatch
):
    """create_collection read the registry leaf back after writing; when a concurrent
    writer's branch sorted last, the new collection was not there and None came back."""
    other = reopen()
    other.registry.changelog.log()
    repo.create_collection(SCHEMA, "first")
    slow_clock = lambda ts=None: hextime(time.time() - 60)  # noqa: E731
    monkeypatch.setattr("lakota.changelog.hextime", slow_clock)
    created = other.create_collection(SCHEMA, "b", "a")  # forks the registry, sorts first
    monkeypatch.undo()
    assert other.ls() == ["first"]  # the leaf is the other branch
    assert [clct.label for clct in created] == ["b", "a"]
    assert all(clct.schema == SCHEMA for clct in created)
    (created[0] / "s").write(frame(3, rows=3))
    other.merge()
    assert other.ls() == ["a", "b", "first"]
    assert (other / "b").path == created[0].path


@CORE
def test_merge_keeps_keys_deleted_by_an_earlier_head_deleted(repo, reopen):
    """Merging several heads, a run of keys changed by a later head was rewritten as a
    whole, so a key inside it that an earlier head had deleted came back."""
    srs = repo.create_collection(SCHEMA, "clct") / "s"
    srs.write({"ts": [10, 20, 30], "value": [1, 2, 3]})
    branches = [reopen() / "clct" for _ in range(3)]
    for branch in branches:
        branch.changelog.log()  # every branch starts from the same leaf
    (branches[0] / "s").write({"ts": [15], "value": [1.5]})
    time.sleep(0.002)  # heads merge in age order
    (branches[1] / "s").delete(20, 20)
    time.sleep(0.002)
    (branches[2] / "s").write({"ts": [19], "value": [1.9]})
    (branches[2] / "s").write({"ts": [21], "value": [2.1]})
    merged = reopen() / "clct"
    assert len(merged.changelog.heads()) == 3
    merged.merge()
    result = (merged / "s").frame()
    assert result["ts"].tolist() == [10, 15, 19, 21, 30]
    assert result["value"].tolist() == [1, 1.5, 1.9, 2.1, 3]


@CORE
def test_same_label_created_twice_at_once_keeps_both_histories(repo, reopen):
    """Two processes creating one label at the same time get two folders; the merged
    registry kept one of them, and the writes made in the other one were lost."""
    other = reopen()
    for each in (repo, other):
        each.registry.changelog.log()  # both start from the same registry leaf
    mine = repo.create_collection(SCHEMA, "same", raise_if_exists=False)
    theirs = other.create_collection(SCHEMA, "same", raise_if_exists=False)
    assert mine.path != theirs.path
    (mine / "s").write({"ts": [1, 2], "value": [1.0, 2.0]})
    (theirs / "s").write({"ts": [3], "value": [3.0]})
    (theirs / "t").write({"ts": [4], "value": [4.0]})
    merger = reopen()
    merger.merge()
    kept = merger / "same"
    assert merger.ls() == ["same"] and kept.ls() == ["s", "t"]
    assert (kept / "s").frame()["ts"].tolist() == [1, 2, 3]
    assert (kept / "t").frame()["value"].tolist() == [4.0]
    assert not repo.pod.isdir({mine.path, theirs.path}.difference([kept.path]).pop())
    assert merger.check().ok


@CORE
def test_gc_reading_revisions_that_a_writer_trims(repo, reopen):
    """gc lists a collection's revisions, then reads them: one trimmed in between made gc
    fail with FileNotFoundError."""
    clct = repo.create_collection(SCHEMA, "clct")
    for seed in range(4):
        (clct / "s").write(frame(seed))
    seen_by_gc = reopen() / "clct"
    seen_by_gc.changelog.log()  # listed before the trim
    assert clct.trim(before="fffffffffff") == 3
    head = clct.commit()
    expected = {d for d in head.digests() if d not in head.embedded}
    assert set(seen_by_gc.digests()) == expected


@pytest.mark.pod_kinds("file")
def test_merge_command_keeps_both_histories_of_a_label(repo, reopen, capsys, monkeypatch):
    """`lakota merge` (no argument) merged the registry without `Repo.merge`'s fold."""
    from lakota.cli import main

    monkeypatch.delenv("LAKOTA_REPO", raising=False)
    other = reopen()
    for each in (repo, other):
        each.registry.changelog.log()
    (repo.create_collection(SCHEMA, "same") / "s").write({"ts": [1], "value": [1.0]})
    (other.create_collection(SCHEMA, "same") / "s").write({"ts": [2], "value": [2.0]})
    assert main(["-r", str(repo.pod.path), "merge"]) == 0
    assert "registry: merged" in capsys.readouterr().out
    assert (reopen() / "same" / "s").frame()["ts"].tolist() == [1, 2]
