"""The benchmark's workloads, run in-process against one engine adapter.

Each workload times the calls a user makes and checks every read against freshly
generated data (`datagen.check`). Writes go to fresh stores, one per round, so that no
engine can skip work it has already done; each timed read opens a fresh handle on the
store (untimed), so no in-process cache carries over from an earlier round.
Results are medians of the samples; the driver (`run.py`) compares them across engines.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy
from datagen import (
    INDEX,
    ROW_BYTES,
    SEED,
    T0,
    Columns,
    check,
    check_column,
    concat,
    make_columns,
    take,
)
from engines import Engine
from scales import Sizes

T = TypeVar("T")

MAIN, MANY, HISTORY = "main", "many", "history"
SERIES = "s"
BULK_KEY, APPEND_KEY, MANY_KEY, HISTORY_KEY, PICK_KEY, PAGE_KEY = 0, 1, 2, 3, 4, 5
TAG = "bench"
PAGE_ROWS = 100_000  # lakota's default page_len: one segment
COLUMN = "a"
DEFAULT_BUDGET = 1800.0


@dataclass
class Metric:
    samples: list[float]
    unit: str
    note: str | None = None
    partial: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


@dataclass
class Context:
    """What the workloads of one engine share: sizes, folders, results and written state."""

    engine: type[Engine]
    sizes: Sizes
    workdir: Path
    rounds: int = 3
    label: str | None = None
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    metrics: dict[str, Metric] = field(default_factory=dict)
    main_store: Path | None = None
    many_store: Path | None = None
    before_appends: Any = None
    appended: list[Columns] = field(default_factory=list)
    _bulk: Columns | None = None

    @property
    def bulk(self) -> Columns:
        """The series of the bulk write (generated once)."""
        if self._bulk is None:
            self._bulk = make_columns(self.sizes.rows, (BULK_KEY,))
        return self._bulk

    def record(
        self,
        name: str,
        samples: list[float],
        unit: str = "s",
        note: str | None = None,
        partial: bool = False,
    ) -> None:
        """Keep the samples of one metric; `partial` when it fell short of its full size."""
        metric = Metric([float(s) for s in samples], unit, note, partial)
        self.metrics[name] = metric
        shown = f"{metric.median * 1000:.3f} ms" if unit == "s" else f"{metric.median:,.0f} {unit}"
        extra = f" ({note})" if note else ""
        label = self.label or self.engine.name
        self.log(f"[{label}] {name}: median {shown} of {len(samples)}{extra}")

    @contextmanager
    def handle(self, store: Path, group: str, create: bool = False) -> Iterator[Engine]:
        """A fresh engine handle on `store` with `group` open (or newly created)."""
        engine = self.engine(store)
        try:
            if create:
                engine.create_group(group)
            else:
                engine.open_group(group)
            yield engine
        finally:
            engine.close()

    def results(self) -> dict[str, Any]:
        """Sizes, rounds and every metric with its samples and median, for JSON."""
        metrics = {name: {**asdict(m), "median": m.median} for name, m in self.metrics.items()}
        return {"sizes": asdict(self.sizes), "rounds": self.rounds, "metrics": metrics}


def timed(call: Callable[[], T]) -> tuple[float, T]:
    """Seconds taken by `call()`, with the garbage collector paused (as timeit does)."""
    gc.disable()
    try:
        start = time.perf_counter()
        result = call()
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed, result


def disk_usage(path: Path) -> int:
    """Total size in bytes of the files under `path`."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _fresh_store(ctx: Context, name: str) -> Path:
    store = ctx.workdir / name
    if store.exists():
        shutil.rmtree(store)
    return store


def _write_rounds(ctx: Context, prefix: str, group: str, write: Callable) -> tuple[list, Path]:
    """Time `write(engine)` once per round, each into a new store; keep the last store.

    The stores of earlier rounds are deleted only after the last round, and the file
    system is flushed before each round: otherwise a round would pay for the writeback
    (and, on a file system mounted with ``discard``, the trimming) of the previous one,
    which costs most to the engines that write many files.
    """
    samples, stores = [], []
    for number in range(ctx.rounds):
        stores.append(_fresh_store(ctx, f"{prefix}-{number}"))
        settle()
        with ctx.handle(stores[-1], group, create=True) as engine:
            samples.append(write(engine))
    for store in stores[:-1]:
        shutil.rmtree(store)
    return samples, stores[-1]


