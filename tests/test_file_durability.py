"""With `settings.fsync`, a FilePOD makes new names durable: after the data of a file,
the folder that holds its new name, and the parent of every folder it creates."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lakota import Repo, Schema
from lakota.pod.file import FilePOD
from lakota.utils import settings


@pytest.fixture
def synced(monkeypatch) -> list[str]:
    """What `os.fsync` was called on: a folder's path, or "file" for a file."""
    calls: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        else:
            calls.append("file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    monkeypatch.setattr(settings, "fsync", True)
    return calls


def real(path: Path) -> str:
    return os.path.realpath(path)


@pytest.mark.parametrize("force", [False, True])
def test_a_write_syncs_the_file_then_its_folder(tmp_path, synced, force):
    (tmp_path / "a").mkdir()
    FilePOD(tmp_path).write("a/file", b"data", force=force)
    assert synced == ["file", real(tmp_path / "a")]


def test_new_folders_are_synced_in_their_parents(tmp_path, synced):
    FilePOD(tmp_path).write("a/b/file", b"data")
    assert synced == [real(tmp_path), real(tmp_path / "a"), "file", real(tmp_path / "a" / "b")]


def test_a_move_syncs_both_folders(tmp_path, synced):
    pod = FilePOD(tmp_path)
    pod.write("a/file", b"data")
    synced.clear()
    pod.mv("a/file", "b/file")
    assert synced == [real(tmp_path), real(tmp_path / "b"), real(tmp_path / "a")]


def test_a_write_that_finds_the_file_there_syncs_nothing(tmp_path, synced):
    pod = FilePOD(tmp_path)
    pod.write("file", b"data")
    synced.clear()
    assert pod.write("file", b"data") is None
    assert synced == []


def test_a_commit_syncs_the_folder_of_its_revision(tmp_path, synced):
    repo = Repo(str(tmp_path / "repo"))
    coll = repo.create_collection(Schema(idx="int*", v="float"), "c")
    synced.clear()
    coll.series("s").write({"idx": [1, 2], "v": [1.0, 2.0]})
    revisions = [path for path in repo.pod.walk() if path.count("/") == 3]
    newest = tmp_path / "repo" / max(revisions, key=lambda path: path.rsplit("/", 1)[1])
    assert real(newest.parent) in synced


def test_without_fsync_nothing_is_synced(tmp_path, synced, monkeypatch):
    monkeypatch.setattr(settings, "fsync", False)
    pod = FilePOD(tmp_path)
    pod.write("a/b/file", b"data")
    pod.mv("a/b/file", "c/file")
    assert synced == []
