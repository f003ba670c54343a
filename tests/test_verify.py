"""Which reads check data files against their digests (`settings.verify_digests`).

The default, ``"remote"``, checks what enters the machine (reads from S3, HTTP or through
a cache, and every pull or push) and trusts a local folder or memory, as Git does;
``"always"`` checks every read, ``"never"`` none; `repo.check()` checks everything.
A damaged file here is a *valid* encoding of other values, so that only the digest check
can tell (undecodable bytes are refused in every mode).
"""

from __future__ import annotations

import numpy
import pytest

from lakota import Repo, Schema
from lakota.errors import CorruptedDataError
from lakota.pod import CachePOD, FilePOD, MemPOD
from lakota.utils import digest_path, settings, verify_copies, verify_mode, verify_reads

SCHEMA = Schema(ts="int*", value="float")
ROWS = 500  # large enough for a data file of its own
LOCAL = ("memory", "file")
REMOTE = ("s3", "memory+s3", "file+s3", "http")


def values(seed: int) -> numpy.ndarray:
    return numpy.random.default_rng(seed).random(ROWS)


def write(repo: Repo, seed: int = 0):
    series = repo.create_collection(SCHEMA, "clct") / "s"
    series.write({"ts": numpy.arange(ROWS), "value": values(seed)})
    return series


def value_path(series) -> str:
    commit = series.collection.commit()
    digest = commit.digest["value"][0]
    assert digest not in commit.embedded
    return digest_path(digest)


def damage(repo: Repo, series) -> str:
    """Replace the file of column ``value`` by a valid encoding of other values."""
    path = value_path(series)
    repo.pod.write(path, SCHEMA["value"].codec.encode(values(seed=99)), force=True)
    return path


@pytest.fixture
def mode(monkeypatch: pytest.MonkeyPatch):
    return lambda value: monkeypatch.setattr(settings, "verify_digests", value)


def test_default_is_remote():
    assert settings.verify_digests == "remote"
    assert verify_mode() == "remote"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("remote", "remote"),
        ("always", "always"),
        ("never", "never"),
        (True, "always"),
        (False, "never"),
    ],
)
def test_modes_and_their_boolean_aliases(mode, value, expected):
    mode(value)
    assert verify_mode() == expected
    assert verify_copies() == (expected != "never")


@pytest.mark.parametrize("value", ["sometimes", "Remote", 1, None])
def test_an_unknown_mode_is_refused_by_name(mode, value):
    mode(value)
    with pytest.raises(ValueError, match="verify_digests must be one of remote, always, never"):
        verify_mode()


@pytest.mark.parametrize(
    "value, local, remote",
    [("remote", False, True), ("always", True, True), ("never", False, False)],
)
def test_which_storage_each_mode_checks(mode, tmp_path, value, local, remote):
    mode(value)
    assert verify_reads(MemPOD()) is local
    assert verify_reads(FilePOD(tmp_path)) is local
    assert verify_reads(CachePOD(local=FilePOD(tmp_path), remote=MemPOD())) is remote


@pytest.mark.pod_kinds(*LOCAL)
def test_local_reads_are_trusted_by_default_and_check_finds_the_damage(repo):
    series = write(repo)
    path = damage(repo, series)
    assert series.frame()["value"].tolist() == values(seed=99).tolist()
    problems = repo.check().problems
    assert [(p.kind, p.path) for p in problems] == [("corrupted", path)]


@pytest.mark.pod_kinds(*LOCAL)
def test_always_checks_local_reads(repo, mode):
    mode("always")
    series = write(repo)
    path = damage(repo, series)
    with pytest.raises(CorruptedDataError, match=f"{path} does not match its digest"):
        series.frame()


@pytest.mark.pod_kinds(*REMOTE)
@pytest.mark.parametrize("value", ["remote", "always"])
def test_remote_reads_are_checked(repo, reopen, mode, value):
    mode(value)
    series = write(repo)
    path = damage(repo, series)
    with pytest.raises(CorruptedDataError, match=f"{path} does not match its digest"):
        (reopen() / "clct" / "s").frame()


@pytest.mark.pod_kinds("s3", "http")
def test_never_checks_nothing(repo, reopen, mode):
    mode("never")
    series = write(repo)
    damage(repo, series)
    assert (reopen() / "clct" / "s").frame()["value"].tolist() == values(seed=99).tolist()
    assert not repo.check().ok  # check verifies whatever the setting


@pytest.mark.pod_kinds(*LOCAL)
@pytest.mark.parametrize("value", ["remote", "always"])
def test_a_pull_from_a_damaged_remote_is_refused(repo, tmp_path, mode, value):
    mode(value)
    path = damage(repo, write(repo))
    local = Repo(str(tmp_path / "local"))
    with pytest.raises(CorruptedDataError, match=f"{path} does not match its digest"):
        local.pull(repo)
    assert (local / "clct") is None or (local / "clct").ls() == []


@pytest.mark.pod_kinds(*LOCAL)
def test_a_push_to_a_remote_checks_what_it_sends(repo, tmp_path):
    path = damage(repo, write(repo))
    remote = Repo(str(tmp_path / "remote"))
    with pytest.raises(CorruptedDataError, match=path):
        repo.push(remote)


@pytest.mark.pod_kinds(*LOCAL)
def test_a_pull_with_never_copies_unchecked(repo, tmp_path, mode):
    mode("never")
    damage(repo, write(repo))
    local = Repo(str(tmp_path / "local"))
    local.pull(repo)
    assert (local / "clct" / "s").frame()["value"].tolist() == values(seed=99).tolist()
    assert not local.check().ok


@pytest.mark.pod_kinds(*LOCAL)
def test_a_sound_pull_still_works(repo, tmp_path):
    write(repo)
    local = Repo(str(tmp_path / "local"))
    local.pull(repo)
    assert (local / "clct" / "s").frame()["value"].tolist() == values(seed=0).tolist()
    assert local.check().ok
