"""M4 downsampling: which rows a line chart `width` pixels wide needs to look exact.

```python
import numpy
from lakota.web.m4 import m4_rows
x = numpy.arange(10_000_000)
y = numpy.sin(x / 1e5)
y[1234567] = 50.0                   # a spike
rows = m4_rows(x, [y], width=1000)  # at most 4 rows per pixel column
assert len(rows) <= 4000 and 1234567 in rows
```

The x range is cut into `width` equal buckets (one per pixel column). In each bucket the
first row, the last row, and the rows holding the minimum and the maximum of every value
column are kept (Jugel et al., "M4: a visualization-oriented time series data
aggregation", VLDB 2014). Drawing the kept rows draws the same pixels as drawing every
row, so spikes stay visible. The rows kept for one column are real rows and are sent
with every column's values, which keeps one shared x axis for the chart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy

__all__ = ["m4_rows", "bucket_starts"]


def m4_rows(x: numpy.ndarray, ys: Sequence[numpy.ndarray], width: int) -> numpy.ndarray:
    """Sorted positions of the rows to draw (all rows when there are few)."""
    if not isinstance(width, (int, numpy.integer)) or width < 1:
        raise ValueError(f"width must be a positive integer, not {width!r}")
    size = len(x)
    if any(len(y) != size for y in ys):
        raise ValueError("x and every y column must have the same length")
    if size <= 4 * width:
        return numpy.arange(size)
    starts = bucket_starts(x, width)
    stops = numpy.append(starts[1:], size)
    kept = [starts, stops - 1]
    for y in ys:
        values = numpy.asarray(y).astype("f8", copy=False)
        kept.append(_first_match(values, numpy.fmin.reduceat(values, starts), starts, stops))
        kept.append(_first_match(values, numpy.fmax.reduceat(values, starts), starts, stops))
    return numpy.unique(numpy.concatenate(kept))


def bucket_starts(x: numpy.ndarray, width: int) -> numpy.ndarray:
    """First position of each non-empty bucket of `width` equal x intervals (x sorted).

    When every x is equal, buckets cut the rows in equal counts instead.
    """
    axis = _as_numbers(x)
    low, high = axis[0], axis[-1]
    if not high > low:
        return numpy.unique(numpy.linspace(0, len(x), width, endpoint=False).astype("i8"))
    edges = low + (high - low) * (numpy.arange(width) / width)
    return numpy.unique(numpy.searchsorted(axis, edges, side="left"))


def _as_numbers(x: numpy.ndarray) -> numpy.ndarray:
    x = numpy.asarray(x)
    if x.dtype.kind in "mM":
        return x.view("i8").astype("f8")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"Cannot downsample along an x axis of type {x.dtype}")
    return x.astype("f8", copy=False)


def _first_match(
    values: numpy.ndarray, targets: numpy.ndarray, starts: numpy.ndarray, stops: numpy.ndarray
) -> numpy.ndarray:
    """In each bucket, the first position whose value equals the bucket's target.

    A bucket of NaN only has no match: its first position stands in.
    """
    hits = numpy.flatnonzero(values == numpy.repeat(targets, stops - starts))
    if not len(hits):
        return starts
    nearest = numpy.searchsorted(hits, starts)
    found = hits[numpy.minimum(nearest, len(hits) - 1)]
    inside = (nearest < len(hits)) & (found < stops)
    return numpy.where(inside, found, starts)
