"""Reliability stress test: concurrent writers, registry churn, GC while writing, crashes.

``python bench/stress.py [--storage file,s3] [--writers 8] [--commits 50] [--trials 120]
[--gc-rounds 50] [--seed 0]`` prints the figures of each scenario and exits with status 1
if any scenario lost a write, served a read that matches no committed revision, or left
the repository damaged. The S3 runs start moto's server on 127.0.0.1 themselves.
tests/test_concurrency.py and tests/test_crash.py run the same scenarios with small sizes.

Scenarios (every process opens its own `Repo` on the same folder or bucket; processes
are started with the ``spawn`` method):

* **writers**: N processes × M commits on one collection, each commit a `multi()` that
  writes one row of a shared series (keys interleaved between writers) and one row of
  the writer's own series; reader processes read the shared series meanwhile. Then
  `merge()`: every write must be visible with its value, and every read must equal the
  shared series of some committed revision.
* **registry**: processes create collections (two labels per call, interleaved with the
  labels of the others), delete others, and all create the same labels (if missing) and
  write to them, concurrently; then `Repo.merge()`: every created collection must be
  there, every deleted one gone, and every write to the shared labels visible.
* **gc**: GC runs in a loop (with a short `settings.timeout`) while writers overwrite
  their series and trim their history, and a churn process writes and deletes
  collections sharing data files with the writers; readers check every value. Every file
  a revision refers to must stay readable (`Repo.check()`).
* **crash**: a process running write, `multi()`, merge, defrag, trim or gc is killed with
  SIGKILL, either just before its K-th storage change, in the middle of a file write
  (temporary file written, not yet published), or after a random delay. The repository
  must open, read as the state before or after the operation, pass `Repo.check()`, reach
  the final state when the operation is run again, and a GC with ``timeout=0`` must
  reclaim every orphan (unreferenced data files and temporary files).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy

from lakota import Repo, Schema
from lakota.check import orphan_files
from lakota.frame import Frame
from lakota.pod import POD, MemPOD
from lakota.pod.file import TMP_PREFIX
from lakota.utils import settings

SCHEMA = Schema(ts="int*", value="float")
CONTEXT = multiprocessing.get_context("spawn")


def join_timeout() -> float:
    """Seconds a child may take before its scenario gives up on it.

    ``$LAKOTA_STRESS_TIMEOUT`` (the tests set a few minutes), else half an hour.
    """
    return float(os.environ.get("LAKOTA_STRESS_TIMEOUT", 1800))


OPERATIONS = ("write", "multi", "merge", "defrag", "trim", "gc")
KILL_MODES = ("before", "inside", "delay")


def value_of(key: int) -> float:
    """The value written at `key` in the writers scenario (exact in float64)."""
    return key * 0.5 + 0.25


def fingerprint(frame: Frame) -> str:
    """A short digest of a frame's content, to compare reads across processes."""
    digest = hashlib.sha1()
    for name in frame.schema:
        digest.update(numpy.ascontiguousarray(frame[name]).tobytes())
    return digest.hexdigest()[:16]


def _gather(queue: Any, count: int) -> list:
    """`count` messages from the children (read before joining them: a full pipe blocks)."""
    return [queue.get(timeout=join_timeout()) for _ in range(count)]


def _join(processes: list) -> None:
    for proc in processes:
        proc.join(join_timeout())
        if proc.is_alive():
            proc.kill()
            proc.join(10)
            raise RuntimeError(f"{proc.name} did not finish in {join_timeout()} s")


def _report_errors(queue: Any, role: str, action: Callable[[], Any]) -> None:
    """Run `action` in a child and send ``(role, result, error)`` to the parent."""
    try:
        queue.put((role, action(), None))
    except BaseException:
        queue.put((role, None, traceback.format_exc()))


# --- writers -----------------------------------------------------------------------------


