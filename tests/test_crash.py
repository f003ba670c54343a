"""Processes killed with SIGKILL in the middle of write, multi(), merge, defrag, trim and gc.

Each trial (bench/stress.py, which runs 100+ of them) prepares a repository, kills a
process running one operation, then checks that the repository opens, reads as the state
before or after the operation, passes `Repo.check()`, reaches the final state when the
operation runs again, and that a GC with ``timeout=0`` reclaims every orphan. Kill points
are deterministic here: just before the K-th storage change of the operation, or in the
middle of a file write (temporary file written, not published yet).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from lakota import Frame, Repo, Schema
from lakota.pod.file import TMP_PREFIX
from lakota.utils import digest_path, hextime, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import stress  # noqa: E402

SCHEMA = Schema(ts="int*", value="float")


def trials(tmp_path: Path, plan: list[tuple[str, str]], seed: int, base: str = "") -> list:
    base = base or str(tmp_path)
    figures = stress.crash_trials(lambda n: f"{base}/trial-{n}", plan, seed=seed)
    assert len(figures.trials) == len(plan) and figures.ok, "\n".join(figures.lines())
    return figures.trials


@pytest.mark.parametrize("operation", stress.OPERATIONS)
def test_killed_operation(tmp_path, operation):
    seed = stress.OPERATIONS.index(operation)
    done = trials(tmp_path, [(operation, "before"), (operation, "inside")], seed)
    assert all(trial.killed for trial in done)


def test_killed_after_a_random_delay(tmp_path):
    done = trials(tmp_path, [("write", "delay"), ("multi", "delay"), ("gc", "delay")], seed=7)
    assert len(done) == 3


def test_killed_operation_on_s3(s3_server, s3_bucket, tmp_path):
    """S3 moves files by copy then delete: a gc killed in between leaves both."""
    plan = [("gc", "before"), ("merge", "before")]
    done = trials(tmp_path, plan, seed=11, base=s3_server.uri(s3_bucket))
    assert all(trial.killed for trial in done)


def test_a_failing_trial_is_reported(tmp_path, monkeypatch):
    """A repository that does not recover must fail the trial, never pass silently."""
    monkeypatch.setattr(stress, "orphans", lambda repo: ["left-over"])
    figures = stress.crash_trials(lambda n: f"{tmp_path}/t{n}", [("write", "before")], seed=0)
    assert not figures.ok
    assert "gc left 1 orphan(s)" in "\n".join(figures.lines())


# --- regressions -----------------------------------------------------------------------------


def test_gc_purges_temporary_files_of_killed_writes(tmp_path, monkeypatch):
    """A write killed after staging its temporary file left it forever: ls and walk hide
    temporary files, so gc never saw them."""
    repo = Repo(str(tmp_path / "repo"))
    (repo.create_collection(SCHEMA, "clct") / "s").write({"ts": [1], "value": [1.0]})
    old = tmp_path / "repo" / "ab" / "cd" / f"{TMP_PREFIX}old"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"half a file")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    fresh = tmp_path / "repo" / f"{TMP_PREFIX}fresh"  # a write in progress
    fresh.write_bytes(b"being written")
    monkeypatch.setattr(settings, "timeout", 600)
    repo.gc()
    assert not old.exists() and fresh.exists()
    assert (repo / "clct" / "s").frame()["value"].tolist() == [1.0]


def test_interrupted_trim_leaves_a_single_head(tmp_path, monkeypatch):
    """trim deleted old revisions in parallel; interrupted, it left a revision cut from
    its descendants: a second head, so that trim refused to run again."""
    clct = Repo(str(tmp_path / "repo")).create_collection(SCHEMA, "clct")
    for key in range(8):
        (clct / "s").write({"ts": [key], "value": [key]})
    pod_type = type(clct.changelog.pod)
    real_rm, calls = pod_type.rm, []

    def rm_then_crash(pod, relpath=".", recursive=False, missing_ok=False):
        calls.append(relpath)
        if len(calls) == 4:
            raise OSError("disk gone")
        return real_rm(pod, relpath, recursive=recursive, missing_ok=missing_ok)

    monkeypatch.setattr(pod_type, "rm", rm_then_crash)
    with pytest.raises(OSError, match="disk gone"):
        clct.trim(before="fffffffffff")
    monkeypatch.undo()
    clct.refresh()
    assert len(clct.changelog.heads()) == 1
    assert clct.trim(before="fffffffffff") == 4
    assert len(clct.changelog.log()) == 1
    assert (clct / "s").frame()["ts"].tolist() == list(range(8))


def test_gc_removes_copies_left_by_an_interrupted_move(tmp_path, monkeypatch):
    """On S3 a move is a copy then a delete: a gc killed in between left a soft-deleted
    copy of a file still in use, which no later gc removed."""
    repo = Repo(str(tmp_path / "repo"))
    srs = repo.create_collection(SCHEMA, "clct") / "s"
    srs.write(stress.big(0))
    path = digest_path(srs.collection.commit().digest["value"][0])
    old_copy = f"{path}.{hextime(time.time() - 60)}"
    repo.pod.write(old_copy, repo.pod.read(path))
    assert "1 unreferenced data file(s)" in "\n".join(repo.check().notes)
    monkeypatch.setattr(settings, "timeout", 600)
    repo.gc()
    assert repo.pod.isfile(old_copy)  # a reader may still be reading it
    monkeypatch.setattr(settings, "timeout", 30)
    assert repo.gc() == (1, 0)
    assert not repo.pod.isfile(old_copy) and repo.pod.isfile(path)
    assert srs.frame() == Frame(SCHEMA, stress.big(0))
