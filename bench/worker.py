"""Run the workloads of one engine in this interpreter (the engine's own virtual environment).

``worker.py run --engine NAME --scale SCALE --out FILE`` runs every workload in a fresh
temporary folder and writes the results as JSON to FILE. Exit status: 0 on success, 3 when
a read returned wrong data, 1 on any other error (FILE then holds the error and the partial
results). ``worker.py probe`` measures the memory of one full read in a fresh process and
prints JSON; `run` starts it itself.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import workloads
from datagen import VerificationError
from engines import ENGINES, Engine
from scales import SCALES

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
EXIT_VERIFICATION = 3


def lakota_source(engine: str) -> str:
    """Where `lakota` comes from; refuse the wrong one (the working tree vs lakota 0.7.1)."""
    import lakota

    path = Path(lakota.__file__).resolve()
    in_tree = path.parent == ROOT / "lakota"
    if engine in ("lakota", "lakota-lean") and not in_tree:
        raise RuntimeError(f"engine lakota must import the working tree, not {path}")
    if engine == "lakota071" and (in_tree or lakota.__version__ != "0.7.1"):
        raise RuntimeError(f"engine lakota071 must import lakota 0.7.1 from PyPI, not {path}")
    return str(path.parent)


def describe(engine: str, engine_cls: type[Engine]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "engine": engine,
        "python": platform.python_version(),
        "versions": engine_cls.versions(),
    }
    if engine.startswith("lakota"):
        info["lakota_source"] = lakota_source(engine)
        origin = "PyPI" if engine == "lakota071" else "working tree"
        info["versions"]["lakota"] += f" ({origin})"
    return info


PROBE_SECONDS = 900  # one full read in a fresh process, at any scale


def probe_in_subprocess(engine: str, rows: int) -> Any:
    """A `probe` callable for `workloads.peak_memory` that runs the read in a new process."""

    def probe(store: Path) -> dict[str, int]:
        command = [sys.executable, str(Path(__file__).resolve()), "probe"]
        command += ["--engine", engine, "--store", str(store), "--rows", str(rows)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_SECONDS)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"memory probe gave no answer in {PROBE_SECONDS} s") from None
        if done.returncode == EXIT_VERIFICATION:
            raise VerificationError(done.stdout.strip() or done.stderr.strip())
        if done.returncode != 0:
            raise RuntimeError(f"memory probe failed:\n{done.stderr}")
        return json.loads(done.stdout)

    return probe


def run(args: argparse.Namespace) -> int:
    engine_cls = ENGINES[args.engine]
    sizes = SCALES[args.scale]
    result: dict[str, Any] = {"engine": args.engine, "scale": args.scale, "ok": False}
    workdir = Path(tempfile.mkdtemp(prefix=f"lakota-bench-{args.engine}-", dir=args.tmpdir))
    ctx = workloads.Context(engine_cls, sizes, workdir, rounds=args.rounds, label=args.engine)
    status = 1
    began = time.monotonic()
    try:
        result.update(describe(args.engine, engine_cls))
        probe = probe_in_subprocess(args.engine, sizes.rows)
        workloads.run_all(ctx, probe, long=args.long_history, budget=args.history_budget)
        result["ok"], status = True, 0
    except VerificationError as exc:
        result.update(failure="verification", error=str(exc))
        status = EXIT_VERIFICATION
        print(f"[{args.engine}] WRONG RESULT: {exc}", file=sys.stderr)
    except Exception as exc:
        result.update(failure="crash", error=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
    finally:
        result.update(ctx.results(), elapsed=time.monotonic() - began, workdir=str(workdir))
        Path(args.out).write_text(json.dumps(result, indent=1))
        if not args.keep_data:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


def probe(args: argparse.Namespace) -> int:
    try:
        measured = workloads.read_memory(ENGINES[args.engine], Path(args.store), args.rows)
    except VerificationError as exc:
        print(exc)
        return EXIT_VERIFICATION
    print(json.dumps(measured))
    return 0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run", help="run every workload of one engine")
    runner.add_argument("--engine", choices=sorted(ENGINES), required=True)
    runner.add_argument("--scale", choices=sorted(SCALES), required=True)
    runner.add_argument("--rounds", type=int, default=3)
    runner.add_argument("--out", required=True, help="JSON file for the results")
    runner.add_argument("--no-long-history", dest="long_history", action="store_false")
    runner.add_argument("--history-budget", type=float, default=workloads.DEFAULT_BUDGET)
    runner.add_argument("--tmpdir", default=None, help="parent of the temporary folder")
    runner.add_argument("--keep-data", action="store_true")
    prober = commands.add_parser("probe", help="peak memory of one full read")
    prober.add_argument("--engine", choices=sorted(ENGINES), required=True)
    prober.add_argument("--store", required=True)
    prober.add_argument("--rows", type=int, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    return run(args) if args.command == "run" else probe(args)


if __name__ == "__main__":
    sys.exit(main())