@dataclass
class WriterFigures:
    storage: str
    writers: int
    commits: int
    attempted: int = 0
    visible: int = 0
    branches_merged: int = 0
    reads: int = 0
    stale_reads: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.visible == self.attempted and not self.stale_reads and not self.errors

    def lines(self) -> list[str]:
        return [
            f"writers [{self.storage}]: {self.writers} processes x {self.commits} commits",
            f"  writes attempted: {self.attempted}, visible after merge: {self.visible}",
            f"  branches merged: {self.branches_merged}",
            f"  concurrent reads: {self.reads}, stale reads seen: {self.stale_reads}",
            f"  errors: {len(self.errors)}, time: {self.seconds:.1f}s",
        ]


def concurrent_writers(
    uri: str, writers: int, commits: int, readers: int = 2, storage: str = "file"
) -> WriterFigures:
    """The writers scenario (see the module docstring) on an empty repository at `uri`."""
    figures = WriterFigures(storage, writers, commits, attempted=writers * commits)
    started = time.perf_counter()
    clct = Repo(uri).create_collection(SCHEMA, "clct")
    go, stop, queue = CONTEXT.Barrier(writers + readers + 1), CONTEXT.Event(), CONTEXT.Queue()
    writer_procs = [
        CONTEXT.Process(target=_writer, args=(uri, w, writers, commits, go, queue))
        for w in range(writers)
    ]
    reader_procs = [
        CONTEXT.Process(target=_reader, args=(uri, go, stop, queue)) for _ in range(readers)
    ]
    for proc in writer_procs + reader_procs:
        proc.start()
    go.wait(join_timeout())  # every child is ready: start together
    done = _gather(queue, writers)
    stop.set()
    done += _gather(queue, readers)
    _join(writer_procs + reader_procs)
    figures.errors = [error for _, _, error in done if error]
    seen: Counter = Counter()
    for role, result, _ in done:
        if role == "reader" and result:
            seen.update(result)
    committed = _revision_states(clct)
    figures.reads = sum(seen.values())
    figures.stale_reads = sum(n for state, n in seen.items() if state not in committed)
    clct.refresh()
    figures.branches_merged = len(clct.changelog.heads())
    clct.merge()
    figures.visible = _visible_writes(clct, writers, commits)
    figures.seconds = time.perf_counter() - started
    return figures


def _writer(uri: str, w: int, writers: int, commits: int, go: Any, queue: Any) -> None:
    def work() -> int:
        clct = Repo(uri) / "clct"
        go.wait(join_timeout())
        for i in range(commits):
            key = i * writers + w
            with clct.multi():
                (clct / "shared").write({"ts": [key], "value": [value_of(key)]})
                (clct / f"w{w}").write({"ts": [i], "value": [value_of(key)]})
        return commits

    _report_errors(queue, "writer", work)


def _reader(uri: str, go: Any, stop: Any, queue: Any) -> None:
    """Read the shared series until told to stop; returns the fingerprints seen."""

    def work() -> Counter:
        clct = Repo(uri) / "clct"
        seen: Counter = Counter()
        go.wait(join_timeout())
        while True:  # at least one read, even if the writers are already done
            clct.refresh()
            frame = (clct / "shared").frame()
            expected = [value_of(k) for k in frame["ts"].tolist()]
            if frame["value"].tolist() != expected:
                raise AssertionError(f"wrong values read: {frame}")
            seen[fingerprint(frame)] += 1
            if stop.is_set():
                return seen

    _report_errors(queue, "reader", work)


def _revision_states(clct: Any) -> set[str]:
    """Fingerprints of the shared series in every revision (and of the empty series)."""
    clct.refresh()
    states = {fingerprint(Frame(SCHEMA))}
    for rev in {rev.path: rev for rev in clct.changelog.log()}.values():
        commit = rev.commit(clct)
        states.add(fingerprint(Frame.from_segments(SCHEMA, commit.segments("shared", clct.pod))))
    return states


def _visible_writes(clct: Any, writers: int, commits: int) -> int:
    """Writes whose two rows (shared series, own series) read back with their value."""
    shared = (clct / "shared").frame()
    shared_rows = dict(zip(shared["ts"].tolist(), shared["value"].tolist()))
    visible = 0
    for w in range(writers):
        own = (clct / f"w{w}").frame()
        own_rows = dict(zip(own["ts"].tolist(), own["value"].tolist()))
        for i in range(commits):
            key = i * writers + w
            visible += shared_rows.get(key) == own_rows.get(i) == value_of(key)
    return visible


