"""Speed of the web interface's JSON routes: ``python bench/web.py [--rows N] [--series N]``.

Builds, in a temporary folder, one series of `--rows` rows (default 10,000,000) and one
collection of `--series` series (default 50,000), serves them with ``lakota serve`` on
127.0.0.1 and times, over HTTP, what the pages ask for: the first view of the chart (M4
over every row), a zoom on 1% of the range, the table's first page, and the series list
filtered and paged. Prints the best of `--rounds` runs of each, in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import numpy

from lakota import Repo, Schema

ROOT = Path(__file__).resolve().parent.parent


def build(folder: Path, rows: int, series: int) -> None:
    repo = Repo(str(folder))
    long = repo.create_collection(Schema(timestamp="timestamp*", value="float"), "long")
    stamps = numpy.datetime64("2020-01-01", "s") + numpy.arange(rows)
    values = numpy.cumsum(numpy.random.default_rng(1).normal(size=rows))
    values[rows // 3] += 1000.0  # a spike the chart must show
    (long / "walk").write({"timestamp": stamps, "value": values})
    many = repo.create_collection(Schema(x="int*", v="float"), "many")
    with many.multi():
        for pos in range(series):
            (many / f"series-{pos:06}").write({"x": [0], "v": [float(pos)]})


def serve(folder: Path) -> tuple[subprocess.Popen, str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "lakota", "serve", f"bench {folder}", "-w", url]
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/ui/", timeout=1).close()
            return proc, url + "/ui/api"
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("lakota serve did not start")


def best_ms(url: str, rounds: int) -> tuple[float, dict]:
    times, body = [], {}
    for _ in range(rounds):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=120) as response:
            body = json.loads(response.read())
        times.append(time.perf_counter() - started)
    return min(times) * 1000, body


def cases(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(name, route) of each timed request."""
    walk = {"repo": "bench", "collection": "long", "series": "walk"}
    middle = 1577836800 + args.rows // 2  # 2020-01-01 plus half the rows, in seconds
    zoom = {**walk, "start": middle, "stop": middle + args.rows // 100}
    many = {"repo": "bench", "collection": "many", "q": "0042"}
    return [
        (f"chart, first view ({args.rows:,} rows)", "plot?" + urlencode({**walk, "width": 1200})),
        ("chart, zoom on 1% of the range", "plot?" + urlencode({**zoom, "width": 1200})),
        ("table, first page of 50 rows", "rows?" + urlencode(walk)),
        (f"series list, filtered ({args.series:,} series)", "series?" + urlencode(many)),
    ]


def sent(body: dict) -> int:
    """Points of a chart, rows of a table page, labels of a series page."""
    if "points" in body:
        return body["points"]
    return len(body["rows"] if "rows" in body else body["labels"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--series", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "repo"
        started = time.perf_counter()
        build(folder, args.rows, args.series)
        print(f"built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        proc, api = serve(folder)
        try:
            print(f"| request | best of {args.rounds} (ms) | points or rows sent |")
            print("|---|---:|---:|")
            for name, route in cases(args):
                ms, body = best_ms(f"{api}/{route}", args.rounds)
                print(f"| {name} | {ms:.0f} | {sent(body)} |")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