def settle() -> None:
    """Flush every file system, so that no earlier write is flushed during a timed call."""
    if hasattr(os, "sync"):
        os.sync()


def _read_rounds(ctx: Context, store: Path, group: str, count: int, read: Callable) -> list:
    """Time `read(engine)` `count` times, each on a fresh handle; `read` verifies."""
    samples = []
    for _ in range(count):
        with ctx.handle(store, group) as engine:
            samples.append(read(engine))
    return samples


def bulk_write(ctx: Context) -> None:
    """The whole series in one call; then the bytes on disk of the store."""

    def write(engine: Engine) -> float:
        native = engine.prepare(ctx.bulk)
        return timed(lambda: engine.write(MAIN, SERIES, native))[0]

    samples, ctx.main_store = _write_rounds(ctx, "bulk", MAIN, write)
    ctx.record("bulk_write", samples)
    ctx.record("disk_bytes", [disk_usage(ctx.main_store)], "bytes")
    ctx.record("data_bytes", [ctx.sizes.rows * ROW_BYTES], "bytes")


def full_read(ctx: Context) -> None:
    def read(engine: Engine) -> float:
        elapsed, got = timed(lambda: engine.read(MAIN, SERIES))
        check(ctx.bulk, got, "full read")
        return elapsed

    ctx.record("full_read", _read_rounds(ctx, ctx.main_store, MAIN, ctx.rounds, read))


def range_read(ctx: Context) -> None:
    """The last `range_fraction` of the time range, by start and stop (both included)."""
    first = ctx.sizes.rows - max(1, int(ctx.sizes.rows * ctx.sizes.range_fraction))
    start, stop = ctx.bulk[INDEX][first], ctx.bulk[INDEX][-1]
    expected = take(ctx.bulk, first)

    def read(engine: Engine) -> float:
        elapsed, got = timed(lambda: engine.read_range(MAIN, SERIES, start, stop))
        check(expected, got, "range read")
        return elapsed

    samples = _read_rounds(ctx, ctx.main_store, MAIN, ctx.sizes.range_reads, read)
    ctx.record("range_read", samples)


def column_read(ctx: Context) -> None:
    def read(engine: Engine) -> float:
        elapsed, got = timed(lambda: engine.read_column(MAIN, SERIES, COLUMN))
        check_column(ctx.bulk[COLUMN], got, f"read of column {COLUMN!r}")
        return elapsed

    ctx.record("column_read", _read_rounds(ctx, ctx.main_store, MAIN, ctx.rounds, read))


def appends(ctx: Context) -> None:
    """Small appends at the end of the series, each its own revision, on one handle."""
    ctx.appended = []
    last = ctx.bulk[INDEX][-1]
    samples = []
    settle()
    with ctx.handle(ctx.main_store, MAIN) as engine:
        ctx.before_appends = engine.mark(MAIN, SERIES)
        for number in range(ctx.sizes.appends):
            chunk = make_columns(ctx.sizes.append_rows, (APPEND_KEY, number), last)
            last = chunk[INDEX][-1]
            ctx.appended.append(chunk)
            native = engine.prepare(chunk)
            samples.append(timed(lambda n=native: engine.append(MAIN, SERIES, n))[0])
    ctx.record("append", samples)


def read_after_appends(ctx: Context) -> None:
    expected = concat(ctx.bulk, *ctx.appended)

    def read(engine: Engine) -> float:
        elapsed, got = timed(lambda: engine.read(MAIN, SERIES))
        check(expected, got, "full read after appends")
        return elapsed

    ctx.record("read_after_appends", _read_rounds(ctx, ctx.main_store, MAIN, ctx.rounds, read))


def as_of_read(ctx: Context) -> None:
    """The series as it was before the appends."""

    def read(engine: Engine) -> float:
        elapsed, got = timed(lambda: engine.read_as_of(MAIN, SERIES, ctx.before_appends))
        check(ctx.bulk, got, "read as of the version before the appends")
        return elapsed

    ctx.record("as_of_read", _read_rounds(ctx, ctx.main_store, MAIN, ctx.rounds, read))


