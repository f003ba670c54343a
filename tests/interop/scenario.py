"""One scenario for two implementations: write lakota repositories and dump what they hold.

Run it as ``python scenario.py COMMAND REPO_FOLDER`` with any interpreter whose ``lakota``
is either ours or upstream 0.7.1; it prints a JSON manifest of the repository. The test
suite also imports it to run the very same steps in-process with our lakota. It only
uses the API both implementations share, and it avoids what upstream cannot do (its
`KVSeries.delete` only works on the registry schema, it does not cast bounds) and what
we refuse (frames outside the given write range).

Commands: ``write`` (the full scenario), ``simple`` (a short numeric history whose
commit bytes both implementations should encode identically), ``extend`` (more
revisions on top of a repository written by either side), ``prune`` (merge, trim
everything but the last revisions, collect garbage), ``pull`` (pull everything from
the repository at ``$SCENARIO_SOURCE``) and ``dump``. ``decorate`` adds messages,
metadata and tags, which only our lakota can write, so only we run it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from typing import Any

import numpy

from lakota import Repo, Schema

DAY = numpy.timedelta64(1, "D")
T0 = numpy.datetime64("2021-01-01T00:00:00", "s")
D0 = numpy.datetime64("2021-01-01", "D")
OBJECTS = ["a", 1, 2.5, None, {"k": "v", "n": 3}, "é", -7, True]


def ts(day: int, hour: int = 0) -> numpy.datetime64:
    """Timestamp (``M8[s]``) `day` days and `hour` hours after 2021-01-01."""
    return T0 + day * DAY + numpy.timedelta64(hour, "h")


def days(first: int, count: int, step: int = 1) -> numpy.ndarray:
    """`count` timestamps at midnight, every `step` days from day `first`."""
    return T0 + numpy.arange(first, first + count * step, step) * DAY


def objects(count: int, shift: int = 0) -> numpy.ndarray:
    """An object column cycling through `OBJECTS` (mixed msgpack-able values)."""
    arr = numpy.empty(count, dtype=object)
    arr[:] = [OBJECTS[(i + shift) % len(OBJECTS)] for i in range(count)]
    return arr


def rich_frame(stamps: numpy.ndarray, seed: int) -> dict:
    """A frame for the `timeseries` schema: one column of every supported dtype."""
    rng = numpy.random.default_rng(seed)
    count = len(stamps)
    return {
        "ts": stamps,
        "value": rng.normal(size=count),
        "count": rng.integers(-1000, 1000, size=count),
        "name": numpy.array([f"n{seed}-{i}" * (1 + i % 3) for i in range(count)]),
        "flag": rng.integers(0, 2, size=count).astype(bool),
        "extra": objects(count, seed),
    }


SCHEMAS = {
    "timeseries": lambda: Schema(
        ts="timestamp*", value="float", count="int", name="str", flag="bool", extra="O"
    ),
    "daily": lambda: Schema(day="date*", value="float"),
    "numbers": lambda: Schema(key="int*", x="f4", y="i4", z="u1"),
    "multi_idx": lambda: Schema(site="str*", ts="timestamp*", value="float", count="int"),
    "kv": lambda: Schema.kv(key="str*", value="int"),
    "kvmeta": lambda: Schema.kv(label="str*", meta="O"),
    "forked": lambda: Schema(ts="timestamp*", value="float"),
}


# Writers


def write_all(repo: Repo) -> None:
    """The full scenario: every dtype, overwrites, deletes, batches, KV and big series."""
    clcts = {label: repo.create_collection(make(), label) for label, make in SCHEMAS.items()}
    write_timeseries(clcts["timeseries"])
    write_daily(clcts["daily"])
    write_numbers(clcts["numbers"])
    write_multi_idx(clcts["multi_idx"])
    write_kv(clcts["kv"], clcts["kvmeta"])
    write_fork(repo, clcts["forked"])
    doomed = repo.create_collection(SCHEMAS["daily"](), "doomed")
    rng = numpy.random.default_rng(13)
    (doomed / "x").write({"day": D0 + numpy.arange(1200) * DAY, "value": rng.normal(size=1200)})
    repo.delete("doomed")  # its data file is left for the garbage collector


def write_timeseries(clct: Any) -> None:
    paris = clct / "paris"
    paris.write(rich_frame(days(0, 10), 1))
    paris.write(rich_frame(days(3, 3), 2))  # overlaps days 3..5
    paris.write(rich_frame(days(7, 1), 3), start=ts(6), stop=ts(8))  # hides days 6 and 8
    paris.delete(ts(1), ts(2))
    paris.write(rich_frame(days(10, 2), 4), start=ts(9), closed="r")  # keeps day 9
    with clct.multi():
        paris.write(rich_frame(days(12, 1), 5))
        (clct / "rome").write(rich_frame(days(0, 5, 2), 6))
        (clct / "oslo").write(rich_frame(days(1, 3), 7))
    (clct / "tmp").write(rich_frame(days(0, 2), 8))
    clct.delete("tmp")
    big = rich_frame(T0 + numpy.arange(1500) * numpy.timedelta64(1, "h"), 9)
    (clct / "big").write(big)
    (clct / "big").write(rich_frame(ts(10) + numpy.arange(30) * numpy.timedelta64(1, "h"), 10))
    (clct / "oslo").delete(ts(2), ts(2))
    clct.rename("oslo", "bergen")


def write_daily(clct: Any) -> None:
    series = clct / "a"
    series.write({"day": D0 + numpy.arange(30) * DAY, "value": numpy.arange(30) / 7})
    series.write({"day": D0 + numpy.arange(10, 15) * DAY, "value": -numpy.arange(5) / 3})
    series.delete(D0 + 20 * DAY, D0 + 24 * DAY)
    series.write({"day": [D0 + 40 * DAY], "value": [numpy.pi]})
    series.update({"day": D0 + numpy.arange(13, 17) * DAY, "value": [0.1, 0.2, 0.3, 0.4]})
    # Its days compress enough to be embedded in the commit, its values do not
    rng = numpy.random.default_rng(21)
    (clct / "long").write(
        {"day": D0 + numpy.arange(20_000) * DAY, "value": rng.normal(size=20_000)}
    )


def write_numbers(clct: Any) -> None:
    series = clct / "n"
    keys = numpy.arange(-50, 50, 3, dtype="i8")
    series.write(
        {
            "key": keys,
            "x": (keys / 3).astype("f4"),
            "y": (keys * 100_000).astype("i4"),
            "z": (keys % 256).astype("u1"),
        }
    )
    series.delete(numpy.int64(-20), numpy.int64(0))
    series.write({"key": [1, 1, 2], "x": [0.5, 0.25, 1e30], "y": [1, 2, 3], "z": [0, 255, 7]})


def write_multi_idx(clct: Any) -> None:
    series = clct / "grid"
    sites = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    stamps = [ts(i) for i in range(4)] * 3
    series.write({"site": sites, "ts": stamps, "value": numpy.arange(12) * 1.5, "count": range(12)})
    series.write({"site": ["b", "b"], "ts": [ts(1), ts(2)], "value": [-1.0, -2.0], "count": [0, 0]})
    series.delete(("a", ts(1)), ("a", ts(2)))
    series.write(
        {"site": ["a", "c"], "ts": [ts(5), ts(0)], "value": [7.0, 8.0], "count": [7, 8]},
        start=("a", ts(5)),
        stop=("c", ts(0)),
    )


def write_kv(kv: Any, kvmeta: Any) -> None:
    main = kv / "main"
    main.write({"key": ["b", "a", "c"], "value": [2, 1, 3]})
    main.write({"key": ["b", "d"], "value": [20, 4]})
    main.write({"key": ["a"], "value": [10]})
    (kv / "other").write({"key": ["x"], "value": [0]})
    ns = kvmeta / "ns"
    ns.write({"label": ["a", "b", "c"], "meta": objects(3)})
    ns.write({"label": ["b", "e"], "meta": objects(2, 4)})
    ns.delete("b")


def write_fork(repo: Repo, clct: Any) -> None:
    """Two writers start from the same revision: the history forks (merged by `extend`)."""
    clct.series("s").write({"ts": days(0, 6), "value": numpy.arange(6.0)})
    stale = Repo(pod=repo.pod) / clct.label
    stale.series("s").frame()  # this writer now knows the first revision only
    clct.series("s").write({"ts": days(2, 2), "value": [-2.0, -3.0]})
    time.sleep(0.002)  # the stale writer's revision is the newest: the leaf of the log
    stale.series("other").write({"ts": days(1, 2), "value": [10.0, 11.0]})


def write_simple(repo: Repo) -> None:
    """A short numeric history (for byte-level comparisons of commits)."""
    clct = repo.create_collection(Schema(ts="timestamp*", value="float"), "simple")
    series = clct / "s"
    series.write({"ts": days(0, 10), "value": numpy.arange(10) * 0.5})
    series.write({"ts": days(2, 3), "value": [-1.0, -2.0, -3.0]})
    series.delete(ts(6), ts(7))
    with clct.multi():
        series.write({"ts": days(10, 2), "value": [1.0, 2.0]})
        (clct / "t").write({"ts": days(0, 3), "value": [3.0, 2.0, 1.0]})
    rng = numpy.random.default_rng(42)
    (clct / "big").write({"ts": days(0, 1200), "value": rng.normal(size=1200)})
    (clct / "t").write({"ts": days(1, 1), "value": [9.0]})


def extend(repo: Repo) -> None:
    """More revisions on top of `write_all`'s repository (written by either side)."""
    ts_clct = repo / "timeseries"
    paris = ts_clct / "paris"
    paris.write(rich_frame(days(20, 3), 11))
    paris.write(rich_frame(days(4, 1), 12))
    (ts_clct / "rome").delete(ts(2), ts(6))
    (repo / "daily" / "a").write({"day": [D0 + 21 * DAY], "value": [42.0]})
    (repo / "kv" / "main").write({"key": ["c", "e"], "value": [30, 5]})
    (repo / "kvmeta" / "ns").delete("a")
    (repo / "forked").merge()
    ts_clct.defrag()
    repo.rename("numbers", "nums")
    late = repo.create_collection(Schema(ts="timestamp*", value="float"), "late")
    (late / "x").write({"ts": days(0, 3), "value": [1.0, 2.0, 3.0]})
    daily = repo / "daily"
    daily.trim(before=daily.changelog.log()[-1].epoch)  # keeps the last revision only
    repo.gc()  # soft-deletes the data file of the deleted collection


