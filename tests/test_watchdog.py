"""The watchdogs that turn a deadlocked test run into a failure showing every thread's stack.

A deadlock that holds the GIL (CPython issue #106883 in a dask worker, for one) stops
pytest-timeout, whose handler needs the GIL. Two watchdogs work without it: faulthandler's
per-test timer (pyproject.toml) and the ``timeout --signal=ABRT`` around pytest in
``make test``, whose signal faulthandler turns into a stack dump. Each is shown here on a
test that deadlocks while holding the GIL.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WAIT = 90  # seconds: far more than either watchdog needs below

HANGING_TEST = '''
import ctypes


def test_holds_the_gil_forever():
    libc = ctypes.PyDLL(None)  # PyDLL: calls keep the GIL
    mutex = ctypes.create_string_buffer(64)  # zeros: an unlocked default pthread mutex
    libc.pthread_mutex_lock(mutex)
    libc.pthread_mutex_lock(mutex)  # a second lock by its owner never returns
'''


def run_hanging_test(
    tmp_path: Path, prefix: list[str], *options: str
) -> subprocess.CompletedProcess:
    """pytest with the project's configuration on `HANGING_TEST`, behind `prefix`."""
    (tmp_path / "test_hang.py").write_text(HANGING_TEST)
    command = [*prefix, sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml")]
    command += ["--rootdir", str(tmp_path), "-p", "no:cacheprovider", "-o", "timeout=1"]
    command += [*options, str(tmp_path / "test_hang.py")]
    return subprocess.run(command, capture_output=True, text=True, timeout=WAIT, cwd=tmp_path)


def test_faulthandler_ends_a_run_that_holds_the_gil(tmp_path):
    done = run_hanging_test(tmp_path, [], "-o", "faulthandler_timeout=2")
    assert done.returncode != 0
    assert "Timeout (0:00:02)!" in done.stderr
    assert "in test_holds_the_gil_forever" in done.stderr
    assert "pytest-timeout" not in done.stdout  # the control: it could not interrupt


def make_test_prefix(seconds: int) -> list[str]:
    """The command that `make test` puts before pytest, bounding it to `seconds`."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, flags=re.M).group(1)
    line = next(line for line in recipe.splitlines() if "pytest" in line)
    prefix = line.split("$(BIN)/python")[0].replace("$(TEST_TIMEOUT)", str(seconds))
    return shlex.split(prefix)


def test_make_test_aborts_a_hung_run_with_every_stack(tmp_path):
    prefix = make_test_prefix(20)  # pytest starts well within it, even on a busy machine
    assert prefix[0] == "timeout"
    done = run_hanging_test(tmp_path, prefix, "-o", "faulthandler_timeout=0")
    assert done.returncode == 124  # timeout(1): the command timed out
    assert "Fatal Python error: Aborted" in done.stderr
    assert "in test_holds_the_gil_forever" in done.stderr
