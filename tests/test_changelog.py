"""The changelog: revision files, log order, leaf selection, time travel, digest checks."""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import CORE_KINDS

import lakota.changelog
from lakota import Schema
from lakota.changelog import Changelog, Revision, phi
from lakota.errors import CorruptedDataError
from lakota.utils import hexdigest, hextime

CORE = pytest.mark.pod_kinds(*CORE_KINDS)  # engine logic, not storage


@pytest.fixture
def changelog(repo) -> Changelog:
    return Changelog(repo.pod.cd("clog"))


def stamp(ms: int) -> str:
    return format(ms, "x").rjust(11, "0")


def node(ms: int, payload: bytes) -> str:
    return f"{stamp(ms)}-{hexdigest(payload)}"


def put(changelog: Changelog, parent: str, ms: int, payload: bytes) -> str:
    """Write a revision file by hand (as another writer would) and return its child."""
    child = node(ms, payload)
    changelog.pod.write(f"{parent}.{child}", payload)
    changelog.refresh()
    return child


def paths(revisions: list[Revision]) -> list[tuple[str, str]]:
    return [(rev.parent, rev.child) for rev in revisions]


@pytest.fixture
def fork(changelog) -> tuple[str, str, str]:
    """A root (at 1 ms) with two children: `a` at 2 ms and `b` at 3 ms."""
    root = put(changelog, phi, 1, b"root")
    return root, put(changelog, root, 2, b"a"), put(changelog, root, 3, b"b")


def test_empty_changelog(changelog):
    assert changelog.log() == []
    assert changelog.leaf() is None
    assert changelog.leafs() == [] and changelog.heads() == []


def test_commit_chains_on_the_leaf(changelog):
    revs = [changelog.commit(payload)[0] for payload in (b"one", b"two", b"three")]
    assert revs[0].parent == phi
    assert [rev.parent for rev in revs[1:]] == [rev.child for rev in revs[:-1]]
    assert changelog.log() == revs
    assert [rev.is_leaf for rev in changelog.log()] == [False, False, True]
    assert changelog.leaf() == revs[-1]
    assert [rev.read() for rev in changelog.log()] == [b"one", b"two", b"three"]
    assert all(rev.digests.child == hexdigest(rev.read()) for rev in revs)
    assert sorted(changelog) == sorted(rev.path for rev in revs)


@CORE
def test_revision_attributes(changelog):
    rev = changelog.commit(b"data")[0]
    assert rev.path == f"{phi}.{rev.child}"
    assert len(rev.path) == 105
    assert rev.epoch == rev.child[:11]
    assert rev.digests == ("0" * 40, hexdigest(b"data"))
    assert Revision.from_path(changelog, rev.path) == rev
    with pytest.raises(ValueError, match="Not a revision file name"):
        Revision.from_path(changelog, "README")
    leaf = changelog.leaf()
    assert repr(leaf) == f"<Revision {rev.path} *>"


@CORE
def test_same_payload_twice_is_a_no_op(changelog):
    first = changelog.commit(b"same")
    assert changelog.commit(b"same") == []
    assert changelog.log() == first


@CORE
def test_child_stamp_is_after_its_parent(changelog):
    future = put(changelog, phi, int(hextime(), 16) + 10_000, b"from the future")
    rev = changelog.commit(b"next")[0]
    assert rev.parent == future
    assert rev.epoch > future[:11]
    assert changelog.leaf() == rev


@CORE
def test_log_order_is_depth_first_oldest_child_first(changelog, fork):
    root, a, b = fork
    c = put(changelog, a, 4, b"c")
    assert paths(changelog.log()) == [(phi, root), (root, a), (a, c), (root, b)]
    assert [rev.is_leaf for rev in changelog.log()] == [False, False, True, True]
    assert changelog.leaf().child == b
    assert [rev.child for rev in changelog.leafs()] == [c, b]


@CORE
def test_newest_branch_is_the_leaf(changelog):
    root = put(changelog, phi, 1, b"root")
    put(changelog, root, 5, b"late")
    early = put(changelog, root, 3, b"early")
    put(changelog, early, 9, b"deep")
    assert changelog.leaf().child == node(5, b"late")


@CORE
def test_several_roots(changelog):
    first = put(changelog, node(1, b"gone"), 2, b"first")
    second = put(changelog, node(3, b"also gone"), 4, b"second")
    assert [rev.child for rev in changelog.log()] == [first, second]
    assert changelog.leaf().child == second


@CORE
def test_before_is_a_time_filter(changelog, fork):
    """SPEC §6 item 11: upstream cut the DFS order, here revisions are filtered by time."""
    root, a, b = fork
    put(changelog, a, 4, b"c")
    assert paths(changelog.log(before=stamp(4))) == [(phi, root), (root, a), (root, b)]
    assert changelog.leaf(before=stamp(4)).child == b
    assert changelog.leaf(before=stamp(3)).child == a
    assert changelog.leaf(before=stamp(1)) is None
    assert changelog.log(before=stamp(2))[0].is_leaf