def decorate(repo: Repo) -> None:
    """Our messages, metadata and tags on `write_all`'s repository, with a fork to merge."""
    ts_clct = repo / "timeseries"
    ts_clct.tag("as-written", message="state written by write_all")
    (ts_clct / "paris").write(
        rich_frame(days(30, 2), 13), message="late days", author="alice", meta={"n": 2}
    )
    big = rich_frame(T0 + numpy.arange(1500) * numpy.timedelta64(1, "h"), 16)
    (ts_clct / "big").write(big, message="new data files: the old ones are the tag's only")
    with ts_clct.multi(message="batch of two"):
        (ts_clct / "rome").write(rich_frame(days(40, 1), 14))
        (ts_clct / "bergen").write(rich_frame(days(40, 1), 15))
    forked = repo / "forked"
    stale = Repo(pod=repo.pod) / "forked"
    stale.ls()  # both writers now start from the same leaf
    (forked / "s").write({"ts": days(8, 1), "value": [8.0]}, message="ours")
    time.sleep(0.002)
    (stale / "s").write({"ts": days(9, 1), "value": [9.0]}, message="theirs", meta={"w": 2})
    repo.tag("snapshot", message="every collection")


def prune(repo: Repo) -> None:
    """Merge, then trim every collection to its last revision, then collect twice with
    no grace period."""
    from lakota.utils import settings

    settings.timeout = 0
    for label in repo.ls():
        clct = repo / label
        clct.merge()
        clct.trim(before=clct.changelog.log()[-1].epoch)
    repo.gc()
    repo.gc()


