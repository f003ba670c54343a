"""Many series in one collection (issue 16): small writes, listing and point reads.

``python bench/many_series.py [--series 10,1000,10000] [--large] [--engines lakota,arcticdb]``

A user with many instruments keeps one collection (an ArcticDB library) with one series
(symbol) per instrument and writes one row at a time as data arrives. For each number of
series this builds such a store in batches (`Collection.multi()`, ArcticDB
`write_batch`), then times, one engine at a time in its own virtual environment
(`envs.py`): one-row writes after the end of random series, the bytes each such write adds
to the store, the listing of the series, and the read of one series in a fresh process
(open the store, then read: what a script started for one instrument pays). Every read is
verified. Results are cached per engine and per number of series in
``build/bench-results/many-series/<engine>.json``, so `--large` (100,000 series, several
minutes per engine) can be run on its own and still appear in the table. See
bench/README.md, "Many series".
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import envs
import report

BENCH = Path(__file__).resolve().parent
RESULTS = envs.ROOT / "build" / "bench-results" / "many-series"
ENGINES = ("lakota", "lakota-lean", "lakota071", "arcticdb")
GROUP = "instruments"
BUILD_KEY, WRITE_KEY, PICK_KEY = 10, 11, 12
DEFAULT_SERIES = (10, 1_000, 10_000)
LARGE = 100_000
WRITE_LIMIT = 64 * 1024  # bytes of revision data per one-row write at 100,000 series
ENGINE_SECONDS = 3 * 3600  # one engine's run; 100,000 series take well under an hour
WRITE_FACTOR = 3.0  # the write at N series against the write at 10 series
READ_SECONDS = 600  # one fresh-process read


# --- the workload (runs in the engine's environment) ----------------------------------


def _name(number: int) -> str:
    return f"i{number:06d}"


def _initial(number: int, rows: int) -> Any:
    from datagen import make_columns

    return make_columns(rows, (BUILD_KEY, number))


def build(engine: Any, count: int, rows: int, batch: int, log: Any) -> float:
    """Write `count` series of `rows` rows in batches of `batch`; seconds of engine calls."""
    from workloads import timed

    spent = 0.0
    for first in range(0, count, batch):
        numbers = range(first, min(count, first + batch))
        items = [(_name(i), engine.prepare_one(_initial(i, rows))) for i in numbers]
        spent += timed(lambda items=items: engine.write_many(GROUP, items))[0]
        log(f"  built {numbers[-1] + 1:,} of {count:,} series ({spent:.1f} s)")
    return spent


def _written_row(number: int, rows: int) -> Any:
    """The row a one-row write adds after the end of series `number`."""
    from datagen import INDEX, make_columns

    return make_columns(1, (WRITE_KEY, number), _initial(number, rows)[INDEX][-1])


def _expected(number: int, rows: int, written: bool) -> Any:
    from datagen import concat

    initial = _initial(number, rows)
    return concat(initial, _written_row(number, rows)) if written else initial


def one_row_writes(ctx: Any, store: Path, count: int, rows: int, writes: int) -> list[int]:
    """`writes` one-row appends to distinct random series; records time and bytes added."""
    import numpy
    from datagen import SEED, check
    from workloads import disk_usage, settle, timed

    rng = numpy.random.default_rng((SEED, PICK_KEY, count))
    picks = rng.choice(count, size=min(writes, count), replace=False).tolist()
    samples = []
    settle()
    before = disk_usage(store)
    with ctx.handle(store, GROUP) as engine:
        for number in picks:
            native = engine.prepare(_written_row(number, rows))
            samples.append(timed(lambda n=native, i=number: engine.append(GROUP, _name(i), n))[0])
    settle()
    grown = disk_usage(store) - before
    ctx.record("write", samples)
    ctx.record("write_bytes", [grown / len(picks)], "bytes", note="store growth per write")
    with ctx.handle(store, GROUP) as engine:
        for number in picks:
            got = engine.read(GROUP, _name(number))
            check(_expected(number, rows, True), got, f"series {_name(number)}")
    return picks


def listing(ctx: Any, store: Path, count: int, rounds: int) -> None:
    """The names of every series, on a fresh handle each round."""
    from datagen import VerificationError
    from workloads import timed

    samples = []
    for _ in range(rounds):
        with ctx.handle(store, GROUP) as engine:
            elapsed, names = timed(lambda engine=engine: engine.names(GROUP))
        if sorted(names) != [_name(i) for i in range(count)]:
            raise VerificationError(f"listing: {len(names)} names, expected {count}")
        samples.append(elapsed)
    ctx.record("listing", samples)


def fresh_reads(ctx: Any, engine: str, store: Path, count: int, rows: int, written: list) -> None:
    """Open the store and read one random series, each time in a new process."""
    import numpy
    from datagen import SEED

    rng = numpy.random.default_rng((SEED, PICK_KEY, count, 1))
    samples = []
    for number in rng.choice(count, size=ctx.rounds).tolist():
        command = [sys.executable, str(Path(__file__).resolve()), "read", "--engine", engine]
        command += ["--store", str(store), "--number", str(number), "--rows", str(rows)]
        command += ["--written"] if number in written else []
        done = subprocess.run(command, capture_output=True, text=True, timeout=READ_SECONDS)
        if done.returncode != 0:
            raise RuntimeError(f"fresh-process read failed:\n{done.stdout}{done.stderr}")
        samples.append(json.loads(done.stdout)["seconds"])
    ctx.record("fresh_read", samples)


def read_one(args: argparse.Namespace) -> int:
    """`read` command: open the store, read one series, verify; print the seconds.

    The engine's packages are imported before the clock starts: what is timed is what
    a running program pays to open the store and read, not Python's start-up.
    """
    import importlib

    from datagen import check
    from engines import ENGINES as ADAPTERS

    for package in ADAPTERS[args.engine].packages:
        importlib.import_module(package)
    began = time.perf_counter()
    engine = ADAPTERS[args.engine](Path(args.store))
    engine.open_group(GROUP)
    got = engine.read(GROUP, _name(args.number))
    elapsed = time.perf_counter() - began
    expected = _expected(args.number, args.rows, args.written)
    check(expected, got, f"fresh read of {_name(args.number)}")
    engine.close()
    print(json.dumps({"seconds": elapsed}))
    return 0


def run_count(engine: str, count: int, args: argparse.Namespace, workdir: Path) -> dict:
    """Every measurement for one number of series, in a new store."""
    import workloads
    from engines import ENGINES as ADAPTERS
    from scales import SCALES

    ctx = workloads.Context(
        ADAPTERS[engine], SCALES["quick"], workdir, rounds=args.rounds, label=f"{engine} {count:,}"
    )
    store = workdir / f"store-{count}"
    with ctx.handle(store, GROUP, create=True) as handle:
        spent = build(handle, count, args.rows, args.batch, ctx.log)
    ctx.record("build", [spent], note=f"batches of {args.batch:,} series")
    picks = one_row_writes(ctx, store, count, args.rows, args.writes)
    listing(ctx, store, count, args.rounds)
    fresh_reads(ctx, engine, store, count, args.rows, picks)
    return ctx.results()["metrics"]


def work(args: argparse.Namespace) -> int:
    """`run` command: every number of series for one engine; JSON to `args.out`."""
    import shutil

    from engines import ENGINES as ADAPTERS
    from worker import describe

    result: dict[str, Any] = {"engine": args.engine, "ok": False, "by_series": {}}
    workdir = Path(tempfile.mkdtemp(prefix=f"lakota-many-{args.engine}-", dir=args.tmpdir))
    status = 1
    try:
        result.update(describe(args.engine, ADAPTERS[args.engine]))
        for count in args.series:
            result["by_series"][str(count)] = run_count(args.engine, count, args, workdir)
            shutil.rmtree(workdir / f"store-{count}", ignore_errors=True)
        result["ok"], status = True, 0
    except Exception as exc:
        import traceback

        traceback.print_exc()
        result.update(failure="crash", error=f"{type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        Path(args.out).write_text(json.dumps(result, indent=1))
    return status


# --- the driver (standard library only) -----------------------------------------------


def counts(text: str) -> list[int]:
    try:
        values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 10,1000, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return sorted(set(values))


def engine_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ENGINES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose engines from {','.join(ENGINES)}")
    return names


def options(parser: argparse.ArgumentParser) -> None:
    """The options the driver passes on to the workers."""
    parser.add_argument("--series", type=counts, default=list(DEFAULT_SERIES))
    parser.add_argument("--rows", type=int, default=10, help="rows per series at first")
    parser.add_argument("--writes", type=int, default=20, help="one-row writes timed")
    parser.add_argument("--batch", type=int, default=10_000, help="series per build batch")
    parser.add_argument("--rounds", type=int, default=5, help="listings and fresh reads")
    parser.add_argument("--tmpdir", default=None, help="where the stores go")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    compare = commands.add_parser("compare", help="run engines and print the table (default)")
    options(compare)
    compare.add_argument("--large", action="store_true", help=f"add {LARGE:,} series")
    compare.add_argument("--engines", type=engine_list, default=["lakota", "arcticdb"])
    compare.add_argument("--markdown", type=Path, help="also write the table here")
    compare.add_argument("--no-cache", dest="cache", action="store_false")
    compare.add_argument("--report", action="store_true", help="run nothing: cached results")
    runner = commands.add_parser("run", help="one engine, in its environment")
    options(runner)
    runner.add_argument("--engine", choices=ENGINES, required=True)
    runner.add_argument("--out", required=True)
    reader = commands.add_parser("read", help="one fresh-process read")
    reader.add_argument("--engine", choices=ENGINES, required=True)
    reader.add_argument("--store", required=True)
    reader.add_argument("--number", type=int, required=True)
    reader.add_argument("--rows", type=int, required=True)
    reader.add_argument("--written", action="store_true", help="it had a one-row write")
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("compare", "run", "read", "-h", "--help"):
        argv.insert(0, "compare")
    args = parser.parse_args(argv)
    if args.command == "compare" and args.large and LARGE not in args.series:
        args.series = sorted([*args.series, LARGE])
    return args


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_engine(engine: str, args: argparse.Namespace) -> dict:
    try:
        python = envs.ensure(engine, log=log)
    except envs.EnvError as exc:
        return {"engine": engine, "ok": False, "failure": "install", "error": str(exc)}
    with tempfile.TemporaryDirectory(prefix="lakota-many-") as scratch:
        out = Path(scratch) / "result.json"
        command = [str(python), str(Path(__file__).resolve()), "run", "--engine", engine]
        command += ["--out", str(out), "--series", ",".join(map(str, args.series))]
        command += ["--rows", str(args.rows), "--writes", str(args.writes)]
        command += ["--batch", str(args.batch), "--rounds", str(args.rounds)]
        command += ["--tmpdir", args.tmpdir] if args.tmpdir else []
        log(f"[{engine}] {', '.join(f'{n:,}' for n in args.series)} series")
        try:
            subprocess.run(command, cwd=scratch, timeout=ENGINE_SECONDS)
        except subprocess.TimeoutExpired:
            error = f"no result after {ENGINE_SECONDS} s"
            return {"engine": engine, "ok": False, "failure": "timeout", "error": error}
        if not out.is_file():
            return {"engine": engine, "ok": False, "failure": "crash", "error": "no result"}
        result = json.loads(out.read_text())
    result["date"] = datetime.now().isoformat(timespec="seconds")
    return result


def remember(result: dict, sizes: dict) -> None:
    """Add the counts measured now to the engine's cached results (same sizes only)."""
    path = RESULTS / f"{result['engine']}.json"
    cached = json.loads(path.read_text()) if path.is_file() else {}
    if cached.get("sizes") != sizes:
        cached = {}
    by_series = cached.get("by_series", {})
    for count, metrics in result["by_series"].items():
        by_series[count] = {"metrics": metrics, "date": result["date"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**result, "by_series": by_series, "sizes": sizes}
    path.write_text(json.dumps(document, indent=1))


def cached(engine: str, sizes: dict) -> dict | None:
    path = RESULTS / f"{engine}.json"
    if not path.is_file():
        return None
    document = json.loads(path.read_text())
    return document if document.get("sizes") == sizes and document.get("ok") else None


ROWS = (
    ("write", "one-row write to one series (median of {writes})", "s"),
    ("write_bytes", "bytes added to the store per such write", "bytes"),
    ("listing", "listing the series (median of {rounds})", "s"),
    ("fresh_read", "open + read of one series in a fresh process (median of {rounds})", "s"),
    ("build", "building the store (batches of {batch:,} series)", "s"),
)


def _shown(value: float | None, unit: str) -> str:
    if value is not None and unit == "bytes" and value < 1e6:
        return f"{value / 1e3:.3g} kB"
    return report.fmt_value(value, unit)


def _median(document: dict | None, count: str, key: str) -> float | None:
    metric = (document or {}).get("by_series", {}).get(count, {}).get("metrics", {}).get(key)
    return None if metric is None else statistics.median(metric["samples"])


def _target(key: str, document: dict | None, count: str) -> tuple[str, str]:
    """The issue-16 target of a cell of the subject, and whether it is met."""
    value = _median(document, count, key)
    if key == "write":
        base = _median(document, "10", key)
        if count == "10" or base is None or value is None:
            return "", ""
        ratio = value / base
        return f"≤ 3 × write at 10 series: {ratio:.1f} ×", "yes" if ratio <= WRITE_FACTOR else "NO"
    if key == "write_bytes" and value is not None and count != "10":
        return "≤ 64 KB", "yes" if value <= WRITE_LIMIT else "NO"
    return "", ""


def table(results: dict[str, dict], sizes: dict) -> list[list[str]]:
    engines = [name for name in report.ORDER if name in results]
    subject = results.get("lakota")
    counts_seen = sorted(
        {int(c) for r in results.values() for c in r.get("by_series", {})},
    )
    header = ["series", "measure", *engines, "lakota / arcticdb", "target (lakota)", "met"]
    lines = [header]
    for count in map(str, counts_seen):
        for key, label, unit in ROWS:
            cells = [_shown(_median(results[e], count, key), unit) for e in engines]
            mine = _median(subject, count, key)
            theirs = _median(results.get("arcticdb"), count, key)
            ratio = report.fmt_ratio(mine / theirs) if mine is not None and theirs else ""
            line = [f"{int(count):,}", label.format(**sizes), *cells, ratio]
            lines.append(line + list(_target(key, subject, count)))
    return lines


def as_markdown(lines: list[list[str]]) -> str:
    header, *body = lines
    out = ["| " + " | ".join(header) + " |"]
    out.append("|" + "|".join(["---:", "---"] + ["---:"] * (len(header) - 3) + [":---:"]) + "|")
    out += ["| " + " | ".join(line) + " |" for line in body]
    return "\n".join(out)


def compare(args: argparse.Namespace) -> int:
    sizes = {"rows": args.rows, "writes": args.writes, "batch": args.batch, "rounds": args.rounds}
    results: dict[str, dict] = {}
    for engine in [] if args.report else args.engines:
        result = run_engine(engine, args)
        if not result.get("ok"):
            log(f"FAILED: {engine}: {result.get('failure')}: {result.get('error')}")
            return 1
        remember(result, sizes)
        results[engine] = cached(engine, sizes) if args.cache else None
        if results[engine] is None:
            by_series = {c: {"metrics": m} for c, m in result["by_series"].items()}
            results[engine] = {**result, "by_series": by_series}
    if args.cache:
        for engine in ENGINES:
            if engine not in results and (found := cached(engine, sizes)) is not None:
                results[engine] = found
    text = as_markdown(table(results, sizes))
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.command == "run":
        return work(args)
    if args.command == "read":
        return read_one(args)
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
