"""User code written for lakota 0.7.1 (issue 15), run by both implementations.

Run it as ``python compat.py CONTEXT_JSON [NAME...]`` with any interpreter whose
``lakota`` is either ours or upstream 0.7.1: it runs the named snippets (default: all)
and prints ``{name: outcome}`` as JSON. An outcome is ``{"value": ...}``, what the
snippet returned, or ``{"raised": "<class name>"}`` for an exception it let through.
Where 0.7.1 users catch an exception, the snippet catches it the same way and returns
``"caught <builtin>"``, so both sides agree when the error is catchable as users expect.
The context holds what a snippet needs from outside (an ``s3`` URI on a fresh bucket).
The test suite imports this module to run the same snippets with our lakota.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from typing import Any

import numpy

from lakota import POD, Repo, Schema
from lakota.changelog import Revision
from lakota.pod import MemPOD


def iso(values: Any) -> list[str]:
    return [str(v) for v in numpy.datetime_as_string(numpy.asarray(values))]


def caught(call: Callable[[], Any], *classes: type[BaseException]) -> str:
    """ "no error", or "caught <name>" for the first of `classes` that catches the error."""
    try:
        call()
    except classes as exc:
        return "caught " + next(c.__name__ for c in classes if isinstance(exc, c))
    return "no error"


def codec_pipes(ctx: dict) -> dict:
    """1. ``|`` between codec names, and codec names with ``-``."""
    schema = Schema(key="int*", name="str|vlen-utf8|gzip", other="float | zstd |gzip")
    clct = Repo().create_collection(schema, "c")
    (clct / "s").write({"key": [1, 2], "name": ["a", "é"], "other": [0.5, 1.5]})
    frame = (clct / "s").frame()
    return {
        "codecs": [list(schema[n].codec.codec_names) for n in ("name", "other")],
        "name": frame["name"].tolist(),
        "other": frame["other"].tolist(),
    }


def rename_missing(ctx: dict) -> list[str]:
    """2. A missing collection is a ValueError for rename (a KeyError for pull)."""
    repo = Repo()
    repo.create_collection(Schema(x="int*"), "a")
    return [
        caught(lambda: repo.rename("missing", "b"), ValueError),
        caught(lambda: repo.rename("a", "a"), ValueError),
        caught(lambda: Repo().pull(repo, "missing"), KeyError),
    ]


def memory_root(ctx: dict) -> dict:
    """3. ``MemPOD("/")`` is the root of a memory store."""
    pod = MemPOD("/")
    pod.write("a/b", b"x")
    repo = Repo(pod=MemPOD("/"))
    clct = repo.create_collection(Schema(x="int*"), "c")
    (clct / "s").write({"x": [1, 2]})
    return {
        "ls": sorted(pod.ls()),
        "sub": pod.cd("a").ls(),
        "read": pod.read("a/b").decode(),
        "collections": [str(label) for label in repo.ls()],
        "x": (clct / "s").frame()["x"].tolist(),
    }


def float_timestamps(ctx: dict) -> dict:
    """4. Floats into a datetime column are counts of its unit (epoch seconds)."""
    repo = Repo()
    clct = repo.create_collection(Schema(timestamp="timestamp*", value="float"), "c")
    (clct / "s").write({"timestamp": numpy.arange(0.0, 3.0), "value": [1.0, 2.0, 3.0]})
    daily = repo.create_collection(Schema(day="date*", value="float"), "d")
    (daily / "s").write({"day": numpy.array([1.0, 2.0]), "value": [1.0, 2.0]})
    return {
        "timestamp": iso((clct / "s").frame()["timestamp"]),
        "day": iso((daily / "s").frame()["day"]),
    }


def datetimes_into_int(ctx: dict) -> dict:
    """5. Datetimes into an int column are counts of their unit (epoch seconds)."""
    clct = Repo().create_collection(Schema(key="int*", value="float"), "c")
    (clct / "s").write({"key": numpy.array(["2020-01-01"], "M8[s]"), "value": [1.0]})
    (clct / "t").write({"key": numpy.array(["2020-01-02T00:00:01"], "M8[s]"), "value": [2.0]})
    return {label: (clct / label).frame()["key"].tolist() for label in ("s", "t")}


def clone_with_extra_index(ctx: dict) -> dict:
    """6. `clone` fills a new index column with its default."""
    repo = Repo()
    src = repo.create_collection(Schema(ts="timestamp*", value="float"), "src")
    stamps = numpy.array(["2020-01-01", "2020-01-02", "2020-01-03"], "M8[s]")
    (src / "a").write({"ts": stamps[:2], "value": [1.0, 2.0]})
    (src / "b").write({"ts": stamps[2:], "value": [3.0]})
    dst = repo.create_collection(Schema(ts="timestamp*", extra="int*", value="float"), "dst")
    revisions = src.clone(dst, defaults={"extra": 5})
    frames = {label: (dst / label).frame() for label in ("a", "b")}
    return {
        "revisions": len(revisions),
        "labels": [str(label) for label in dst.ls()],
        "ts": {label: iso(frame["ts"]) for label, frame in frames.items()},
        "extra": {label: frame["extra"].tolist() for label, frame in frames.items()},
        "value": {label: frame["value"].tolist() for label, frame in frames.items()},
    }


def memory_emptied_folders(ctx: dict) -> dict:
    """7. A MemPOD folder stays when its last file goes."""
    pod = MemPOD(".")
    pod.write("ham/spam/key", b"x")
    pod.rm("ham/spam/key")
    return {"spam": pod.ls("ham/spam"), "ham": pod.ls("ham"), "root": pod.ls()}


def s3_missing_prefix(ctx: dict) -> dict:
    """8. On S3, listing a missing prefix gives ``[]``."""
    pod = POD.from_uri(ctx["s3"])
    pod.write("a/b", b"x")
    return {"missing": pod.ls("missing"), "nested": pod.ls("a/missing"), "a": pod.ls("a")}


def defrag_after_overlaps(ctx: dict) -> dict:
    """9. Ten overlapping writes of 100,000 rows: one defrag revision rewrites them."""
    clct = Repo().create_collection(Schema(ts="int*", value="float"), "c")
    series = clct / "s"
    for i in range(10):
        keys = numpy.arange(i * 50_000, i * 50_000 + 100_000)
        series.write({"ts": keys, "value": keys * 0.5})
    before = len(clct.changelog.leaf().commit(clct).label)
    revisions = clct.defrag()
    after = len(clct.changelog.leaf().commit(clct).label)
    frame = series.frame()
    return {
        "segments before": before,
        "defrag revisions": len(revisions),
        "fewer segments": after < before,
        "rows": len(frame["ts"]),
        "keys": [int(frame["ts"][0]), int(frame["ts"][-1])],
        "consecutive": bool((numpy.diff(frame["ts"]) == 1).all()),
        "value sum": float(frame["value"].sum()),
        "defrag again": len(clct.defrag()),
    }


def from_pandas_frame(ctx: dict) -> dict:
    """10. `Schema.from_frame` on a pandas DataFrame."""
    import pandas

    df = pandas.DataFrame(
        {
            "timestamp": pandas.date_range("2020-01-01", periods=3),
            "value": [1.0, 2.0, 3.0],
            "n": [1, 2, 3],
        }
    )
    return Schema.from_frame(df, ["timestamp"]).dumps()


def revision_paths(ctx: dict) -> dict:
    """11. `Revision.from_path` on walked paths and short names; `digests` split on ``-``."""
    repo = Repo()
    clct = repo.create_collection(Schema(x="int*"), "c")
    (clct / "s").write({"x": [1, 2]})
    leaf = clct.changelog.leaf()
    walked = next(path for path in repo.pod.walk() if path.endswith(leaf.path))
    rev = Revision.from_path(clct.changelog, walked)
    short = Revision.from_path(clct.changelog, "0-abc.1f-def")
    made = Revision(clct.changelog, "0-abc", "2a-fed")
    return {
        "walked": [rev.child == leaf.child, rev.epoch == leaf.epoch, list(rev.digests)[1]],
        "walked is deep": walked.count("/"),
        "short": [short.parent, short.child, short.epoch, list(short.digests)],
        "made": [made.epoch, list(made.digests)],
    }


def corrupted_revision(ctx: dict) -> str:
    """11. A revision whose content never matches its digest: a RuntimeError."""
    clct = Repo().create_collection(Schema(x="int*"), "c")
    (clct / "s").write({"x": [1, 2]})
    path = clct.changelog.leaf().path
    clct.changelog.pod.write(path, b"not the payload", force=True)
    return caught(lambda: Revision.from_path(clct.changelog, path).read(), RuntimeError)


def helpers(ctx: dict) -> dict:
    """The documented helpers: `utils.Pool`, `utils.timeit`, `Changelog.commit(_jitter=)`."""
    from lakota.utils import Pool, timeit

    with Pool() as pool:
        for n in range(4):
            pool.submit(pow, n, 2)
    with timeit("compat snippet") as timed:
        pass
    clct = Repo().create_collection(Schema(x="int*"), "c")
    revisions = clct.changelog.commit(b"payload", _jitter=True)
    digest = hashlib.sha1(b"payload").hexdigest()
    return {
        "pool": pool.results,
        "timeit": timed,
        "jitter": [len(revisions), revisions[0].digests.child == digest],
    }


SNIPPETS: dict[str, Callable[[dict], Any]] = {
    fn.__name__: fn
    for fn in (
        codec_pipes,
        rename_missing,
        memory_root,
        float_timestamps,
        datetimes_into_int,
        clone_with_extra_index,
        memory_emptied_folders,
        s3_missing_prefix,
        defrag_after_overlaps,
        from_pandas_frame,
        revision_paths,
        corrupted_revision,
        helpers,
    )
}


def outcome(name: str, ctx: dict) -> dict:
    """What snippet `name` returned (as JSON values), or the class of what it raised."""
    try:
        return {"value": json.loads(json.dumps(SNIPPETS[name](ctx)))}
    except Exception as exc:
        return {"raised": type(exc).__name__, "message": str(exc)[:300]}


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(f"usage: compat.py CONTEXT_JSON [{'|'.join(SNIPPETS)}...]")
    ctx = json.loads(argv[0])
    names = argv[1:] or list(SNIPPETS)
    json.dump({name: outcome(name, ctx) for name in names}, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
