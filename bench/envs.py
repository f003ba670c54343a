"""One virtual environment per engine, under ``build/bench-venvs/<engine>``, made on demand.

Versions are pinned (and numpy is the same everywhere) so that runs stay comparable. An
environment is reused while its stamp file matches the wanted requirements; otherwise it
is rebuilt from scratch. The `lakota` engine installs the working tree in editable mode,
so code changes need no reinstall. Standard library only: the driver imports this.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / "build" / "bench-venvs"
STAMP = ".bench-stamp"
NUMPY = "numpy==2.4.6"
REQUIREMENTS: dict[str, list[str]] = {
    "lakota": ["-e", str(ROOT)],
    "lakota-lean": ["-e", str(ROOT)],
    "lakota071": ["lakota==0.7.1"],
    "arcticdb": ["arcticdb==6.28.2"],
    "parquet": ["pyarrow==26.0.1"],
    "npy": [],
}
ENGINES = tuple(REQUIREMENTS)


class EnvError(Exception):
    """An engine's environment could not be built (its packages did not install)."""


def _wanted(engine: str) -> str:
    """The stamp text: what the environment must hold."""
    wanted = {
        "python": sys.version,
        "requirements": [NUMPY, *REQUIREMENTS[engine]],
    }
    if REQUIREMENTS[engine][:1] == ["-e"]:
        wanted["pyproject"] = hashlib.sha1((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return json.dumps(wanted, sort_keys=True)


def python_of(engine: str) -> Path:
    return VENVS / engine / "bin" / "python"


def ensure(engine: str, reinstall: bool = False, log=print) -> Path:
    """The interpreter of `engine`'s environment, built first if needed (EnvError if not)."""
    if engine not in REQUIREMENTS:
        raise KeyError(f"Unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    folder, wanted = VENVS / engine, _wanted(engine)
    stamp = folder / STAMP
    if not reinstall and stamp.is_file() and stamp.read_text() == wanted:
        return python_of(engine)
    log(f"[{engine}] building {folder} (once; pip output in {folder}.log)")
    if folder.exists():
        shutil.rmtree(folder)
    VENVS.mkdir(parents=True, exist_ok=True)
    log_path = VENVS / f"{engine}.log"
    log_path.write_text("")
    _run(log_path, "venv", [sys.executable, "-m", "venv", str(folder)])
    install = [str(python_of(engine)), "-m", "pip", "install", "--disable-pip-version-check"]
    _run(log_path, "pip install", install + [NUMPY, *REQUIREMENTS[engine]])
    stamp.write_text(wanted)
    return python_of(engine)


INSTALL_SECONDS = 1800  # one pip command building an engine's environment


def _run(log_path: Path, what: str, command: list[str]) -> None:
    """Run `command` with its output appended to `log_path`; EnvError if it fails."""
    with open(log_path, "a") as log_file:
        log_file.write(f"$ {' '.join(command)}\n")
        log_file.flush()
        try:
            done = subprocess.run(
                command, stdout=log_file, stderr=subprocess.STDOUT, timeout=INSTALL_SECONDS
            )
        except subprocess.TimeoutExpired:
            raise EnvError(f"{what} did not finish in {INSTALL_SECONDS} s") from None
    if done.returncode != 0:
        lines = log_path.read_text().strip().splitlines()
        raise EnvError(f"{what} failed: {lines[-1] if lines else 'no output'}")
