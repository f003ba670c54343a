"""Segment size: `settings.page_len` of 100,000 rows (ours) against 500,000 (lakota 0.7.1).

    .venv/bin/python bench/page_len.py            # both sizes, in that order
    .venv/bin/python bench/page_len.py 500000 100000

On a local folder, for each size: one write of 2,000,000 rows (timestamp, float), a full
read, a read of 1,000 rows in the middle by start/stop, and `defrag` after ten writes
of 100,000 rows that each overlap the previous one by half. Prints medians (5 rounds, 21
for the small read); run it a few times in both orders on a noisy machine.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy

from lakota import Repo, Schema
from lakota.utils import settings

ROWS = 2_000_000
STAMPS = numpy.datetime64("2020-01-01T00:00:00", "s") + numpy.arange(ROWS)
VALUES = numpy.random.default_rng(0).normal(size=ROWS).cumsum()
SCHEMA = Schema(ts="timestamp*", value="float")


def median_time(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fresh_series(root: str):
    shutil.rmtree(root, ignore_errors=True)
    return Repo(root).create_collection(SCHEMA, "c") / "s"


def overlapping_then_defrag(root: str) -> tuple[float, int, int]:
    """Seconds `defrag` takes after ten half-overlapping writes; revisions; segments left."""
    series = fresh_series(root)
    for i in range(10):
        part = slice(i * 50_000, i * 50_000 + 100_000)
        series.write({"ts": STAMPS[part], "value": VALUES[part]})
    start = time.perf_counter()
    revisions = series.collection.defrag()
    elapsed = time.perf_counter() - start
    return elapsed, len(revisions), len(series.collection.commit())


def measure(page_len: int, root: str) -> dict[str, str]:
    settings.page_len = page_len
    found = {}
    write = median_time(lambda: fresh_series(root).write({"ts": STAMPS, "value": VALUES}), 5)
    found["write 2M rows"] = f"{write * 1000:.1f} ms"
    series = Repo(root) / "c" / "s"
    found["full read"] = f"{median_time(series.frame, 5) * 1000:.1f} ms"
    low = STAMPS[ROWS // 2 + 1234]
    ranged = median_time(lambda: series.frame(start=low, stop=low + 999), 21)
    found["read of 1,000 rows"] = f"{ranged * 1000:.1f} ms"
    runs = [overlapping_then_defrag(root) for _ in range(3)]
    found["defrag after overlaps"] = f"{statistics.median(r[0] for r in runs) * 1000:.1f} ms"
    found["  revisions, segments"] = f"{runs[0][1]}, {runs[0][2]}"
    return found


def main(sizes: list[int]) -> None:
    folder = tempfile.mkdtemp(prefix="lakota-page-len-")
    try:
        for page_len in sizes:
            for name, value in measure(page_len, f"{folder}/repo").items():
                print(f"page_len={page_len:>7}  {name:24} {value}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [100_000, 500_000])
