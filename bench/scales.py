"""Workload sizes per scale (standard library only: the driver imports it too)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """How much data each workload uses."""

    rows: int
    appends: int = 200
    append_rows: int = 100
    many_series: int = 1000
    many_rows: int = 1000
    series_reads: int = 100
    range_reads: int = 50
    range_fraction: float = 0.01
    short_history: int = 10
    long_history: int = 10_000
    history_samples: int = 5


SCALES = {
    "small": Sizes(rows=1_000_000),
    "medium": Sizes(rows=10_000_000),
    "quick": Sizes(
        rows=20_000,
        appends=20,
        many_series=50,
        many_rows=100,
        series_reads=10,
        range_reads=5,
        long_history=100,
        history_samples=3,
    ),
}