# --- registry ----------------------------------------------------------------------------


@dataclass
class RegistryFigures:
    storage: str
    processes: int
    rounds: int
    created: int = 0
    present: int = 0
    deleted: int = 0
    resurrected: int = 0
    shared_writes: int = 0
    shared_visible: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.present == self.created
            and not self.resurrected
            and self.shared_visible == self.shared_writes
            and not self.errors
        )

    def lines(self) -> list[str]:
        return [
            f"registry [{self.storage}]: {self.processes} processes x {self.rounds} rounds",
            f"  collections created: {self.created}, present after merge: {self.present}",
            f"  collections deleted: {self.deleted}, back after merge: {self.resurrected}",
            f"  writes to collections created by all at once: {self.shared_writes}, "
            f"visible after merge: {self.shared_visible}",
            f"  errors: {len(self.errors)}, time: {self.seconds:.1f}s",
        ]


def _labels(p: int, j: int, kinds: str) -> list[str]:
    """Labels of process `p`, round `j`: sorted with the other processes' labels between."""
    return [f"L{j:03d}{kind}-{p}" for kind in kinds]


def _all_labels(processes: int, rounds: int, kinds: str) -> list[str]:
    return [lbl for p in range(processes) for j in range(rounds) for lbl in _labels(p, j, kinds)]


def registry_churn(uri: str, processes: int, rounds: int, storage: str = "file") -> RegistryFigures:
    """The registry scenario (see the module docstring) on an empty repository at `uri`."""
    figures = RegistryFigures(storage, processes, rounds)
    started = time.perf_counter()
    repo = Repo(uri)
    doomed = _all_labels(processes, rounds, "xy")
    repo.create_collection(SCHEMA, *doomed)
    go, queue = CONTEXT.Barrier(processes + 1), CONTEXT.Queue()
    procs = [
        CONTEXT.Process(target=_registry_worker, args=(uri, p, rounds, go, queue))
        for p in range(processes)
    ]
    for proc in procs:
        proc.start()
    go.wait(join_timeout())  # every child is ready: start together
    done = _gather(queue, processes)
    _join(procs)
    figures.errors = [error for _, _, error in done if error]
    repo.refresh()
    repo.merge()
    labels = set(repo.ls())
    created = _all_labels(processes, rounds, "ab")
    figures.created, figures.deleted = len(created), len(doomed)
    figures.present = sum(
        label in labels and (repo / label / "s").frame()["value"].tolist() == [float(len(label))]
        for label in created
    )
    figures.resurrected = len(labels & set(doomed))
    figures.shared_writes = processes * rounds
    for j in range(rounds):
        shared = repo / f"S{j:03d}"
        if shared is not None:
            shared.merge()  # writers that found the label forked its history
            keys = (shared / "s").frame()["ts"].tolist()
            figures.shared_visible += len(set(keys) & set(range(processes)))
    figures.seconds = time.perf_counter() - started
    return figures


def _registry_worker(uri: str, p: int, rounds: int, go: Any, queue: Any) -> None:
    def work() -> int:
        repo = Repo(uri)
        go.wait(join_timeout())
        for j in range(rounds):
            repo.refresh()
            for clct in repo.create_collection(SCHEMA, *_labels(p, j, "ab")):
                (clct / "s").write({"ts": [0], "value": [len(clct.label)]})
            repo.delete(*_labels(p, j, "xy"))
            shared = repo.create_collection(SCHEMA, f"S{j:03d}", raise_if_exists=False)
            (shared / "s").write({"ts": [p], "value": [p]})
        return rounds

    _report_errors(queue, "registry", work)


# --- gc while writing --------------------------------------------------------------------

ROWS = 300  # rows per frame of the gc scenario: each column gets its own data file
WRITER_PACE = 0.02  # seconds between two commits of a writer of the gc scenario
S3_WRITER_PACE = 0.5  # on S3, where GC moves files by copy and delete, one at a time


