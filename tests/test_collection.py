"""Collections: series access, multi() batches, delete/rename/clone, merge, trim, defrag."""

from __future__ import annotations

import threading

import numpy
import pytest
from conftest import CORE_KINDS, check_invariants

from lakota import Schema
from lakota.changelog import phi
from lakota.errors import InvalidLabelError
from lakota.schema import Codec
from lakota.series import KVSeries, Series
from lakota.utils import settings

SCHEMA = Schema(ts="int*", value="float")

CORE = pytest.mark.pod_kinds(*CORE_KINDS)  # engine logic, not storage


@pytest.fixture
def clct(repo):
    return repo.create_collection(SCHEMA, "clct")


def write(clct, label, keys, values=None, **kwargs):
    values = keys if values is None else values
    return (clct / label).write({"ts": keys, "value": values}, **kwargs)


def content(clct, label) -> list[tuple]:
    frm = (clct / label).frame()
    return list(zip(frm["ts"].tolist(), frm["value"].tolist()))


def nb_revisions(clct) -> int:
    clct.refresh()
    return len(clct.changelog.log())


# --- series access ------------------------------------------------------------------------


@CORE
def test_series_access(clct, repo):
    srs = clct / "  Paris "
    assert isinstance(srs, Series) and not isinstance(srs, KVSeries)
    assert srs.label == "Paris" and srs.collection is clct
    assert nb_revisions(clct) == 0
    kv = repo.create_collection(Schema.kv(key="str*", val="int"), "kv")
    assert isinstance(kv.series("x"), KVSeries)


@CORE
@pytest.mark.parametrize("label", ["", "   ", "\t"])
def test_empty_series_label_raises(clct, label):
    with pytest.raises(InvalidLabelError, match="empty"):
        clct.series(label)


def test_ls_iter_and_contains(clct):
    assert clct.ls() == []
    for label in ("b", "a", "c"):
        write(clct, label, [1, 2])
    write(clct, "a", [3])
    assert clct.ls() == ["a", "b", "c"]
    assert [srs.label for srs in clct] == ["a", "b", "c"]
    assert "b" in clct and "z" not in clct


# --- multi --------------------------------------------------------------------------------


def test_multi_makes_one_revision(clct):
    write(clct, "base", [0])
    with clct.multi() as batch:
        assert write(clct, "a", [1, 2]) is None
        write(clct, "b", [3])
        write(clct, "a", [2], [20])
        assert clct.ls() == ["base"]
    assert nb_revisions(clct) == 2
    assert batch.revs and batch.revs[0].parent == clct.changelog.log()[0].child
    assert content(clct, "a") == [(1, 1), (2, 20)]
    assert content(clct, "b") == [(3, 3)]
    assert clct.batch is None


@CORE
def test_empty_multi_commits_nothing(clct):
    with clct.multi() as batch:
        pass
    assert batch.revs == [] and nb_revisions(clct) == 0


def test_failed_multi_leaves_the_collection_usable(clct):
    """SPEC §6 item 7: upstream kept the batch, so every later write was silently dropped."""
    write(clct, "s", [1])
    with pytest.raises(RuntimeError, match="boom"):
        with clct.multi():
            write(clct, "s", [2])
            raise RuntimeError("boom")
    assert clct.batch is None
    assert nb_revisions(clct) == 1 and content(clct, "s") == [(1, 1)]
    assert write(clct, "s", [3])
    assert content(clct, "s") == [(1, 1), (3, 3)]


def test_reads_inside_multi_see_files_still_being_written(clct):
    """Data files of a batch are written in the background; an update reads them."""
    keys = list(range(5000))  # random values: too large to be embedded
    values = [((k * 7919) % 10007) / 3 for k in keys]
    with clct.multi():
        write(clct, "s", keys, values)
        (clct / "s").update({"ts": [10, 11], "value": [-1.0, -2.0]})
        write(clct, "t", keys, values)
    got = content(clct, "s")
    assert got[:10] == list(zip(keys[:10], values[:10]))
    assert got[10:12] == [(10, -1.0), (11, -2.0)]
    assert got[12:] == list(zip(keys[12:], values[12:]))
    assert content(clct, "t") == list(zip(keys, values))


