"""A private virtual environment with upstream lakota 0.7.1, built once and then reused.

Upstream runs there as a black-box peer: the tests start its interpreter on
`scenario.py` and read the JSON it prints. The codec libraries (numpy, numcodecs,
msgpack) are installed at the versions of the environment running the tests, so that
both implementations encode with the same compressors and byte-level comparisons of
commits are meaningful; so are pandas and boto3, which some compatibility snippets use
(a pandas DataFrame, an S3 bucket).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

UPSTREAM = "lakota==0.7.1"
MIRRORED = ("numpy", "numcodecs", "msgpack", "pandas", "boto3")
HTTP_CLIENT = "requests"  # upstream's HttpPOD needs it, for the tests through `lakota serve`
STAMP = "interop.stamp"
PIP_TIMEOUT = 240


class VenvError(RuntimeError):
    """The upstream environment could not be built (for instance, no package registry)."""


def requirements() -> list[str]:
    """Upstream lakota plus the codec libraries pinned to our own versions, and requests."""
    return [UPSTREAM, *(f"{name}=={metadata.version(name)}" for name in MIRRORED), HTTP_CLIENT]


def clean_env() -> dict[str, str]:
    """Our environment without what would make another interpreter import our code."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
    }


def ensure_venv(folder: Path) -> Path:
    """The interpreter of `folder`'s upstream environment, built first if needed.

    A stamp file written last records the requirements, so an interrupted build or a
    change of our codec versions rebuilds it; otherwise this only checks that upstream
    lakota still imports.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        python = folder / "bin" / "python"
        stamp = folder / STAMP
        wanted = "\n".join(requirements())
        if stamp.is_file() and stamp.read_text() == wanted and upstream_version(python, folder):
            return python
        shutil.rmtree(folder, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(folder)], "create the virtual environment")
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _run(
            [*pip, "--timeout", "30", "--retries", "2", *requirements()],
            "pip install " + " ".join(requirements()),
        )
        version = upstream_version(python, folder)
        if version != "0.7.1":
            raise VenvError(f"{folder} has lakota {version!r} instead of 0.7.1 after install")
        stamp.write_text(wanted)
        return python


def upstream_version(python: Path, folder: Path) -> str | None:
    """Version of the lakota that `python` imports, if it is the one inside `folder`."""
    if not python.is_file():
        return None
    code = "import lakota; print(lakota.__version__); print(lakota.__file__)"
    result = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=folder,
        timeout=PIP_TIMEOUT,
    )
    lines = result.stdout.split()
    if result.returncode or len(lines) != 2:
        return None
    if not Path(lines[1]).resolve().is_relative_to(folder.resolve()):
        return None
    return lines[0]


def _run(command: list[str], what: str) -> None:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=clean_env(), timeout=PIP_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise VenvError(f"Could not {what}: no answer within {PIP_TIMEOUT} s") from None
    if result.returncode:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise VenvError(f"Could not {what}:\n" + "\n".join(output[-15:]))