def pull(repo: Repo) -> None:
    """Pull every collection of the repository at ``$SCENARIO_SOURCE``."""
    repo.pull(Repo(os.environ["SCENARIO_SOURCE"]))


# Manifest


def dump(repo: Repo) -> dict:
    """Everything readable from the repository, as JSON-friendly values."""
    return {
        "lakota": sys.modules["lakota"].__file__,
        "collections": repo.ls(),
        "registry": dump_collection(repo.registry, with_commits=False),
        **{f"collection {label}": dump_collection(repo / label) for label in repo.ls()},
    }


def dump_collection(clct: Any, with_commits: bool = True) -> dict:
    labels = clct.ls()
    revisions = clct.changelog.log()
    linear = linear_prefix(revisions)
    picked = linear[1:2] + linear[-1:] if len(linear) > 2 else []
    found = {
        "schema": clct.schema.dumps(),
        "series": labels,
        "revisions": [rev.path for rev in revisions],
        "frames": {label: dump_series(clct / label) for label in labels},
        "before": {
            rev.path: {
                label: dump_frame((clct / label).frame(before=rev.epoch)) for label in labels
            }
            for rev in picked
        },
    }
    if with_commits:
        found["commits"] = [dump_commit(rev.commit(clct)) for rev in revisions]
    return found


