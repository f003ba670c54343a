"""Log and change feed, checked against a model over random writes, deletes and merges."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakota import Repo, Schema

SCHEMA = Schema(k="int*", v="float")


def state(clct) -> dict:
    return {label: rows_of((clct / label).frame()) for label in clct.ls()}


def rows_of(frame) -> dict:
    return dict(zip(frame["k"].tolist(), frame["v"].tolist()))


def replay(model: dict, change) -> None:
    rows = model.setdefault(change.label, {})
    lo, hi = change.start[0], change.stop[0]
    left, right = change.closed in "lb", change.closed in "rb"
    for key in list(rows):
        if (lo < key or (left and key == lo)) and (key < hi or (right and key == hi)):
            del rows[key]
    rows.update(rows_of(change.frame))


def clean(model: dict) -> dict:
    return {label: rows for label, rows in model.items() if rows}


def signature(change) -> tuple:
    return (change.origin.child, change.label, change.start, change.stop)


keys = st.lists(st.integers(0, 15), min_size=1, max_size=6, unique=True).map(sorted)
ops = st.one_of(
    st.tuples(st.just("write"), st.sampled_from("ab"), keys, st.integers(0, 3)),
    st.tuples(st.just("delete"), st.sampled_from("ab"), st.integers(0, 15), st.integers(0, 5)),
    st.tuples(st.just("merge")),
    st.tuples(st.just("refresh"), st.sampled_from("ab")),
    st.tuples(st.just("poll")),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, max_size=20))
def test_feed_replays_the_leaf_and_each_change_comes_once(operations):
    """Two writers fork the history (each on its own series), merges join it; a consumer
    polls the feed at random points, resuming from the last revision it handled."""
    repo = Repo()
    repo.create_collection(SCHEMA, "c")
    writers = {name: Repo(pod=repo.pod) / "c" for name in "ab"}
    replica, seen, token = {}, [], None

    def poll():
        nonlocal token
        clct = Repo(pod=repo.pod) / "c"
        for change in clct.changes(since=token):
            replay(replica, change)
            seen.append(signature(change))
            token = change.revision

    for op in operations:
        if op[0] == "write":
            _, who, ks, value = op
            writers[who].series(f"s{who}").write({"k": ks, "v": [float(value)] * len(ks)})
        elif op[0] == "delete":
            _, who, lo, width = op
            writers[who].series(f"s{who}").delete(lo, lo + width)
        elif op[0] == "merge":
            (Repo(pod=repo.pod) / "c").merge()
        elif op[0] == "refresh":
            writers[op[1]].refresh()
        else:
            poll()
    (Repo(pod=repo.pod) / "c").merge()
    poll()
    final = Repo(pod=repo.pod) / "c"
    assert clean(replica) == clean(state(final))
    assert len(seen) == len(set(seen))
    model = {}
    for change in final.changes():
        replay(model, change)
    assert clean(model) == clean(state(final))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, max_size=20))
def test_polls_on_one_series_written_by_two_writers_see_each_change_once(operations):
    """Both writers on the same series: merges resolve conflicts, and the polls of a
    consumer still add up to the whole feed, each change once."""
    repo = Repo()
    repo.create_collection(SCHEMA, "c")
    writers = {name: Repo(pod=repo.pod) / "c" for name in "ab"}
    seen, token = [], None

    def poll():
        nonlocal token
        for change in (Repo(pod=repo.pod) / "c").changes(since=token):
            seen.append(signature(change))
            token = change.revision

    for op in operations:
        if op[0] == "write":
            writers[op[1]].series("s").write({"k": op[2], "v": [float(op[3])] * len(op[2])})
        elif op[0] == "delete":
            writers[op[1]].series("s").delete(op[2], op[2] + op[3])
        elif op[0] == "merge":
            (Repo(pod=repo.pod) / "c").merge()
        elif op[0] == "refresh":
            writers[op[1]].refresh()
        else:
            poll()
    (Repo(pod=repo.pod) / "c").merge()
    poll()
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(signature(c) for c in (Repo(pod=repo.pod) / "c").changes())


def feed_with_history():
    """A history with a fork, a merge, a deleted series and restored states."""
    repo = Repo()
    clct = repo.create_collection(SCHEMA, "c")
    series = clct / "s"
    series.write({"k": [1, 2, 3], "v": [1.0, 1.0, 1.0]})
    series.write({"k": [2], "v": [2.0]})
    series.write({"k": [1, 2, 3], "v": [1.0, 1.0, 1.0]})  # the first state again
    other = Repo(pod=repo.pod) / "c"
    other.ls()
    series.write({"k": [5], "v": [5.0]})
    (other / "t").write({"k": [7], "v": [7.0]})
    Repo(pod=repo.pod).collection("c").merge()
    clct.refresh()
    with clct.multi():
        series.write({"k": [0], "v": [1.0]})
        series.write({"k": [10], "v": [1.0]})
    (clct / "gone").write({"k": [1], "v": [1.0]})
    clct.delete("gone")
    series.delete(2, 2)
    return clct


def test_feed_resumed_after_every_revision_yields_each_change_once():
    clct = feed_with_history()
    full = list(clct.changes())
    assert len({c.origin.child for c in full}) == len([e for e in clct.log() if e.touched])
    for pos, change in enumerate(full):
        if pos + 1 < len(full) and full[pos + 1].revision == change.revision:
            continue  # resume only once every change of a revision is handled
        rest = [signature(c) for c in clct.changes(since=change.revision)]
        assert rest == [signature(c) for c in full[pos + 1 :]]
    model = {}
    for change in full:
        replay(model, change)
    assert clean(model) == clean(state(clct))


def test_batch_writes_to_one_series_are_separate_changes():
    """Unless nothing lies between them: then one change replays both."""
    clct = feed_with_history()
    batch = [c for c in clct.changes() if c.origin.child == clct.log()[3].revision.child]
    assert [(c.start[0], c.stop[0]) for c in batch] == [(0, 0), (10, 10)]
    (clct / "s").write({"k": [30], "v": [1.0]})
    with clct.multi():
        (clct / "s").write({"k": [40], "v": [1.0]})
        (clct / "s").write({"k": [50], "v": [1.0]})
    (last,) = [c for c in clct.changes() if c.origin == clct.changelog.leaf()]
    assert (last.start[0], last.stop[0], len(last.frame)) == (40, 50, 2)


def test_until_stops_the_feed():
    clct = feed_with_history()
    second = clct.log()[-2].revision
    assert {c.origin.child for c in clct.changes(until=second)} == {
        rev.revision.child for rev in clct.log()[-2:]
    }


def test_log_lists_who_why_and_what():
    repo = Repo()
    clct = repo.create_collection(SCHEMA, "c")
    (clct / "s").write({"k": [1, 2, 3], "v": [1.0] * 3}, message="load", author="ann")
    (clct / "t").write({"k": [5], "v": [1.0]}, meta={"job": 1})
    clct.tag("v2")
    (clct / "s").delete(2, 3, message="trim")
    log = clct.log()
    assert [e.message for e in log] == ["trim", "", "load"]
    assert log[2].author == "ann" and log[1].meta == {"job": 1} and log[1].tags == ["v2"]
    assert log[2].touched["s"] == ((1,), (3,), 3)
    assert log[0].touched == {"s": ((2,), (3,), 0)}
    assert [e.message for e in clct.log(series="s")] == ["trim", "load"]
    assert [e.message for e in clct.log(limit=1)] == ["trim"]
    assert log[0].date >= log[2].date
    with pytest.raises(ValueError):
        clct.log(limit=-1)


def test_empty_collection_has_no_log_nor_changes():
    clct = Repo().create_collection(SCHEMA, "c")
    assert clct.log() == [] and list(clct.changes()) == []
