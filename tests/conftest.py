"""Shared fixtures: a `repo` on every storage kind, and helpers to check commits.

Storage kinds live in `REPO_FACTORIES`. A factory receives the pytest request and a
fresh temporary folder, prepares a storage (starting a service through
``request.getfixturevalue`` if it needs one, or calling ``pytest.skip``), and returns an
*opener*: a function that builds a new `Repo` object on that same storage each time it
is called. `repo` is the first such object, and `reopen` opens another one, as a second
process would. To add a storage, add a factory here; `pod_kinds` decides which kinds
run: all of them, or those named in ``LAKOTA_TEST_PODS`` (comma separated), narrowed by
a ``pod_kinds`` marker on the test or its module. Engine logic that does not depend on
the storage runs on the core kinds only (``pytest.mark.pod_kinds(*CORE_KINDS)``);
``pytest.mark.pod_kinds()`` without names means every kind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy
import pytest

from lakota import Repo
from lakota.commit import Commit
from lakota.pod import POD, MemPOD
from lakota.utils import Closed, digest_path

Opener = Callable[[], Repo]
RepoFactory = Callable[[pytest.FixtureRequest, Path], Opener]


def memory_repo(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """In-memory storage; every opener call shares the same store."""
    store = MemPOD().store
    return lambda: Repo(pod=MemPOD(store=store))


def file_repo(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """A local folder, opened by its path."""
    return lambda: Repo(str(tmp_path / "repo"))


REPO_FACTORIES: dict[str, RepoFactory] = {
    "memory": memory_repo,
    "file": file_repo,
}


CORE_KINDS = ("memory", "file")


def pod_kinds(marker: pytest.Mark | None = None) -> list[str]:
    """The storage kinds a test runs on (environment, then its `pod_kinds` marker)."""
    wanted = os.environ.get("LAKOTA_TEST_PODS", "")
    kinds = [kind.strip() for kind in wanted.split(",") if kind.strip()] or list(REPO_FACTORIES)
    unknown = [kind for kind in kinds if kind not in REPO_FACTORIES]
    if unknown:
        raise pytest.UsageError(f"LAKOTA_TEST_PODS names unknown storage(s): {unknown}")
    if marker is not None and marker.args:
        kinds = [kind for kind in kinds if kind in marker.args]
    return kinds


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pod_kinds(*names): run the `repo` fixture on these storages only (no names: all)",
    )
    bound_waits()


def bound_waits() -> None:
    """Settings that keep a test from waiting forever (see also tests/limits.py).

    Dask workers run without distributed's statistical profiler, which can deadlock
    Python 3.11 (CPython issue #106883): in this process through dask's configuration,
    in worker processes through the environment they inherit. Stress scenarios give up
    on a child process after a few minutes instead of half an hour.
    """
    os.environ["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"
    os.environ.setdefault("LAKOTA_STRESS_TIMEOUT", "240")
    try:
        import dask
    except ImportError:
        return
    from lakota.daskio import PROFILER_OFF

    dask.config.set(PROFILER_OFF)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "repo_kind" in metafunc.fixturenames:
        kinds = pod_kinds(metafunc.definition.get_closest_marker("pod_kinds"))
        metafunc.parametrize("repo_kind", kinds, scope="function")


@pytest.fixture
def open_repo(repo_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    return REPO_FACTORIES[repo_kind](request, tmp_path)


@pytest.fixture
def repo(open_repo: Opener) -> Repo:
    return open_repo()


@pytest.fixture
def reopen(open_repo: Opener) -> Opener:
    """Open another `Repo` object on the storage of `repo`."""
    return open_repo


# --- commit invariants (SPEC §2.10) ------------------------------------------------------


def check_invariants(commit: Commit, pod: POD) -> None:
    """Fail if `commit` breaks one of the five invariants readers rely on."""
    idx = commit.schema.idx
    rows = [commit.row(pos) for pos in range(len(commit))]
    for row in rows:
        assert row.start <= row.stop, f"start after stop in {row}"
        assert row.start != row.stop or row.closed == Closed.BOTH, f"empty row {row}"
        for name, digest in zip(commit.schema, row.digest):
            assert digest in commit.embedded or pod.isfile(digest_path(digest)), (
                f"digest {digest} of column {name} is neither embedded nor stored"
            )
    for prev, nxt in zip(rows, rows[1:]):
        assert (prev.label, *prev.start) <= (nxt.label, *nxt.start), "rows not sorted"
        assert (prev.label, *prev.stop) <= (nxt.label, *nxt.start), f"{prev} overlaps {nxt}"
        if prev.label == nxt.label and prev.stop == nxt.start:
            assert not (prev.closed.right and nxt.closed.left), f"{prev} and {nxt} share a bound"
    assert set(commit.start) == set(idx) == set(commit.stop)
    assert len({len(commit.label), len(commit.length), len(commit.closed)}) == 1
    assert all(len(arr) == len(commit) for arr in commit.digest.values())


def visible_rows(commit: Commit, label: str) -> list[tuple]:
    """``(start, stop, closed)`` of each row of `label`, as plain Python values."""
    return [(_plain(row.start), _plain(row.stop), row.closed.short) for row in commit.match(label)]


def _plain(bound: tuple) -> tuple | object:
    values = tuple(v.item() if isinstance(v, numpy.generic) else v for v in bound)
    return values[0] if len(values) == 1 else values


# --- S3 storage kinds: moto's server and the s3 / memory+s3 / file+s3 repos (s3server.py) ---

from s3server import S3_REPO_FACTORIES, s3_bucket, s3_server  # noqa: E402, F401, I001

REPO_FACTORIES.update(S3_REPO_FACTORIES)


# --- HTTP storage: `lakota serve` in a subprocess, HttpPOD as client ------------------------

import contextlib  # noqa: E402, I001
import subprocess  # noqa: E402
from collections.abc import Iterator  # noqa: E402

from s3server import stop  # noqa: E402


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def lakota_process(
    *args: str, base: str = "", env: dict | None = None, scheme: str = "http"
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``lakota serve ARGS -w SCHEME://127.0.0.1:<free port><base>`` until the block ends.

    Yields the server's URL (without `base`) and its process once it accepts connections.
    `env` sets ``LAKOTA_REPO`` or ``LAKOTA_TOKEN``, which are not inherited.
    """
    import socket
    import sys
    import tempfile
    import time

    port = free_port()
    url = f"{scheme}://127.0.0.1:{port}"
    command = [sys.executable, "-m", "lakota", "serve", *args, "-w", url + base]
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a full pipe would block it
        own = ("LAKOTA_REPO", "LAKOTA_TOKEN")
        inherited = {k: v for k, v in os.environ.items() if k not in own}
        proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=log, env={**inherited, **(env or {})}
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(f"lakota serve did not start: {log.read()!r}") from None
                    time.sleep(0.05)
            yield url, proc
        finally:
            stop(proc)


@contextlib.contextmanager
def lakota_server(*args: str, base: str = "", env: dict | None = None) -> Iterator[str]:
    """`lakota_process` for tests that only need the server's URL."""
    with lakota_process(*args, base=base, env=env) as (url, _):
        yield url


@pytest.fixture(scope="session")
def http_base_uri() -> Iterator[str]:
    """Base URI of a `lakota serve` of one in-memory repository, shared by the session."""
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("starlette", "uvicorn")):
        pytest.skip("lakota serve needs the server extra (starlette, uvicorn)")
    with lakota_server("/ memory://", "--allow-anonymous-writes") as url:
        yield url + "/"


def http_repo(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """A folder of its own on the shared HTTP server, reached through HttpPOD."""
    from lakota.pod.http import HttpPOD

    base_uri = request.getfixturevalue("http_base_uri")
    folder = tmp_path.name  # unique per test
    return lambda: Repo(pod=HttpPOD(base_uri, path=folder))


REPO_FACTORIES["http"] = http_repo