def version_control(ctx: Context) -> None:
    """Engines with tags: a read at a tag (the state after the appends, as the leaf read
    after them), then a diff from that tag to one more appended page, and a range read
    of that page."""
    expected = concat(ctx.bulk, *ctx.appended)
    with ctx.handle(ctx.main_store, MAIN) as engine:
        if not engine.tag(MAIN, TAG):
            return

    def read(engine: Engine) -> float:
        elapsed, got = timed(lambda: engine.read_at(MAIN, SERIES, TAG))
        check(expected, got, "read at a tag")
        return elapsed

    ctx.record("tag_read", _read_rounds(ctx, ctx.main_store, MAIN, ctx.rounds, read))
    page = make_columns(min(PAGE_ROWS, ctx.sizes.rows), (PAGE_KEY,), expected[INDEX][-1])
    with ctx.handle(ctx.main_store, MAIN) as engine:
        engine.append(MAIN, SERIES, engine.prepare(page))
    start, stop = page[INDEX][0], page[INDEX][-1]

    def read_page(engine: Engine) -> float:
        elapsed, got = timed(lambda: engine.read_range(MAIN, SERIES, start, stop))
        check(page, got, "read of the appended page")
        return elapsed

    def diff(engine: Engine) -> float:
        elapsed, got = timed(lambda: engine.diff_added(MAIN, SERIES, TAG))
        check(page, got, "diff from the tag")
        return elapsed

    ctx.record("page_read", _read_rounds(ctx, ctx.main_store, MAIN, ctx.rounds, read_page))
    ctx.record("diff_page", _read_rounds(ctx, ctx.main_store, MAIN, ctx.rounds, diff))


def _many_name(number: int) -> str:
    return f"s{number:04d}"


def _many_data(number: int, ctx: Context) -> Columns:
    return make_columns(ctx.sizes.many_rows, (MANY_KEY, number))


def batch_write(ctx: Context) -> None:
    """Many small series written in one batch call."""
    numbers = range(ctx.sizes.many_series)

    def write(engine: Engine) -> float:
        items = [(_many_name(i), engine.prepare_one(_many_data(i, ctx))) for i in numbers]
        return timed(lambda: engine.write_many(MANY, items))[0]

    samples, ctx.many_store = _write_rounds(ctx, "many", MANY, write)
    ctx.record("batch_write", samples)


def series_reads(ctx: Context) -> None:
    """Random series of the batch, read one by one on one handle."""
    rng = numpy.random.default_rng((SEED, PICK_KEY))
    picks = rng.choice(ctx.sizes.many_series, size=ctx.sizes.series_reads, replace=False)
    samples = []
    with ctx.handle(ctx.many_store, MANY) as engine:
        for number in picks.tolist():
            name = _many_name(number)
            elapsed, got = timed(lambda n=name: engine.read_one(MANY, n))
            check(_many_data(number, ctx), got, f"read of series {name}")
            samples.append(elapsed)
    ctx.record("series_read", samples)


class _History:
    """A series grown by appends, remembering every chunk for the final verification."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.chunks: list[Columns] = []
        self.last = T0

    @property
    def revisions(self) -> int:
        return len(self.chunks)

    def chunk(self, rows: int) -> Any:
        """The next rows, in the engine's native input."""
        data = make_columns(rows, (HISTORY_KEY, len(self.chunks)), self.last)
        self.last = data[INDEX][-1]
        self.chunks.append(data)
        return self.engine.prepare(data)

    def grow(self, target: int, deadline: float, log: Callable[[str], None]) -> int:
        """One-row appends until `target` revisions or the deadline; returns their count."""
        started, first = time.monotonic(), self.revisions
        while self.revisions < target and time.monotonic() < deadline:
            self.engine.append(HISTORY, SERIES, self.chunk(1))
            if self.revisions % 1000 == 0:
                rate = (time.monotonic() - started) / (self.revisions - first)
                log(f"  history at {self.revisions} revisions ({rate * 1000:.1f} ms per append)")
        return self.revisions - first

    def measure(self, count: int, rows: int) -> list[float]:
        """Time `count` appends of `rows` rows."""
        samples = []
        for _ in range(count):
            native = self.chunk(rows)
            samples.append(timed(lambda n=native: self.engine.append(HISTORY, SERIES, n))[0])
        return samples