def payload(writer: int, step: int) -> dict:
    """The frame that `writer` writes at `step` in the gc scenario (also written, then
    abandoned, by the churn process, so that writers reuse files GC is collecting).
    Writer -1 is the churn process's own data, that nobody else refers to."""
    rng = numpy.random.default_rng([writer + 1, step])
    values = rng.random(ROWS)
    values[0] = writer * 1_000_000 + step  # names the frame, to check reads
    return {"ts": numpy.arange(ROWS), "value": values}


@dataclass
class GcFigures:
    storage: str
    writers: int
    rounds: int
    timeout: float
    commits: int = 0
    soft_deleted: int = 0
    hard_deleted: int = 0
    reads: int = 0
    problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.errors

    def lines(self) -> list[str]:
        return [
            f"gc while writing [{self.storage}]: {self.rounds} gc rounds "
            f"(timeout {self.timeout}s), {self.writers} writers + 1 churn process",
            f"  commits: {self.commits}, reads: {self.reads}",
            f"  files soft-deleted: {self.soft_deleted}, hard-deleted: {self.hard_deleted}",
            f"  referenced files lost: {len(self.problems)}, errors: {len(self.errors)}, "
            f"time: {self.seconds:.1f}s",
        ]


def gc_while_writing(
    uri: str,
    writers: int,
    rounds: int,
    timeout: float = 2.0,
    storage: str = "file",
    pace: float = WRITER_PACE,
) -> GcFigures:
    """The gc scenario (see the module docstring) on an empty repository at `uri`;
    writers wait `pace` seconds between two commits."""
    figures = GcFigures(storage, writers, rounds, timeout)
    started = time.perf_counter()
    Repo(uri).create_collection(SCHEMA, *[f"w{w}" for w in range(writers)])
    go, stop, queue = CONTEXT.Barrier(writers + 4), CONTEXT.Event(), CONTEXT.Queue()
    procs = [
        CONTEXT.Process(target=_gc_writer, args=(uri, w, timeout, pace, go, stop, queue))
        for w in range(writers)
    ]
    procs.append(CONTEXT.Process(target=_churner, args=(uri, writers, go, stop, queue)))
    procs.append(CONTEXT.Process(target=_gc_reader, args=(uri, writers, go, stop, queue)))
    collector = CONTEXT.Process(target=_collector, args=(uri, rounds, timeout, go, stop, queue))
    for proc in [*procs, collector]:
        proc.start()
    go.wait(join_timeout())  # every child is ready: start together
    done = _gather(queue, len(procs) + 1)
    _join([*procs, collector])
    for role, result, error in done:
        if error:
            figures.errors.append(error)
        elif role == "gc":
            figures.hard_deleted, figures.soft_deleted = result
        elif role == "writer":
            figures.commits += result
        elif role == "reader":
            figures.reads = result
    report = Repo(uri).check()
    figures.problems = [str(problem) for problem in report.problems]
    figures.seconds = time.perf_counter() - started
    return figures


def _gc_writer(
    uri: str, w: int, timeout: float, pace: float, go: Any, stop: Any, queue: Any
) -> None:
    """Overwrite series ``w<w>/s`` again and again; trim its history now and then (which
    keeps GC rounds short, and leaves GC files to collect)."""

    def work() -> int:
        clct = Repo(uri) / f"w{w}"
        go.wait(join_timeout())
        step = 0
        while not stop.wait(pace):
            (clct / "s").write(payload(w, step))
            step += 1
            if step % 10 == 0:
                clct.trim(before=datetime.now() - timedelta(seconds=2 * timeout))
        return step

    _report_errors(queue, "writer", work)


def _churner(uri: str, writers: int, go: Any, stop: Any, queue: Any) -> None:
    """Write the writers' next frames and data of its own in a short-lived collection,
    then delete it: GC collects these files while the writers start using some."""

    def work() -> int:
        repo = Repo(uri)
        written = [repo / f"w{w}" for w in range(writers)]
        go.wait(join_timeout())
        step = 0
        while not stop.is_set():
            frames = [payload(-1, step)]
            for w, clct in enumerate(written):
                clct.refresh()
                current = (clct / "s").frame(limit=1)["value"].tolist()
                next_step = int(current[0]) - w * 1_000_000 + 1 if current else 0
                frames.append(payload(w, next_step))
            tmp = repo.create_collection(SCHEMA, f"tmp-{step}")
            with tmp.multi():
                for n, frame in enumerate(frames):
                    (tmp / f"s{n}").write(frame)
            repo.delete(tmp.label)
            step += 1
        return step

    _report_errors(queue, "churn", work)