def linear_prefix(revisions: list) -> list:
    """The revisions written before the history first forks.

    Upstream's ``before=`` cuts the depth-first log at the first later revision (a known
    weakness we do not reproduce), so both agree on time travel in linear history only.
    """
    parents = [rev.parent for rev in revisions]
    prefix = []
    for rev in revisions:
        if parents.count(rev.parent) > 1:
            break
        prefix.append(rev)
    return prefix


def dump_series(series: Any) -> dict:
    return {"len": len(series), "frame": dump_frame(series.frame())}


def dump_frame(frame: Any) -> dict:
    return {name: dump_array(frame[name]) for name in frame.schema.columns}


def dump_array(arr: numpy.ndarray) -> dict:
    """Values and dtype; floats exactly (hex), datetimes as ISO text."""
    kind = arr.dtype.kind
    if kind == "M":
        values = [str(v) for v in numpy.datetime_as_string(arr)]
    elif kind == "f":
        values = [float(v).hex() for v in arr.tolist()]
    else:
        values = arr.tolist()
    dtype = "<U" if kind == "U" else arr.dtype.str
    return {"dtype": dtype, "values": values}


def dump_commit(commit: Any) -> dict:
    """The decoded fields of a commit (the on-disk index of a collection)."""
    return {
        "label": commit.label.tolist(),
        "label_dtype": commit.label.dtype.str,
        "start": {n: dump_array(commit.start[n]) for n in commit.start},
        "stop": {n: dump_array(commit.stop[n]) for n in commit.stop},
        "digest": {n: commit.digest[n].tolist() for n in commit.digest},
        "length": commit.length.tolist(),
        "closed": commit.closed.tolist(),
        "embedded": {
            d: hashlib.sha1(bytes(commit.embedded[d])).hexdigest() for d in sorted(commit.embedded)
        },
    }


COMMANDS = {
    "write": write_all,
    "simple": write_simple,
    "extend": extend,
    "decorate": decorate,
    "prune": prune,
    "pull": pull,
    "dump": None,
}


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in COMMANDS:
        raise SystemExit(f"usage: scenario.py {{{','.join(COMMANDS)}}} REPO_FOLDER")
    command, folder = argv
    if COMMANDS[command] is not None:
        COMMANDS[command](Repo(folder))
    json.dump(dump(Repo(folder)), sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
