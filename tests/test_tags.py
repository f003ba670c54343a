"""Tags, repository snapshots and reading at any point (`at=`)."""

from datetime import datetime

import numpy
import pytest

from lakota import Repo, Schema, refs
from lakota.errors import (
    InvalidLabelError,
    RevisionNotFoundError,
    TagConflictError,
    TagExistsError,
    TagNotFoundError,
)
from lakota.utils import settings

SCHEMA = Schema(k="int*", v="float")


@pytest.fixture
def clct():
    return Repo().create_collection(SCHEMA, "c")


def write(series, keys, value=0.0, **kwargs):
    keys = list(keys)
    return series.write({"k": keys, "v": [float(value)] * len(keys)}, **kwargs)


def test_tag_names_the_leaf_and_reads_come_back_to_it(clct):
    series = clct / "s"
    write(series, range(3), 1)
    tag = clct.tag("v1", message="first")
    write(series, range(2, 6), 2)
    assert (tag.name, tag.message, tag.revision) == ("v1", "first", clct.changelog.log()[0])
    assert tag.author
    assert series.frame(at="v1")["v"].tolist() == [1.0, 1.0, 1.0]
    assert series.frame()["v"].tolist() == [1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert [t.name for t in clct.tags()] == ["v1"]
    assert clct.changelog.log()[0].tags == ["v1"]
    assert clct.changelog.log()[1].tags == []


def test_existing_name_needs_force_and_untag(clct):
    write(clct / "s", [1])
    first = clct.tag("x")
    write(clct / "s", [2])
    with pytest.raises(TagExistsError, match="x"):
        clct.tag("x")
    assert clct.tags()[0].revision == first.revision
    moved = clct.tag("x", force=True)
    assert moved.revision == clct.changelog.leaf()
    clct.untag("x")
    assert clct.tags() == []
    with pytest.raises(TagNotFoundError):
        clct.untag("x")
    with pytest.raises(RevisionNotFoundError):
        (clct / "s").frame(at="x")


@pytest.mark.parametrize("name", ["", "a/b", "a b", "x" * 129, "é", None, 3, "a:b"])
def test_invalid_tag_names(clct, name):
    write(clct / "s", [1])
    with pytest.raises(InvalidLabelError):
        clct.tag(name)


def test_valid_tag_names(clct):
    write(clct / "s", [1])
    for name in ["a", "A.b_c-9", "x" * 128, "2024-01-31", "abcdef0123"]:
        clct.tag(name)
    assert [t.name for t in clct.tags()] == sorted(
        ["a", "A.b_c-9", "x" * 128, "2024-01-31", "abcdef0123"]
    )


def test_tags_sort_by_name_and_stay_per_collection(clct):
    other = clct.repo.create_collection(SCHEMA, "c/d")  # a label with a slash
    write(clct / "s", [1])
    write(other / "s", [1])
    clct.tag("b")
    clct.tag("a")
    other.tag("z")
    assert [t.name for t in clct.tags()] == ["a", "b"]
    assert [t.name for t in other.tags()] == ["z"]


def test_empty_collection_has_nothing_to_tag(clct):
    with pytest.raises(RevisionNotFoundError):
        clct.tag("x")


def test_at_accepts_revisions_ids_prefixes_and_instants(clct):
    series = clct / "s"
    revs = [write(series, [i], i)[0] for i in range(4)]
    second = revs[1]
    expected = [0.0, 1.0]
    assert series.frame(at=second)["v"].tolist() == expected
    assert series.frame(at=second.path)["v"].tolist() == expected
    assert series.frame(at=second.child)["v"].tolist() == expected
    assert series.frame(at=second.digests.child[:7])["v"].tolist() == expected
    assert series.frame(at=second.date)["v"].tolist() == expected  # inclusive
    assert series.frame(at=int(second.epoch, 16) / 1000)["v"].tolist() == expected
    stamp = numpy.datetime64(int(second.epoch, 16), "ms")
    assert series.frame(at=stamp)["v"].tolist() == expected
    assert series.frame(at=datetime(2000, 1, 1)).empty
    clct.tag("t", at=second.digests.child[:10])
    assert clct.tags()[0].revision == second


def test_at_errors(clct):
    series = clct / "s"
    write(series, [1])
    for bad in ["abc", "nope", "0000000"]:
        with pytest.raises(RevisionNotFoundError):
            series.frame(at=bad)
    with pytest.raises(TypeError):
        series.frame(at=[1])
    with pytest.raises(ValueError, match="before"):
        series.frame(at="x", before="1")


def test_ambiguous_prefix(clct, monkeypatch):
    series = clct / "s"
    revs = [write(series, [i])[0] for i in range(40)]
    by_prefix = {}
    for rev in revs:
        by_prefix.setdefault(rev.digests.child[:1], []).append(rev)
    shared = next(p for p, found in by_prefix.items() if len(found) > 1)
    with pytest.raises(RevisionNotFoundError, match="at least 7"):
        clct.revision(shared)
    monkeypatch.setattr(refs, "MIN_PREFIX", 1)
    with pytest.raises(RevisionNotFoundError, match="ambiguous"):
        clct.revision(shared)


def test_every_read_takes_at(clct):
    series = clct / "s"
    write(series, range(10), 1)
    clct.tag("t")
    write(series, range(5, 20), 2)
    write(clct / "other", [1])
    assert len(series.frame(at="t")) == 10
    assert series.df(at="t")["v"].tolist() == [1.0] * 10
    assert series.tail(2, at="t")["k"].tolist() == [8, 9]
    assert [len(f) for f in series.paginate(4, at="t")] == [4, 4, 2]
    assert series.count(at="t") == 10 and len(series) == 20
    assert clct.ls(at="t") == ["s"] and clct.ls() == ["other", "s"]
    assert series.frame(start=3, stop=6, at="t")["k"].tolist() == [3, 4, 5]


def test_tag_read_survives_many_writes_a_trim_and_a_gc(clct, monkeypatch):
    repo = clct.repo
    series = clct / "s"
    rng = numpy.random.default_rng(0)
    write(series, [0])
    series.write({"k": numpy.arange(2000), "v": rng.normal(size=2000)})  # its own data file
    clct.tag("keep")
    expected = series.frame()
    for _ in range(100):
        series.write({"k": numpy.arange(2000), "v": rng.normal(size=2000)})
    clct.defrag()
    assert clct.trim(before="fffffffffff") > 90
    monkeypatch.setattr(settings, "timeout", 0)
    repo.gc()
    repo.gc()
    fresh = Repo(pod=repo.pod) / "c"
    assert fresh.series("s").frame(at="keep") == expected
    assert len(fresh.changelog.log()) == 1  # the leaf; the tagged revision is archived
    assert not repo.check().problems


def test_repo_tag_is_a_snapshot(clct):
    repo = clct.repo
    other = repo.create_collection(SCHEMA, "d")
    repo.create_collection(SCHEMA, "empty")
    write(clct / "s", [1], 1)
    write(other / "s", [1], 1)
    snap = repo.tag("release", message="r1")
    write(clct / "s", [1], 2)
    write(other / "s", [1], 2)
    assert set(snap.revisions) == {"c", "d"}
    assert [t.name for t in repo.tags()] == ["release"]
    assert repo.tags()[0].message == "r1"
    assert (clct / "s").frame(at="release")["v"].tolist() == [1.0]
    assert (other / "s").frame(at="release")["v"].tolist() == [1.0]
    with pytest.raises(TagExistsError):
        repo.tag("release")
    clct.tag("mine")
    repo.untag("release")
    assert repo.tags() == []
    assert [t.name for t in clct.tags()] == ["mine"] and other.tags() == []
    with pytest.raises(TagNotFoundError):
        repo.untag("release")


def test_repo_tag_refuses_a_taken_collection_tag(clct):
    write(clct / "s", [1])
    clct.tag("x")
    with pytest.raises(TagExistsError, match="'c'"):
        clct.repo.tag("x")
    assert clct.repo.tags() == []


def test_tags_follow_rename_and_go_with_delete(clct):
    repo = clct.repo
    write(clct / "s", [1])
    clct.tag("x")
    repo.rename("c", "e")
    assert [t.name for t in (repo / "e").tags()] == ["x"]
    assert (repo / "e").series("s").frame(at="x")["k"].tolist() == [1]
    repo.delete("e")
    again = repo.create_collection(SCHEMA, "e")
    assert again.tags() == []


def test_tags_are_invisible_to_collection_listings(clct):
    write(clct / "s", [1])
    clct.tag("x")
    assert clct.repo.ls() == ["c"]
    assert Repo(pod=clct.repo.pod).ls() == ["c"]


def test_pull_and_push_carry_tags():
    src = Repo()
    clct = src.create_collection(SCHEMA, "c")
    write(clct / "s", [1], 1)
    clct.tag("a")
    write(clct / "s", [1], 2)
    src.tag("snap")
    dst = Repo()
    dst.pull(src)
    assert [t.name for t in (dst / "c").tags()] == ["a", "snap"]
    assert (dst / "c" / "s").frame(at="a")["v"].tolist() == [1.0]
    assert [t.name for t in dst.tags()] == ["snap"]
    other = Repo()
    src.push(other)
    assert [t.name for t in (other / "c").tags()] == ["a", "snap"]
    dst.pull(src)  # again: nothing new, no conflict
    assert len((dst / "c").tags()) == 2


def test_shallow_pull_copies_tagged_revisions():
    src = Repo()
    clct = src.create_collection(SCHEMA, "c")
    write(clct / "s", [1], 1)
    clct.tag("old")
    write(clct / "s", [1], 2)
    dst = Repo()
    dst.pull(src, shallow=True)
    assert (dst / "c" / "s").frame(at="old")["v"].tolist() == [1.0]


def test_tag_conflict_on_pull_changes_nothing():
    src = Repo()
    clct = src.create_collection(SCHEMA, "c")
    write(clct / "s", [1], 1)
    dst = Repo()
    dst.pull(src)
    write(clct / "s", [1], 2)
    clct.tag("x")
    (dst / "c").tag("x")  # same name, the older revision
    ours = (dst / "c").tags()[0].revision.path
    before = sorted(dst.pod.walk())
    with pytest.raises(TagConflictError) as info:
        dst.pull(src)
    assert ours in str(info.value) and clct.tags()[0].revision.path in str(info.value)
    assert sorted(dst.pod.walk()) == before
    with pytest.raises(TagConflictError):
        (dst / "c").pull(clct)
    assert sorted(dst.pod.walk()) == before


def test_lost_tag_target_reports_clearly(clct):
    write(clct / "s", [1])
    tag = clct.tag("x")
    write(clct / "s", [2])
    tag.revision.changelog.pod.rm(tag.revision.path)  # the archived copy
    clct.refresh()
    with pytest.raises(RevisionNotFoundError, match="no longer exists"):
        (clct / "s").frame(at="x")


# Retention: trim(before, keep_last, dry_run) and gc(dry_run)


def test_trim_keep_last_and_dry_run(clct):
    series = clct / "s"
    revs = [write(series, [i])[0] for i in range(6)]
    clct.tag("second", at=revs[1])
    plan = clct.trim(keep_last=2, dry_run=True)
    assert [rev.path for rev in plan.revisions] == [revs[i].path for i in range(4)]
    assert plan.files == [revs[i].path for i in range(4)]
    assert plan.bytes == sum(len(revs[i].read()) for i in range(4))
    assert len(clct.changelog.log()) == 6  # nothing deleted
    assert clct.trim(keep_last=2) == 4
    assert [rev.path for rev in clct.changelog.log()] == [revs[i].path for i in (4, 5)]
    assert clct.changelog.heads() == [revs[5]]  # the tagged revision left no stray head
    assert (clct / "s").frame(at="second")["k"].tolist() == [0, 1]  # from the tag archive
    assert clct.trim(before=revs[5].epoch, keep_last=0) == 1  # the head stays
    with pytest.raises(ValueError):
        clct.trim(keep_last=-1)


def test_gc_dry_run_changes_nothing(clct, monkeypatch):
    repo = clct.repo
    rng = numpy.random.default_rng(3)
    series = clct / "s"
    series.write({"k": numpy.arange(1000), "v": rng.normal(size=1000)})
    series.write({"k": numpy.arange(1000), "v": rng.normal(size=1000)})
    clct.trim(keep_last=1)
    files = sorted(repo.data_files())
    plan = repo.gc(dry_run=True)
    assert len(plan.soft) == 1 and plan.hard == [] and plan.bytes > 1000
    assert sorted(repo.data_files()) == files
    assert repo.gc() == (0, 1)
    monkeypatch.setattr(settings, "timeout", 0)
    plan = repo.gc(dry_run=True)
    assert len(plan.hard) == 1 and plan.soft == []
    assert repo.gc() == (1, 0)
    assert len(repo.data_files()) == 1


def test_untag_removes_the_archived_copy_unless_another_tag_needs_it(clct):
    write(clct / "s", [1])
    one = clct.tag("one")
    clct.tag("two")
    archive = one.revision.changelog.pod
    clct.untag("one")
    assert archive.isfile(one.revision.path)
    clct.untag("two")
    assert not archive.isfile(one.revision.path)


def test_repo_tag_conflict_on_pull():
    src, dst = Repo(), Repo()
    for repo, label in ((src, "c"), (dst, "d")):
        clct = repo.create_collection(SCHEMA, label)
        write(clct / "s", [1])
        repo.tag("r")
    with pytest.raises(TagConflictError, match="Repository tag 'r'"):
        dst.pull(src)
    assert dst.ls() == ["d"]  # nothing pulled
    (src / "c").tag("x")
    dst.untag("r")
    dst.pull(src)
    assert [t.name for t in (dst / "c").tags()] == ["r", "x"]


def test_a_read_at_a_tag_costs_what_a_leaf_read_costs(clct, monkeypatch):
    """Counted in storage calls: the tag store's listing replaces the collection's."""
    series = clct / "s"
    rng = numpy.random.default_rng(5)
    series.write({"k": numpy.arange(5000), "v": rng.normal(size=5000)})
    clct.tag("t")
    series.write({"k": numpy.arange(5000, 6000), "v": rng.normal(size=1000)})
    clct.tag("leaf")
    calls = []
    pod_type = type(clct.repo.pod)
    for name in ("ls", "read"):
        real = getattr(pod_type, name)
        monkeypatch.setattr(pod_type, name, _counting(real, name, calls))

    def cost(**kwargs):
        fresh = Repo(pod=clct.repo.pod) / "c"
        calls.clear()
        fresh.series("s").frame(**kwargs)
        return len(calls)

    cost(at="t")  # warm the tag rows cache, as any earlier read would
    assert cost(at="leaf") <= cost() + 1
    assert cost(at="t") <= cost()


def _counting(real, name, calls):
    def call(self, *args, **kwargs):
        calls.append(name)
        return real(self, *args, **kwargs)

    return call