def _gc_reader(uri: str, writers: int, go: Any, stop: Any, queue: Any) -> None:
    def work() -> int:
        repo = Repo(uri)
        written = [repo / f"w{w}" for w in range(writers)]
        go.wait(join_timeout())
        reads = 0
        while not stop.is_set():
            for w, clct in enumerate(written):
                clct.refresh()
                frame = (clct / "s").frame()
                if frame.empty:
                    continue
                step = int(frame["value"][0]) - w * 1_000_000
                expected = Frame(SCHEMA, payload(w, step))
                if fingerprint(frame) != fingerprint(expected):
                    raise AssertionError(f"series w{w} does not read as step {step}")
                reads += 1
        return reads

    _report_errors(queue, "reader", work)


def _collector(uri: str, rounds: int, timeout: float, go: Any, stop: Any, queue: Any) -> None:
    def work() -> tuple[int, int]:
        settings.timeout = timeout
        repo = Repo(uri)
        go.wait(join_timeout())
        hard = soft = 0
        for _ in range(rounds):
            time.sleep(timeout / 4)
            h, s = repo.gc()
            hard, soft = hard + h, soft + s
        return hard, soft

    try:
        _report_errors(queue, "gc", work)
    finally:
        stop.set()


# --- crashes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    """When to kill: before the `at`-th storage change ("before"), while writing the
    temporary file of that change ("inside", local folders only), or after `delay` s."""

    mode: str
    at: int = 0
    delay: float = 0.0

    def __str__(self) -> str:
        if self.mode == "delay":
            return f"after {self.delay:.3f}s"
        return f"{self.mode} change {self.at}"


@dataclass
class Trial:
    operation: str
    kill: Kill
    killed: bool = False
    orphans: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class CrashFigures:
    storage: str
    trials: list[Trial] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(trial.problems for trial in self.trials)

    def lines(self) -> list[str]:
        killed = sum(t.killed for t in self.trials)
        by_op = Counter(t.operation for t in self.trials if t.killed)
        failed = [t for t in self.trials if t.problems]
        lines = [
            f"crashes [{self.storage}]: {len(self.trials)} SIGKILL trials, {killed} killed "
            "before the operation finished",
            "  killed during: " + ", ".join(f"{op} {by_op[op]}" for op in OPERATIONS),
            f"  orphans reclaimed by gc: {sum(t.orphans for t in self.trials)}",
            f"  trials with a problem: {len(failed)}, time: {self.seconds:.1f}s",
        ]
        for trial in failed:
            lines.append(f"  {trial.operation} killed {trial.kill}: {'; '.join(trial.problems)}")
        return lines


def crash_trials(
    new_uri: Callable[[int], str], kills: list[tuple[str, str]], seed: int, storage: str = "file"
) -> CrashFigures:
    """Run one trial per ``(operation, kill mode)`` pair, each on a fresh repository.

    Kill points and delays are drawn from a generator seeded with `seed`.
    """
    rng = random.Random(seed)
    figures = CrashFigures(storage)
    started = time.perf_counter()
    durations: dict[str, float] = {}
    for number, (operation, mode) in enumerate(kills):
        uri = new_uri(number)
        prepare(Repo(uri), operation)
        changes, expected, duration = dry_run(Repo(uri), operation)
        durations[operation] = max(duration, durations.get(operation, 0.0))
        if mode == "delay":
            kill = Kill(mode, delay=rng.uniform(0, 3 * durations[operation]))
        else:
            kill = Kill(mode, at=rng.randint(1, max(1, changes)))
        figures.trials.append(crash_trial(uri, operation, kill, expected))
    figures.seconds = time.perf_counter() - started
    return figures


def crash_plan(trials: int, modes: tuple[str, ...] = KILL_MODES) -> list[tuple[str, str]]:
    """`trials` ``(operation, mode)`` pairs cycling through every combination."""
    combos = [(op, mode) for mode in modes for op in OPERATIONS]
    return [combos[n % len(combos)] for n in range(trials)]


def big(seed: int, start: int = 0, rows: int = 400) -> dict:
    """Random values: large enough to be stored in data files, not embedded."""
    rng = numpy.random.default_rng(seed)
    return {"ts": numpy.arange(start, start + rows), "value": rng.random(rows)}


def prepare(repo: Repo, operation: str) -> None:
    """A repository with history, data files, a fragmented series, and what `operation`
    needs: two branches to merge, or unreferenced files for GC to collect."""
    clct = repo.create_collection(SCHEMA, "clct")
    for n in range(4):
        (clct / "a").write(big(n, start=n * 100))
        (clct / "b").write(big(10 + n, start=n * 300))
    for n in range(8):
        (clct / "frag").write({"ts": [n * 2, n * 2 + 1], "value": [n, -n]})
    if operation == "merge":
        other = Repo(pod=repo.pod) / "clct"
        other.changelog.log()
        (clct / "a").write(big(20, start=150))
        (other / "a").write(big(21, start=250))
        (other / "b").write(big(22, start=2000))
    if operation == "gc":
        gone = repo.create_collection(SCHEMA, "gone")
        (gone / "s").write(big(30))
        repo.delete("gone")
        repo.gc()  # soft-deletes: the operation's gc then hard-deletes them


def run_operation(repo: Repo, operation: str) -> None:
    """The operation the crash trials interrupt."""
    clct = repo / "clct"
    if operation == "write":
        (clct / "a").write(big(40, start=50, rows=600))
    elif operation == "multi":
        with clct.multi():
            (clct / "a").write(big(41, start=-100))
            (clct / "b").write(big(42, start=500))
            (clct / "new").write(big(43))
            (clct / "frag").delete(3, 9)
    elif operation == "merge":
        clct.merge()
    elif operation == "defrag":
        clct.defrag()
    elif operation == "trim":
        clct.trim(before=datetime.now() + timedelta(days=1))
    elif operation == "gc":
        with timeout_zero():
            repo.gc()
    else:
        raise ValueError(f"Unknown operation {operation!r}")


@contextmanager
def timeout_zero() -> Iterator[None]:
    """GC deletes soft-deleted files at once (nobody else is writing)."""
    saved = settings.timeout
    settings.timeout = 0
    try:
        yield
    finally:
        settings.timeout = saved


def state(repo: Repo) -> dict[tuple[str, str], str]:
    """What every series of every collection reads as."""
    repo.refresh()
    return {
        (clct.label, label): fingerprint((clct / label).frame())
        for clct in repo.search()
        for label in clct.ls()
    }


def copy_to_memory(pod: POD) -> Repo:
    """A repository in memory holding a copy of every file of `pod`."""
    memory = MemPOD()
    for path in pod.walk():
        memory.write(path, pod.read(path))
    return Repo(pod=memory)


def dry_run(repo: Repo, operation: str) -> tuple[int, list[dict], float]:
    """Run `operation` on an in-memory copy: ``(storage changes it makes, the states
    a reader may then see (before, after), seconds it took)``."""
    copy = copy_to_memory(repo.pod)
    before = state(copy)
    started = time.perf_counter()
    with count_changes() as changes:
        run_operation(copy, operation)
    duration = time.perf_counter() - started
    return changes[0], [before, state(copy)], duration


_CHANGES = ("write", "rm", "mv")


@contextmanager
def count_changes(
    on_change: Callable[[int, str], None] | None = None,
    after_change: Callable[[int], None] | None = None,
) -> Iterator[list[int]]:
    """Count the storage changes (`POD.write`, `rm`, `mv`) made in this process, calling
    ``on_change(n, method name)`` before the n-th one and ``after_change(n)`` after it."""
    originals = {name: getattr(POD, name) for name in _CHANGES}
    count, lock = [0], threading.Lock()

    def wrap(name: str, method: Callable) -> Callable:
        def counted(self: POD, *args: Any, **kwargs: Any) -> Any:
            with lock:
                count[0] += 1
                nth = count[0]
            if on_change is not None:
                on_change(nth, name)
            result = method(self, *args, **kwargs)
            if after_change is not None:
                after_change(nth)
            return result

        return counted

    for name, method in originals.items():
        setattr(POD, name, wrap(name, method))
    try:
        yield count
    finally:
        for name, method in originals.items():
            setattr(POD, name, method)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _crash_child(uri: str, operation: str, kill: Kill, ready: Any) -> None:
    """Run `operation`, dying as `kill` says (the parent kills us in "delay" mode).

    `ready` is the sending end of a pipe (a killed process would leak a semaphore)."""
    import numcodecs.blosc

    import lakota.pod.file as file_pod

    # blosc guards its global state with a multiprocessing lock, a named semaphore that a
    # killed process cannot release; this process never forks, so a thread lock will do.
    numcodecs.blosc._MUTEX, numcodecs.blosc._MUTEX_IS_INIT = threading.Lock(), True
    dying = threading.local()
    if kill.mode == "inside":
        publish = file_pod._publish_new

        def publish_or_die(tmp: Path, path: Path) -> bool:
            if getattr(dying, "now", False):
                _die()
            return publish(tmp, path)

        file_pod._publish_new = publish_or_die

    def on_change(nth: int, name: str) -> None:
        if nth == kill.at and (kill.mode == "before" or name != "write"):
            _die()
        dying.now = nth == kill.at

    def after_change(nth: int) -> None:
        if nth == kill.at:  # a write with nothing to publish (the file was there)
            _die()

    repo = Repo(uri)
    repo.ls()
    ready.send(True)
    with count_changes(on_change, after_change):
        run_operation(repo, operation)


def crash_trial(uri: str, operation: str, kill: Kill, expected: list[dict]) -> Trial:
    """Kill a process running `operation` on `uri`, then check and repair the repository."""
    trial = Trial(operation, kill)
    ready, child_end = CONTEXT.Pipe(duplex=False)
    child = CONTEXT.Process(target=_crash_child, args=(uri, operation, kill, child_end))
    child.start()
    child_end.close()
    if kill.mode == "delay":
        if ready.poll(join_timeout()):
            time.sleep(kill.delay)
        child.kill()
    child.join(join_timeout())
    if child.is_alive():
        child.kill()
        child.join(10)
        trial.problems.append(f"the child did not finish in {join_timeout()} s")
    trial.killed = child.exitcode == -signal.SIGKILL
    if child.exitcode not in (0, -signal.SIGKILL):
        trial.problems.append(f"the child failed with exit code {child.exitcode}")
    try:
        _check_after_crash(uri, operation, expected, trial)
    except Exception as exc:
        trial.problems.append(f"{type(exc).__name__}: {exc}")
    return trial


def _check_after_crash(uri: str, operation: str, expected: list[dict], trial: Trial) -> None:
    repo = Repo(uri)
    seen = state(repo)
    if seen not in expected:
        trial.problems.append("a series reads as neither the state before nor after")
    trial.problems.extend(str(problem) for problem in repo.check().problems)
    trial.orphans = len(orphans(repo))
    with timeout_zero():
        repo.gc()
        repo.gc()
    left = orphans(repo)
    if left:
        trial.problems.append(f"gc left {len(left)} orphan(s): {left[:3]}")
    if state(repo) != seen or not repo.check().ok:
        trial.problems.append("gc damaged the repository")
    run_operation(repo, operation)  # what a user does next: run it again
    if state(repo) != expected[-1]:
        trial.problems.append("running the operation again does not give its result")
    heads = len((repo / "clct").changelog.heads())
    if heads != 1:
        trial.problems.append(f"{heads} heads after running the operation again")
    if not repo.check().ok:
        trial.problems.append("running the operation again damaged the repository")


def orphans(repo: Repo) -> list[str]:
    """Data files no revision refers to (soft-deleted ones included), and temporary files
    of unfinished writes in a local folder."""
    repo.refresh()
    used = set(repo.registry.digests())
    for clct in repo.search():
        used.update(clct.digests())
    found = orphan_files(repo.data_files(), used)
    if repo.pod.protocol == "file":
        walked = os.walk(repo.pod.path)
        found += [name for _, _, names in walked for name in names if name.startswith(TMP_PREFIX)]
    return found


# --- the command line --------------------------------------------------------------------


@contextmanager
def s3_service() -> Iterator[Callable[[], str]]:
    """moto's S3 server on a free port of 127.0.0.1 (tests/s3server.py starts it), with
    dummy credentials in the environment; yields a function making fresh bucket URIs."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import s3server

    for name in s3server.CLEARED_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(s3server.TEST_ENVIRONMENT)
    port = s3server.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = s3server.start_moto(port, log)
        try:
            s3server.wait_until_up(process, endpoint, log)
            server = s3server.S3Server(endpoint, process)
            yield lambda: server.uri(server.create_bucket())
        finally:
            s3server.stop(process)


