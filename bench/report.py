"""The comparison table: medians per workload and engine, this project's ratios and targets.

Standard library only (the driver imports it). The targets are those of issue 6: most
compare this project (`lakota`) with ArcticDB; bytes on disk compare it with lakota 0.7.1,
the append after a long history with its own append after a short one, and the memory of
a full read with the raw data size.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Any

SUBJECT = "lakota"
ORDER = ("lakota", "lakota-lean", "lakota071", "arcticdb", "parquet", "npy")


@dataclass(frozen=True)
class Row:
    """One line of the table: a metric, its label, and its target if it has one."""

    key: str
    label: str
    target: float | None = None
    base: str = "arcticdb"
    base_label: str = "arcticdb"
    unit: str = "s"

    def ratio(self, results: dict[str, dict]) -> float | None:
        """The subject's median divided by the base (another engine, or `self:<metric>`)."""
        value = median(results.get(SUBJECT), self.key)
        if self.base.startswith("self:"):
            base = median(results.get(SUBJECT), self.base[5:])
        else:
            base = median(results.get(self.base), self.key)
        if value is None or not base:
            return None
        return value / base


ROWS = (
    Row("bulk_write", "bulk write of {rows:,} rows in one call", 0.7),
    Row("full_read", "full read", 1.0),
    Row(
        "range_read",
        "read of the last {range_fraction:.0%} by start/stop (median of {range_reads})",
        1.0,
    ),
    Row("column_read", "read of one float column", 0.6),
    Row("append", "append of {append_rows} rows (median of {appends})", 0.5),
    Row("read_after_appends", "full read after {appends} appends", 1.0),
    Row("batch_write", "{many_series:,} series × {many_rows:,} rows in one batch", 0.6),
    Row("series_read", "read of one of them (median of {series_reads})", 1.0),
    Row("as_of_read", "read as of the version before the appends", 1.0),
    Row(
        "tag_read",
        "read at a tag (the state read after the appends)",
        1.1,
        "self:read_after_appends",
        "read at the leaf",
    ),
    Row("page_read", "read of one more appended page (range read)"),
    Row(
        "diff_page",
        "diff from the tag to that page (rows added)",
        2.0,
        "self:page_read",
        "read of that page",
    ),
    Row("disk_bytes", "bytes on disk after the bulk write", 1.0, "lakota071", "lakota071", "bytes"),
    Row("append_after_short", "append of {append_rows} rows after {short_history} revisions"),
    Row(
        "append_after_long",
        "append of {append_rows} rows after {long_history:,} revisions",
        1.5,
        "self:append_after_short",
        "append after {short_history}",
    ),
    Row("history_build", "time to build that history (one-row appends)"),
    Row(
        "read_memory",
        "peak memory of a full read (RSS growth)",
        2.0,
        "self:data_bytes",
        "data size",
        "bytes",
    ),
    Row("read_memory_traced", "peak memory of a full read (tracemalloc)", unit="bytes"),
)


def median(result: dict | None, key: str) -> float | None:
    metric = (result or {}).get("metrics", {}).get(key)
    return None if metric is None else metric["median"]


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "bytes":
        return f"{value / 1e9:.3g} GB" if value >= 1e9 else f"{value / 1e6:.3g} MB"
    if value >= 100:
        return f"{value:,.0f} s"
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "–"
    if ratio >= 100:
        return f"{ratio:.0f}"
    return f"{ratio:.1f}" if ratio >= 10 else f"{ratio:.3f}"


def cell(result: dict, row: Row, notes: list[str]) -> str:
    """The median of one engine for one row, or why there is none."""
    if result.get("failure") == "install":
        return "not installed"
    if result.get("failure"):
        return "FAILED"
    metric = result.get("metrics", {}).get(row.key)
    if metric is None:
        return "–"
    text = fmt_value(metric["median"], row.unit)
    if metric.get("partial"):
        notes.append(f"† {result['engine']}: {metric['note']}")
        text += " †"
    return text


@dataclass
class Table:
    header: list[str]
    lines: list[list[str]]
    notes: list[str]
    targets: list[dict[str, Any]]


def build(results: dict[str, dict], sizes: dict[str, Any]) -> Table:
    """The rows of the comparison for the engines in `results` (in the usual order)."""
    engines = [name for name in ORDER if name in results]
    notes: list[str] = []
    header = ["workload"]
    for name in engines:
        header.append(name + ("*" if results[name].get("cached") else ""))
    header += [f"{SUBJECT} ratio", "target", "met"]
    lines, targets = [], []
    for row in ROWS:
        line = [row.label.format(**sizes)]
        line += [cell(results[name], row, notes) for name in engines]
        ratio = row.ratio(results) if row.target is not None else None
        met = _met(row, ratio, results.get(SUBJECT))
        target = f"≤ {row.target:.1f} × {row.base_label.format(**sizes)}" if row.target else ""
        line += [fmt_ratio(ratio) if row.target else "", target, _met_text(row, met)]
        lines.append(line)
        if row.target is not None:
            targets.append({"key": row.key, "ratio": ratio, "target": row.target, "met": met})
    for name in engines:
        result = results[name]
        if result.get("cached"):
            notes.append(f"* {name}: cached result of {result['cached']}")
        if result.get("failure"):
            notes.append(f"{name}: {result['failure']}: {result.get('error', '')}")
    return Table(header, lines, notes, targets)


def _met(row: Row, ratio: float | None, subject: dict | None) -> bool | None:
    """Whether the subject meets the target; None when unknown.

    A metric measured short of its size (the history budget ran out) can still show that
    a target is missed, never that it is met.
    """
    if ratio is None or row.target is None:
        return None
    metric = (subject or {}).get("metrics", {}).get(row.key, {})
    if ratio <= row.target and metric.get("partial"):
        return None
    return ratio <= row.target


def _met_text(row: Row, met: bool | None) -> str:
    if row.target is None:
        return ""
    return "n/a" if met is None else ("yes" if met else "NO")


def summary(table: Table) -> str:
    met = sum(1 for t in table.targets if t["met"])
    known = sum(1 for t in table.targets if t["met"] is not None)
    return f"targets met: {met} of {len(table.targets)} ({len(table.targets) - known} not measured)"


def as_text(table: Table) -> str:
    widths = [
        max(len(line[i]) for line in [table.header, *table.lines]) for i in range(len(table.header))
    ]

    def render(line: list[str]) -> str:
        cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:])]
        return "  ".join(cells).rstrip()

    out = [render(table.header), "  ".join("-" * w for w in widths)]
    out += [render(line) for line in table.lines]
    return "\n".join(out + [""] + table.notes + [summary(table)])


def as_markdown(table: Table, preamble: list[str]) -> str:
    out = [*preamble, ""]
    out.append("| " + " | ".join(table.header) + " |")
    out.append("|" + "|".join(["---"] + ["---:"] * (len(table.header) - 2) + [":---:"]) + "|")
    out += ["| " + " | ".join(line) + " |" for line in table.lines]
    out += [""] + [f"{note}  " for note in table.notes] + [summary(table), ""]
    return "\n".join(out)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {"cores": os.cpu_count(), "platform": platform.platform()}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = [
                line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")
            ]
        info["cpu"] = names[0] if names else platform.processor()
        with open("/proc/meminfo") as meminfo:
            total = next(line for line in meminfo if line.startswith("MemTotal"))
        info["memory_gib"] = round(int(total.split()[1]) / 2**20, 1)
    except OSError:
        info["cpu"] = platform.processor()
    blas = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}
    if blas:
        info["openblas_env"] = blas
    return info
