"""Where the time of a one-row write goes in a collection of many series (issue 16).

``python bench/commit_cost.py [--series 10,1000,10000] [--writes 10]``

For each number of series, builds a collection of small series in a local folder
(`multi()` batches), then times the steps of a one-row write one by one, as the working
tree does them: staging the row (encode and hash its columns), reading the previous
commit as a new process must (read the revision file, check its SHA-1, decode it),
overlaying the row, encoding the new commit, hashing it, and writing the revision file
(fsynced). It also splits the revision's bytes by field, and measures the same write
with nothing embedded (`settings.embed_max_size = 0`, up to 10,000 series). Medians of
`--writes` writes, in milliseconds; runs in this project's virtual environment. The
numbers are quoted in docs/design/many-series.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import msgpack
import numpy

from lakota import Repo, Schema
from lakota.changelog import Changelog
from lakota.collection import _overlay
from lakota.commit import Commit
from lakota.utils import Closed, hexdigest, settings

SCHEMA = Schema(ts="timestamp*", a="float", b="float", c="float", n="int")
ROWS = 10
BATCH = 10_000
UNEMBEDDED_MAX = 10_000  # beyond, the variant without embedding writes too many files


def series_data(number: int, rows: int = ROWS, start: int = 0) -> dict:
    rng = numpy.random.default_rng(number)
    ts = numpy.datetime64("2020-01-01", "s") + numpy.arange(start, start + rows)
    return {
        "ts": ts,
        "a": 100 + rng.standard_normal(rows).cumsum(),
        "b": rng.standard_normal(rows),
        "c": rng.uniform(0, 1000, rows).round(2),
        "n": rng.integers(0, 10**6, rows),
    }


def build(path: str, count: int) -> Any:
    collection = Repo(path).create_collection(SCHEMA, "instruments")
    for first in range(0, count, BATCH):
        with collection.multi():
            for number in range(first, min(count, first + BATCH)):
                (collection / f"i{number:06d}").write(series_data(number))
    return collection


def ms(call: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = call()
    return (time.perf_counter() - began) * 1000, result


def field_bytes(payload: bytes) -> dict[str, int]:
    """Bytes of each field of a revision payload, as msgpack packs it."""
    body = msgpack.unpackb(payload, raw=False, strict_map_key=False)[0]
    sizes = {name: len(msgpack.packb(value, use_bin_type=True)) for name, value in body.items()}
    sizes["embedded: array bytes"] = sum(len(v) for v in body["embedded"].values())
    sizes["embedded: arrays"] = len(body["embedded"])
    return sizes


def steps(collection: Any, count: int, writes: int) -> dict[str, list[float]]:
    """Time each step of `writes` one-row writes to random series."""
    times: dict[str, list[float]] = {}
    rng = numpy.random.default_rng(count)
    scratch = collection.pod.cd("scratch")
    for turn, number in enumerate(rng.choice(count, size=min(writes, count), replace=False)):
        series = collection / f"i{number:06d}"
        row = series_data(number + 10**6, rows=1, start=ROWS + turn)
        leaf = collection.changelog.leaf()
        fresh = Changelog(collection.changelog.pod)
        record = times.setdefault
        elapsed, revision = ms(lambda fresh=fresh: fresh.leaf())
        record("list the changelog", []).append(elapsed)
        elapsed, payload = ms(lambda path=leaf.path: collection.changelog.pod.read(path))
        record("read the previous revision", []).append(elapsed)
        record("SHA-1 of it", []).append(ms(lambda p=payload: hexdigest(p))[0])
        elapsed, base = ms(lambda p=payload: Commit.decode(SCHEMA, p))
        record("decode it", []).append(elapsed)
        frame = series._checked_frame(row)
        pages = [(frame, frame.start(), frame.stop(), Closed.BOTH)]
        elapsed, rows = ms(lambda p=pages, s=series: s.stage_pages(p, _inline()))
        record("stage the row (encode + hash 5 columns)", []).append(elapsed)
        elapsed, commit = ms(lambda b=base, r=rows: _overlay(SCHEMA, b, r))
        record("overlay the row on the commit", []).append(elapsed)
        elapsed, new = ms(commit.encode)
        record("encode the new commit", []).append(elapsed)
        elapsed, key = ms(lambda n=new: hexdigest(n))
        record("SHA-1 of the new commit", []).append(elapsed)
        elapsed, _ = ms(lambda n=new, k=f"{turn}-{key}": scratch.write(k, n))
        record("write the revision (fsync)", []).append(elapsed)
        record("whole write, warm handle", []).append(ms(lambda s=series, r=row: s.write(r))[0])
        times.setdefault("revision bytes", []).append(len(new))
    return times


class _inline:
    """A stand-in for `Background` that writes at once (the row is embedded anyway)."""

    def submit(self, fn: Callable, *args: Any) -> None:
        fn(*args)


def encode_parts(commit: Commit) -> dict[str, float]:
    """Milliseconds of each part of `Commit.encode`, measured one by one."""
    from lakota.commit import _digest_codec, _int_codec, _str_codec

    parts = {
        "encode: start + stop": lambda: [
            SCHEMA[n].codec.encode(bounds[n])
            for bounds in (commit.start, commit.stop)
            for n in SCHEMA.idx
        ],
        "encode: digest columns": lambda: [_digest_codec.encode(commit.digest[n]) for n in SCHEMA],
        "encode: label": lambda: _str_codec.encode(commit.label),
        "encode: length + closed": lambda: (
            _int_codec.encode(commit.length),
            _str_codec.encode(commit.closed),
        ),
        "encode: embedded map (collect referenced)": lambda: {
            d: bytes(commit.embedded[d]) for d in sorted(commit.digests()) if d in commit.embedded
        },
        "encode: msgpack of the whole body": lambda: msgpack.packb(
            [{"embedded": commit.embedded}, "|O", [1]], use_bin_type=True
        ),
    }
    return {name: statistics.median(ms(call)[0] for _ in range(5)) for name, call in parts.items()}


def report(count: int, writes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="lakota-commit-cost-") as tmp:
        began = time.perf_counter()
        collection = build(tmp, count)
        print(f"\n## {count:,} series (built in {time.perf_counter() - began:.1f} s)")
        times = steps(collection, count, writes)
        size = statistics.median(times.pop("revision bytes"))
        print(f"revision: {size / 1e3:,.1f} kB")
        for name, samples in times.items():
            print(f"  {name:45s} {statistics.median(samples):9.2f} ms")
        commit = collection.commit()
        for name, value in encode_parts(commit).items():
            print(f"  {name:45s} {value:9.2f} ms")
        payload = collection.changelog.leaf().read()
        for name, value in field_bytes(payload).items():
            print(f"  bytes of {name:36s} {value:>12,}")
    if count > UNEMBEDDED_MAX:
        return
    with tempfile.TemporaryDirectory(prefix="lakota-commit-cost-") as tmp:
        saved = settings.embed_max_size
        settings.embed_max_size = 0
        try:
            collection = build(tmp, count)
            times = steps(collection, count, writes)
        finally:
            settings.embed_max_size = saved
        size = statistics.median(times["revision bytes"])
        whole = statistics.median(times["whole write, warm handle"])
        print(f"  nothing embedded: revision {size / 1e3:,.1f} kB, whole write {whole:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default="10,1000,10000")
    parser.add_argument("--writes", type=int, default=10)
    args = parser.parse_args(argv)
    for count in (int(text) for text in args.series.split(",")):
        report(count, args.writes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