def run_storage(storage: str, new_uri: Callable[[], str], args: argparse.Namespace) -> list:
    """Every scenario on one kind of storage; prints the figures as they come."""
    base = new_uri()  # crash trials use one sub-folder (key prefix) each
    modes = KILL_MODES if storage == "file" else ("before", "delay")
    trials = args.trials if storage == "file" else args.s3_trials
    gc_rounds = args.gc_rounds if storage == "file" else args.s3_gc_rounds
    pace = WRITER_PACE if storage == "file" else S3_WRITER_PACE
    scenarios = [
        lambda: concurrent_writers(new_uri(), args.writers, args.commits, storage=storage),
        lambda: registry_churn(new_uri(), args.processes, args.rounds, storage=storage),
        lambda: gc_while_writing(new_uri(), args.gc_writers, gc_rounds, storage=storage, pace=pace),
        lambda: crash_trials(
            lambda n: f"{base}/trial-{n}", crash_plan(trials, modes), args.seed, storage
        ),
    ]
    results = []
    for scenario in scenarios:
        results.append(scenario())
        print("\n".join(results[-1].lines()), flush=True)
    return results


def folder_maker(root: str) -> Callable[[], str]:
    """A function giving a new folder path under `root` at each call."""
    numbers = itertools.count()
    return lambda: f"{root}/repo-{next(numbers)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", default="file,s3", help="file, s3 or both (default)")
    parser.add_argument("--writers", type=int, default=8, help="writer processes")
    parser.add_argument("--commits", type=int, default=50, help="commits per writer")
    parser.add_argument("--processes", type=int, default=4, help="registry processes")
    parser.add_argument("--rounds", type=int, default=10, help="registry rounds per process")
    parser.add_argument("--gc-writers", type=int, default=3, help="writers while gc runs")
    parser.add_argument("--gc-rounds", type=int, default=50, help="gc runs while writing")
    parser.add_argument("--s3-gc-rounds", type=int, default=10, help="the same on S3 (slow)")
    parser.add_argument("--trials", type=int, default=120, help="SIGKILL trials on a folder")
    parser.add_argument("--s3-trials", type=int, default=36, help="SIGKILL trials on S3")
    parser.add_argument("--seed", type=int, default=0, help="seed of kill points and delays")
    args = parser.parse_args(argv)
    storages = [s.strip() for s in args.storage.split(",") if s.strip()]
    unknown = set(storages) - {"file", "s3"}
    if unknown or not storages:
        parser.error(f"unknown storage(s) {sorted(unknown)}: use file, s3 or file,s3")
    started = time.perf_counter()
    results = []
    for storage in storages:
        if storage == "file":
            with tempfile.TemporaryDirectory(prefix="lakota-stress-") as tmp:
                results += run_storage("file", folder_maker(tmp), args)
        else:
            with s3_service() as new_bucket:
                results += run_storage("s3", new_bucket, args)
    failed = [r for r in results if not r.ok]
    print(
        f"\nTotal time: {time.perf_counter() - started:.1f}s, "
        f"{'all scenarios passed' if not failed else f'{len(failed)} scenario(s) FAILED'}"
    )
    for result in failed:
        for error in getattr(result, "errors", [])[:3]:
            print(error)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
