"""Diffs of series and collections, checked against the states they compare."""

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakota import Repo, Schema

ONE = Schema(k="int*", v="float")
TWO = Schema(site="str*", k="int*", v="float", note="str")


def frame_for(schema, keys, value):
    columns = {"k": keys, "v": [float(value)] * len(keys)}
    if "site" in schema:
        columns = {"site": ["a"] * len(keys), **columns, "note": [f"n{value}"] * len(keys)}
    return columns


def rows(frame) -> dict:
    idx = list(frame.schema.idx)
    values = [n for n in frame.schema if n not in idx]
    keys = zip(*(frame[n].tolist() for n in idx))
    vals = zip(*(frame[n].tolist() for n in values))
    return dict(zip(keys, vals))


def bound(schema, key):
    return ("a", key) if "site" in schema else key


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("write"),
            st.sampled_from("xy"),
            st.lists(st.integers(0, 12), min_size=1, max_size=5, unique=True).map(sorted),
            st.integers(0, 2),
        ),
        st.tuples(st.just("delete"), st.sampled_from("xy"), st.integers(0, 12), st.integers(0, 4)),
        st.tuples(st.just("fork")),
        st.tuples(st.just("merge")),
    ),
    min_size=1,
    max_size=14,
)


@pytest.mark.parametrize("schema", [ONE, TWO], ids=["one-index", "two-index"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    operations=ops, picks=st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99)), max_size=6)
)
def test_diff_matches_the_states_it_compares(schema, operations, picks):
    repo = Repo()
    clct = repo.create_collection(schema, "c")
    other = Repo(pod=repo.pod) / "c"
    writer = clct
    for op in operations:
        if op[0] == "write":
            writer.series(op[1]).write(frame_for(schema, op[2], op[3]))
        elif op[0] == "delete":
            writer.series(op[1]).delete(bound(schema, op[2]), bound(schema, op[2] + op[3]))
        elif op[0] == "fork":
            other.refresh()
            other.ls()
            writer = other if writer is clct else clct
        else:
            (Repo(pod=repo.pod) / "c").merge()
            clct.refresh()
            other.refresh()
    fresh = Repo(pod=repo.pod) / "c"
    revisions = fresh.changelog.log()
    if not revisions:
        return
    for i, j in picks or [(0, len(revisions) - 1)]:
        a, b = revisions[i % len(revisions)], revisions[j % len(revisions)]
        summary = {d.label: d for d in fresh.diff(a, b)}
        for label in ("x", "y"):
            old = rows(fresh.series(label).frame(at=a))
            new = rows(fresh.series(label).frame(at=b))
            diff = fresh.series(label).diff(a, b)
            added, removed = rows(diff.added), rows(diff.removed)
            assert added == {k: v for k, v in new.items() if k not in old}
            assert removed == {k: v for k, v in old.items() if k not in new}
            changed = {k for k in old.keys() & new.keys() if old[k] != new[k]}
            idx = list(schema.idx)
            got = set(zip(*(diff.changed[n].tolist() for n in idx)))
            assert got == changed
            for pos, key in enumerate(zip(*(diff.changed[n].tolist() for n in idx))):
                assert diff.changed["v_a"][pos] == old[key][0]
                assert diff.changed["v_b"][pos] == new[key][0]
            if not (added or removed or changed):
                assert label not in summary
                continue
            found = summary[label]
            assert (found.added, found.removed, found.changed) == (
                len(added),
                len(removed),
                len(changed),
            )
            touched = sorted(added.keys() | removed.keys() | changed)
            assert (found.start, found.stop) == (touched[0], touched[-1])


def test_status_of_added_and_removed_series():
    clct = Repo().create_collection(ONE, "c")
    (clct / "x").write({"k": [1], "v": [1.0]})
    first = clct.changelog.leaf()
    (clct / "y").write({"k": [1, 2], "v": [1.0, 2.0]})
    clct.delete("x")
    found = {d.label: d for d in clct.diff(first)}
    assert found["y"].status == "added" and found["y"].added == 2
    assert found["x"].status == "removed" and found["x"].removed == 1
    assert clct.diff(first, first) == []


def test_defrag_changes_no_rows():
    clct = Repo().create_collection(ONE, "c")
    for i in range(8):
        (clct / "x").write({"k": [i], "v": [float(i)]})
    before = clct.changelog.leaf()
    assert clct.defrag(max_chunk=2)
    assert clct.diff(before) == []
    diff = (clct / "x").diff(before)
    assert diff.added.empty and diff.removed.empty and diff.changed.empty


def test_nan_equals_nan_and_duplicate_keys():
    clct = Repo().create_collection(ONE, "c")
    series = clct / "x"
    series.write({"k": [1, 2, 2, 3], "v": [numpy.nan, 1.0, 2.0, 3.0]})
    first = clct.changelog.leaf()
    series.write({"k": [2, 2, 3], "v": [1.0, 5.0, 3.0]})
    diff = series.diff(first)
    assert diff.added["v"].tolist() == [1.0, 5.0]  # a repeated key that changed: all its rows
    assert diff.removed["v"].tolist() == [1.0, 2.0]
    series.write({"k": [1], "v": [numpy.nan]})
    assert series.diff(clct.changelog.log()[1]).added.empty


def test_diff_reads_only_the_segments_that_differ(monkeypatch):
    repo = Repo()
    clct = repo.create_collection(ONE, "c")
    series = clct / "x"
    rng = numpy.random.default_rng(1)
    for page in range(4):
        keys = numpy.arange(page * 1000, (page + 1) * 1000)
        series.write({"k": keys, "v": rng.normal(size=1000)})
    before = clct.changelog.leaf()
    new_keys = numpy.arange(4000, 5000)
    (rev,) = series.write({"k": new_keys, "v": rng.normal(size=1000)})
    new_digests = {d for d in rev.commit(clct).digests() if d not in rev.commit(clct).embedded}
    read = []
    real_read = type(repo.pod).read

    def spy(pod, path, *args, **kwargs):
        read.append(str(path))
        return real_read(pod, path, *args, **kwargs)

    monkeypatch.setattr(type(repo.pod), "read", spy)
    diff = series.diff(before)
    assert diff.added["k"].tolist() == new_keys.tolist()
    data_reads = {p.replace("/", "")[-40:] for p in read if "." not in p.rsplit("/", 1)[-1]}
    assert data_reads and data_reads <= new_digests
