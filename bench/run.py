"""Benchmark lakota against lakota 0.7.1, ArcticDB (LMDB), parquet (pyarrow) and raw .npy files.

``python bench/run.py [--quick | --scale small|medium] [--engines lakota,arcticdb] ...``

Each engine runs in its own virtual environment (``build/bench-venvs/<engine>``, built on
first use) and its own process (`worker.py`), one engine at a time, in a fresh temporary
folder. Every read is verified against the generated data: a wrong result makes the run
exit with status 1. Results of engines not run this time are taken from the last run at the
same scale (``build/bench-results/<scale>/<engine>.json``, marked ``*``), so one engine
can be measured again without re-running its peers. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import envs
import report
from scales import SCALES

BENCH = Path(__file__).resolve().parent
RESULTS = envs.ROOT / "build" / "bench-results"


def engine_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in envs.ENGINES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown engine(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {','.join(envs.ENGINES)}"
        )
    return list(dict.fromkeys(names))


def positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=("small", "medium"), default="small")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--engines", type=engine_list, default=list(envs.ENGINES))
    parser.add_argument("--rounds", type=positive, default=3)
    parser.add_argument(
        "--no-long-history",
        dest="long_history",
        action="store_false",
        help="skip the append after 10,000 revisions (the slowest part)",
    )
    parser.add_argument(
        "--history-budget",
        type=float,
        default=1800.0,
        help="seconds allowed per engine to build the long history (default 1800)",
    )
    parser.add_argument("--json", type=Path, help="write every result to this JSON file")
    parser.add_argument("--markdown", type=Path, help="write the table to this markdown file")
    parser.add_argument(
        "--no-cache", dest="cache", action="store_false", help="show only engines run now"
    )
    parser.add_argument("--reinstall", action="store_true", help="rebuild the environments")
    parser.add_argument("--tmpdir", help="where the temporary stores go (default: system temp)")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary stores")
    args = parser.parse_args(argv)
    args.scale = "quick" if args.quick else args.scale
    return args


ENGINE_SECONDS = 4 * 3600  # one engine's workloads; the medium scale takes well under an hour


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_engine(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    """Build the engine's environment if needed and run its worker; never raises."""
    try:
        python = envs.ensure(engine, reinstall=args.reinstall, log=log)
    except envs.EnvError as exc:
        log(f"[{engine}] NOT INSTALLED: {exc}")
        return {"engine": engine, "ok": False, "failure": "install", "error": str(exc)}
    with tempfile.TemporaryDirectory(prefix="lakota-bench-") as scratch:
        out = Path(scratch) / "result.json"
        command = [str(python), str(BENCH / "worker.py"), "run", "--engine", engine]
        command += ["--scale", args.scale, "--rounds", str(args.rounds), "--out", str(out)]
        command += ["--history-budget", str(args.history_budget)]
        command += [] if args.long_history else ["--no-long-history"]
        command += ["--tmpdir", args.tmpdir] if args.tmpdir else []
        command += ["--keep-data"] if args.keep_data else []
        log(f"[{engine}] running {args.scale} workloads")
        began = time.monotonic()
        try:
            done = subprocess.run(command, cwd=scratch, timeout=ENGINE_SECONDS)
        except subprocess.TimeoutExpired:
            log(f"[{engine}] TIMED OUT after {ENGINE_SECONDS} s")
            error = f"no result after {ENGINE_SECONDS} s"
            return {"engine": engine, "ok": False, "failure": "timeout", "error": error}
        if not out.is_file():
            return {
                "engine": engine,
                "ok": False,
                "failure": "crash",
                "error": f"exit {done.returncode}",
            }
        result = json.loads(out.read_text())
    log(f"[{engine}] finished in {time.monotonic() - began:.0f} s (exit {done.returncode})")
    result["date"] = datetime.now().isoformat(timespec="seconds")
    return result


def cache_path(scale: str, engine: str) -> Path:
    return RESULTS / scale / f"{engine}.json"


def load_cached(scale: str, engine: str) -> dict[str, Any] | None:
    """The last successful result of `engine` at `scale`, if its sizes are still current."""
    path = cache_path(scale, engine)
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    if not result.get("ok") or result.get("sizes") != asdict(SCALES[scale]):
        return None
    return {**result, "cached": result.get("date", "?")}


def preamble(args: argparse.Namespace, results: dict[str, dict], machine: dict) -> list[str]:
    sizes = SCALES[args.scale]
    lines = [
        f"Scale {args.scale}: {sizes.rows:,} rows (timestamp + 3 float64 + 1 int64, "
        f"{sizes.rows * 40 / 1e6:,.0f} MB raw), medians of {args.rounds} rounds, "
        f"{datetime.now():%Y-%m-%d}.",
        f"Machine: {machine.get('cores')} cores, {machine.get('cpu')}, "
        f"{machine.get('memory_gib')} GiB; shared and noisy: compare medians and ratios only.",
    ]
    for name in report.ORDER:
        if name in results and results[name].get("versions"):
            versions = ", ".join(f"{k} {v}" for k, v in results[name]["versions"].items())
            lines.append(f"{name}: {versions}.")
    return [f"{line}  " for line in lines]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    results: dict[str, dict] = {}
    for engine in args.engines:
        results[engine] = result = run_engine(engine, args)
        if result.get("ok"):
            cache_path(args.scale, engine).parent.mkdir(parents=True, exist_ok=True)
            cache_path(args.scale, engine).write_text(json.dumps(result, indent=1))
    if args.cache:
        for engine in envs.ENGINES:
            cached = None if engine in results else load_cached(args.scale, engine)
            if cached is not None:
                results[engine] = cached
    sizes = asdict(SCALES[args.scale])
    table = report.build(results, sizes)
    machine = report.machine()
    print(report.as_text(table), flush=True)
    if args.markdown:
        args.markdown.write_text(report.as_markdown(table, preamble(args, results, machine)))
    if args.json:
        document = {
            "scale": args.scale,
            "sizes": sizes,
            "rounds": args.rounds,
            "date": datetime.now().isoformat(timespec="seconds"),
            "machine": machine,
            "engines": results,
            "targets": table.targets,
        }
        args.json.write_text(json.dumps(document, indent=1))
    failed = [e for e in args.engines if results[e].get("failure") in ("verification", "crash")]
    for engine in failed:
        log(f"FAILED: {engine}: {results[engine]['failure']}: {results[engine].get('error')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