def test_a_failed_background_write_fails_the_batch(clct, monkeypatch):
    pod_type = type(clct.pod)
    real_write = pod_type.write

    def failing_write(self, path, data, force=False):
        if len(data) > 1000:
            raise OSError("disk full")
        return real_write(self, path, data, force=force)

    write(clct, "s", [1])
    monkeypatch.setattr(pod_type, "write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        with clct.multi():
            write(clct, "s", list(range(2, 5000)), [k / 3 for k in range(2, 5000)])
    monkeypatch.setattr(pod_type, "write", real_write)
    assert nb_revisions(clct) == 1
    assert content(clct, "s") == [(1, 1)]


def test_buffers_reused_after_a_write_in_a_batch_do_not_change_it(clct):
    """Numeric pages are staged after `write` returns: they must not see later changes."""
    keys = numpy.arange(3000)
    values = numpy.zeros(3000)
    with clct.multi():
        for label in ("a", "b", "c"):
            values[:] = ord(label)
            write(clct, label, keys, values)
        values[:] = -1
    for label in ("a", "b", "c"):
        assert {value for _, value in content(clct, label)} == {float(ord(label))}


def test_a_failed_staging_in_a_batch_commits_nothing(clct, monkeypatch):
    write(clct, "s", [1])
    real_encode = Codec.encode

    def failing_encode(self, arr, with_digest=False):
        if len(arr) == 2000:
            raise MemoryError("no room")
        return real_encode(self, arr, with_digest=with_digest)

    monkeypatch.setattr(Codec, "encode", failing_encode)
    with pytest.raises(MemoryError, match="no room"):
        with clct.multi():
            write(clct, "t", list(range(10)))
            write(clct, "u", list(range(2000)))
            write(clct, "v", list(range(10)))
    monkeypatch.setattr(Codec, "encode", real_encode)
    assert clct.batch is None
    assert nb_revisions(clct) == 1
    assert clct.ls() == ["s"]
    assert write(clct, "t", [5])
    assert content(clct, "t") == [(5, 5)]


@pytest.mark.parametrize("threaded", [True, False])
def test_batches_give_the_same_commit_with_or_without_threads(repo, monkeypatch, threaded):
    monkeypatch.setattr(settings, "threaded", threaded)
    clct = repo.create_collection(SCHEMA, "clct")
    with clct.multi():
        for i in range(50):
            write(clct, f"s{i % 7}", list(range(i * 10, i * 10 + 300)), [i] * 300)
    clct.refresh()
    rows = {label: content(clct, label) for label in clct.ls()}
    expected = {}
    for i in range(50):
        label = f"s{i % 7}"
        kept = [r for r in expected.get(label, []) if not i * 10 <= r[0] < i * 10 + 300]
        expected[label] = sorted(kept + [(k, float(i)) for k in range(i * 10, i * 10 + 300)])
    assert rows == expected


def test_many_series_in_one_batch(clct):
    with clct.multi():
        for i in range(300):
            write(clct, f"s{i:03}", [i, i + 1], [i / 2, i / 3])
    assert nb_revisions(clct) == 1
    assert clct.ls() == [f"s{i:03}" for i in range(300)]
    assert content(clct, "s123") == [(123, 61.5), (124, 41.0)]


@CORE
def test_nested_multi_joins_the_outer_batch(clct):
    """SPEC §6 item 7: a nested multi() deadlocked upstream."""
    with clct.multi() as outer:
        write(clct, "a", [1])
        with clct.multi() as inner:
            write(clct, "b", [2])
        assert inner is outer and nb_revisions(clct) == 0
    assert nb_revisions(clct) == 1
    assert clct.ls() == ["a", "b"]


@CORE
def test_multi_root_commits_on_phi(clct):
    write(clct, "old", [1])
    with clct.multi(root=True) as batch:
        write(clct, "new", [2])
    assert batch.revs[0].parent == phi
    assert clct.ls() == ["new"]


@CORE
def test_multi_is_per_thread(clct):
    """SPEC §6 item 7: the batch belonged to the collection object, so another thread's
    writes went into it."""
    inside, written = threading.Event(), threading.Event()
    results = {}

    def other_thread():
        inside.wait(5)
        results["revs"] = write(clct, "other", [9])
        written.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with clct.multi():
        write(clct, "mine", [1])
        inside.set()
        assert written.wait(5)
        assert clct.ls() == ["other"]
    thread.join(5)
    assert len(results["revs"]) == 1
    assert clct.ls() == ["mine", "other"]
    assert nb_revisions(clct) == 2


@CORE
def test_defrag_inside_multi_keeps_pending_writes(clct):
    """SPEC §6 item 7: defrag() inside multi() deadlocked upstream."""
    for start in range(0, 10, 2):
        write(clct, "s", [start, start + 1])
    with clct.multi():
        write(clct, "s", [4], [40])
        clct.defrag(max_chunk=2)
    assert content(clct, "s") == [(v, 40 if v == 4 else v) for v in range(10)]
    assert len(list(clct.commit().match("s"))) == 1


# --- delete, rename, clone ----------------------------------------------------------------


@CORE
def test_delete_series(clct):
    assert clct.delete("a") is None
    write(clct, "a", [1])
    write(clct, "b", [2])
    write(clct, "c", [3])
    revs = clct.delete("a", "c", "unknown")
    assert len(revs) == 1
    assert clct.ls() == ["b"] and content(clct, "a") == []
    assert clct.delete("a") == []


@CORE
def test_rename_series_overwrites_the_target(clct):
    write(clct, "from", [2, 3, 4], [20, 30, 40])
    write(clct, "to", [1, 2, 3, 4, 5])
    revs = clct.rename("from", " to ")
    assert len(revs) == 1
    assert clct.ls() == ["to"]
    assert content(clct, "to") == [(1, 1), (2, 20), (3, 30), (4, 40), (5, 5)]
    check_invariants(clct.commit(), clct.pod)


@CORE
def test_rename_missing_series_raises(clct):
    with pytest.raises(KeyError, match="missing"):
        clct.rename("missing", "x")
    write(clct, "a", [1])
    with pytest.raises(InvalidLabelError):
        clct.rename("a", " ")


def test_clone_into_an_empty_collection(repo, clct):
    write(clct, "a", [1, 2])
    write(clct, "b", [3])
    target_schema = Schema(ts="int*", renamed="float", extra="str", flag="int")
    target = repo.create_collection(target_schema, "target")
    revs = clct.clone(target, rename={"value": "renamed"}, defaults={"extra": "n/a"})
    assert revs[0].parent == phi
    frm = (target / "a").frame()
    assert frm["renamed"].tolist() == [1, 2]
    assert frm["extra"].tolist() == ["n/a", "n/a"] and frm["flag"].tolist() == [0, 0]
    assert (target / "b").frame()["ts"].tolist() == [3]
    assert target.commit().digest["renamed"].tolist() == clct.commit().digest["value"].tolist()
    with pytest.raises(ValueError, match="not empty"):
        clct.clone(target)


@CORE
def test_clone_keeps_the_source_index_columns(repo, clct):
    """Dropping the index that orders the rows would leave an unsorted commit."""
    write(clct, "a", [1])
    target = repo.create_collection(Schema(other="int*", value="float"), "target")
    with pytest.raises(ValueError, match="lacks the index column.*ts"):
        clct.clone(target)
    assert target.changelog.leaf() is None


@CORE
def test_pull_and_push_need_a_collection(clct):
    """SPEC §6 item 12: upstream asserted on the remote's type."""
    with pytest.raises(TypeError, match="Collection"):
        clct.pull("elsewhere")
    with pytest.raises(TypeError, match="Collection"):
        clct.push(None)


def test_digests_lists_stored_files_only(clct):
    import numpy

    write(clct, "small", [1])
    assert list(clct.digests()) == []
    big = numpy.random.default_rng(0).random(1000)
    write(clct, "big", list(range(1000)), big)
    leaf = clct.changelog.leaf()
    digests = set(clct.digests([leaf]))
    assert clct.commit().digest["value"][0] in digests
    assert all(clct.pod.isfile(f"{d[:2]}/{d[2:4]}/{d[4:]}") for d in digests)


# --- concurrent writers, merge, trim, defrag ----------------------------------------------


def fork(clct, reopen):
    """Two writers start from the same leaf: the first writes 0,1,2 = 0, the second 1,2,3 = 1."""
    other = reopen() / "clct"
    other.changelog.log()  # the second writer looks at the leaf before the first one writes
    write(clct, "s", [0, 1, 2], [0, 0, 0])
    write(other, "s", [1, 2, 3], [1, 1, 1])
    clct.refresh()
    return other


def test_concurrent_writes_fork_and_merge(clct, reopen):
    write(clct, "base", [0])
    fork(clct, reopen)
    assert len(clct.changelog.heads()) == 2
    assert content(clct, "s") == [(1, 1), (2, 1), (3, 1)]
    revs = clct.merge()
    assert len(revs) == 2
    assert content(clct, "s") == [(0, 0), (1, 1), (2, 1), (3, 1)]
    assert content(clct, "base") == [(0, 0)]
    assert len(clct.changelog.heads()) == 1
    assert clct.merge() == []
    write(clct, "s", [4])
    assert content(clct, "s")[-1] == (4, 4)


@CORE
def test_merge_of_rows_that_are_not_closed_both(clct, reopen):
    """SPEC §6 item 2: merging a row with open bounds crashed upstream."""
    write(clct, "s", [0, 5, 10])
    other = reopen() / "clct"
    other.changelog.log()
    write(clct, "s", [1, 2], [10, 20], start=0, stop=5, closed="n")
    write(other, "s", [6, 7], [60, 70], start=5, stop=10, closed="n")
    clct.refresh()
    clct.merge()
    assert content(clct, "s") == [(0, 0), (1, 10), (2, 20), (5, 5), (6, 60), (7, 70), (10, 10)]
    check_invariants(clct.commit(), clct.pod)


def test_trim_spares_unmerged_branches(clct, reopen):
    """SPEC §6 item 11: trim could delete the leaf of an unmerged branch."""
    write(clct, "base", [0])
    fork(clct, reopen)
    assert clct.trim(before="fffffffffff") == 0
    assert nb_revisions(clct) == 3
    clct.merge()
    assert nb_revisions(clct) == 5
    assert clct.trim(before="fffffffffff") == 4
    assert nb_revisions(clct) == 1
    assert content(clct, "s") == [(0, 0), (1, 1), (2, 1), (3, 1)]


@CORE
def test_trim_keeps_recent_revisions_by_default(clct):
    write(clct, "s", [1])
    write(clct, "s", [2])
    assert clct.trim() == 0
    assert clct.trim(before=clct.changelog.leaf().epoch) == 1
    assert content(clct, "s") == [(1, 1), (2, 2)]


@CORE
def test_defrag_rewrites_small_segments(clct):
    for start in range(0, 60, 10):
        write(clct, "s", list(range(start, start + 10)))
    write(clct, "few", [1])
    revs = clct.defrag()
    assert len(revs) == 1
    assert len(list(clct.commit().match("s"))) == 1
    assert content(clct, "s") == [(v, v) for v in range(60)]
    assert clct.defrag() == []


@CORE
def test_defrag_pages_follow_settings(clct, monkeypatch):
    monkeypatch.setattr(settings, "page_len", 8)
    for start in range(0, 40, 5):
        write(clct, "s", list(range(start, start + 5)))
    clct.defrag(max_chunk=2)
    assert [row.length for row in clct.commit().match("s")] == [8, 8, 8, 8, 8]
    assert content(clct, "s") == [(v, v) for v in range(40)]
    check_invariants(clct.commit(), clct.pod)


@CORE
@pytest.mark.parametrize("max_chunk", [0, -1, 1.5])
def test_defrag_rejects_bad_max_chunk(clct, max_chunk):
    """SPEC §6 item 12: upstream asserted."""
    with pytest.raises(ValueError, match="max_chunk"):
        clct.defrag(max_chunk=max_chunk)


@CORE
def test_squash_warns_and_defrags(clct):
    for start in range(0, 60, 10):
        write(clct, "s", list(range(start, start + 10)))
    with pytest.warns(DeprecationWarning):
        clct.squash(trim=False)
    assert len(list(clct.commit().match("s"))) == 1
    assert nb_revisions(clct) == 7


def test_refresh_sees_other_writers(clct, reopen):
    write(clct, "s", [1])
    other = reopen() / "clct"
    assert other.ls() == ["s"]
    write(clct, "t", [1])
    other.refresh()
    assert other.ls() == ["s", "t"]