@CORE
def test_before_accepts_datetimes(changelog):
    rev = changelog.commit(b"now")[0]
    assert changelog.leaf(before=datetime(2000, 1, 1)) is None
    assert changelog.leaf(before=datetime(2999, 1, 1)) == rev
    with pytest.raises(TypeError, match="before"):
        changelog.log(before=12)


def test_stray_files_are_ignored(changelog):
    """SPEC §6 item 18: any extra file used to break log()."""
    rev = changelog.commit(b"payload")[0]
    for name in ("README", "a.b.c", f"{rev.path}.tmp", "x" * 52 + "." + "y" * 52, "sub/file"):
        changelog.pod.write(name, b"noise")
    changelog.pod.write(f"{rev.child}.{rev.child}", b"payload")  # parent == child
    changelog.refresh()
    assert changelog.log() == [rev]
    assert changelog.leaf() == rev


@CORE
def test_merge_copies_with_the_same_child_keep_later_writes_visible(changelog, fork):
    """SPEC §6 item 1: two merge revisions sharing a child string hid every later write."""
    root, a, b = fork
    merged = put(changelog, a, 4, b"merged")
    assert put(changelog, b, 4, b"merged") == merged
    after = changelog.commit(b"after the merge")[0]
    assert after.parent == merged
    assert changelog.leaf() == after
    assert changelog.commit(b"and again")[0].parent == after.child
    assert len(changelog.heads()) == 1


def test_writes_after_same_child_merge_are_read(repo):
    clct = repo.create_collection(Schema(ts="int*", v="float"), "clct")
    series = clct / "s"
    base = series.write({"ts": [1], "v": [1.0]})[0]
    left = Changelog(clct.changelog.pod)
    series.write({"ts": [2], "v": [2.0]})
    payload = clct.changelog.leaf().read()
    other = put(left, base.child, int(base.epoch, 16) + 1, b"other branch")
    merge_ms = int(hextime(), 16) + 1
    put(left, clct.changelog.leaf().child, merge_ms, payload)
    put(left, other, merge_ms, payload)
    clct.refresh()
    series.write({"ts": [3], "v": [3.0]})
    assert series.frame()["ts"].tolist() == [1, 2, 3]
    clct.refresh()
    assert series.frame()["ts"].tolist() == [1, 2, 3]


@CORE
def test_heads_of_a_fork_and_after_merge(changelog, fork):
    root, a, b = fork
    assert [rev.child for rev in changelog.heads()] == [a, b]
    changelog.commit(b"merged", parents=[a, b])
    leafs = changelog.leafs()
    assert len(leafs) == 2 and {rev.digests.child for rev in leafs} == {hexdigest(b"merged")}
    assert len(changelog.heads()) == 1


@CORE
def test_commit_on_several_parents_uses_distinct_stamps(changelog, fork):
    root, a, b = fork
    revs = changelog.commit(b"merged", parents=[a, b])
    assert [rev.parent for rev in revs] == [a, b]
    assert revs[0].child != revs[1].child
    assert changelog.commit(b"merged", parents=[revs[0].child]) == []


def test_corrupted_revision_raises(changelog, monkeypatch):
    monkeypatch.setattr(lakota.changelog, "_read_retries", (0, 0, 0, 0))
    rev = changelog.commit(b"good payload")[0]
    changelog.pod.write(rev.path, b"bad payload", force=True)
    fresh = Changelog(changelog.pod)
    reads = []
    original = fresh.pod.read
    monkeypatch.setattr(fresh.pod, "read", lambda path: reads.append(path) or original(path))
    with pytest.raises(CorruptedDataError, match="does not match its digest"):
        fresh.leaf().read()
    assert len(reads) == 5


@CORE
def test_revision_read_retries_while_being_written(changelog, monkeypatch):
    monkeypatch.setattr(lakota.changelog, "_read_retries", (0, 0, 0, 0))
    rev = changelog.commit(b"payload")[0]
    fresh = Changelog(changelog.pod)
    answers = iter([b"", b"pay", b"payload"])
    monkeypatch.setattr(fresh.pod, "read", lambda path: next(answers))
    assert fresh.leaf() == rev
    assert fresh.leaf().read() == b"payload"


def test_pull_copies_missing_revisions(repo):
    local, remote = Changelog(repo.pod.cd("local")), Changelog(repo.pod.cd("remote"))
    for payload in (b"one", b"two", b"three"):
        remote.commit(payload)
    local.commit(b"one")
    copied = local.pull(remote)
    assert len(copied) == 2
    assert [rev.digests for rev in local.log()][-1] == remote.leaf().digests
    assert local.pull(remote) == []


@CORE
def test_shallow_pull_copies_leaves_only(repo):
    local, remote = Changelog(repo.pod.cd("local")), Changelog(repo.pod.cd("remote"))
    for payload in (b"one", b"two", b"three"):
        remote.commit(payload)
    assert local.pull(remote, shallow=True) == [remote.leaf().path]
    assert local.leaf().read() == b"three"