def long_history(ctx: Context, budget: float = DEFAULT_BUDGET) -> None:
    """Append latency after a short and after a long history of the same series.

    The history is built cheaply with one-row appends; the measured appends have the size
    of the `appends` workload. Building stops after `budget` seconds: the note then says
    how many revisions were reached.
    """
    sizes = ctx.sizes
    store = _fresh_store(ctx, "history")
    with ctx.handle(store, HISTORY, create=True) as engine:
        history = _History(engine)
        engine.write(HISTORY, SERIES, history.chunk(sizes.append_rows))
        history.grow(sizes.short_history, float("inf"), ctx.log)
        short = history.revisions
        settle()
        samples = history.measure(sizes.history_samples, sizes.append_rows)
        ctx.record("append_after_short", samples, note=f"after {short} revisions")
        began = time.monotonic()
        grown = history.grow(sizes.long_history, began + budget, ctx.log)
        built, reached = time.monotonic() - began, history.revisions
        settle()
        samples = history.measure(sizes.history_samples, sizes.append_rows)
    partial = reached < sizes.long_history
    note = f"after {reached} revisions"
    if partial:
        note += f", when the build budget of {budget:.0f} s ran out"
    ctx.record("append_after_long", samples, note=note, partial=partial)
    ctx.record("history_build", [built], note=f"{grown} one-row appends")
    with ctx.handle(store, HISTORY) as engine:
        check(concat(*history.chunks), engine.read(HISTORY, SERIES), "read of the long history")
    shutil.rmtree(store)


def _status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key == field:
                return int(value.split()[0]) * 1024
    raise KeyError(f"{field} not found in /proc/self/status")


def _reset_peak_rss() -> None:
    """Make the kernel's peak-RSS mark (VmHWM) start again from the current RSS."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def read_memory(engine_cls: type[Engine], store: Path, rows: int) -> dict[str, int]:
    """Peak memory of one full read: the growth of the RSS peak, then the tracemalloc peak.

    The RSS figure counts native allocations too (it needs Linux); tracemalloc sees only
    Python's allocators. Both reads are verified after their measurement.
    """
    engine = engine_cls(store)
    engine.open_group(MAIN)
    gc.collect()
    _reset_peak_rss()
    before = _status_bytes("VmRSS")
    got = engine.read(MAIN, SERIES)
    rss = _status_bytes("VmHWM") - before
    expected = make_columns(rows, (BULK_KEY,))
    check(expected, got, "full read (memory probe)")
    del got
    gc.collect()
    tracemalloc.start()
    try:
        got = engine.read(MAIN, SERIES)
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    check(expected, got, "full read (memory probe, traced)")
    engine.close()
    return {"rss": rss, "traced": traced}


def peak_memory(ctx: Context, probe: Callable[[Path], dict[str, int]]) -> None:
    """Record what `probe(main_store)` measured for a full read."""
    measured = probe(ctx.main_store)
    ctx.record("read_memory", [measured["rss"]], "bytes", note="peak RSS growth")
    ctx.record("read_memory_traced", [measured["traced"]], "bytes", note="tracemalloc peak")


def run_all(
    ctx: Context,
    probe: Callable[[Path], dict[str, int]] | None,
    long: bool = True,
    budget: float = DEFAULT_BUDGET,
) -> dict[str, Any]:
    """Every workload in order; `probe` measures read memory (None skips it)."""
    bulk_write(ctx)
    if probe is not None:
        peak_memory(ctx, probe)
    for workload in (full_read, range_read, column_read, appends, read_after_appends, as_of_read):
        workload(ctx)
    batch_write(ctx)
    series_reads(ctx)
    version_control(ctx)  # last to use the main store: it appends a page
    if long:
        long_history(ctx, budget)
    return ctx.results()
