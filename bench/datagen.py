"""The benchmark's data and its verification, shared by every engine's process.

Every engine generates the same arrays from the same seed with `make_columns`, so a read
can be checked against a fresh copy of what was written. `check` compares values exactly
and raises `VerificationError` on the first difference: a fast wrong answer is a failure.
Only numpy is needed here, since this module runs in each engine's own virtual environment.
"""

from __future__ import annotations

import numpy

SEED = 20240601
T0 = numpy.datetime64("2020-01-01T00:00:00", "s")
INDEX = "ts"
VALUES = ("a", "b", "c", "n")
COLUMNS = (INDEX, *VALUES)
ROW_BYTES = 8 * len(COLUMNS)

Columns = dict[str, numpy.ndarray]


class VerificationError(Exception):
    """A read returned something other than the data that was written."""


def make_columns(rows: int, key: tuple[int, ...], after: numpy.datetime64 = T0) -> Columns:
    """`rows` rows of deterministic data for `key`, with timestamps strictly after `after`.

    Timestamps advance by 1 to 3 seconds; `a` is a price-like random walk, `b` white noise,
    `c` a value with two decimals and `n` a count, so codecs see realistic, not constant, data.
    """
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    rng = numpy.random.default_rng((SEED, *key))
    gaps = rng.integers(1, 4, size=rows)
    return {
        "ts": numpy.datetime64(after, "s") + numpy.cumsum(gaps).astype("m8[s]"),
        "a": 100.0 + numpy.cumsum(rng.standard_normal(rows) * 0.01),
        "b": rng.standard_normal(rows),
        "c": numpy.round(rng.uniform(0.0, 1000.0, size=rows), 2),
        "n": rng.integers(0, 1_000_000, size=rows, dtype=numpy.int64),
    }


def concat(*parts: Columns) -> Columns:
    """The parts one after the other, column by column."""
    return {name: numpy.concatenate([part[name] for part in parts]) for name in COLUMNS}


def take(data: Columns, start: int | None = None, stop: int | None = None) -> Columns:
    """Rows ``[start, stop)`` of every column."""
    return {name: values[start:stop] for name, values in data.items()}


def check(expected: Columns, got: Columns, what: str, names: tuple[str, ...] = COLUMNS) -> None:
    """Raise VerificationError unless `got` holds exactly `expected` for the columns `names`."""
    missing = [name for name in names if name not in got]
    if missing:
        raise VerificationError(f"{what}: missing column(s) {', '.join(missing)}")
    for name in names:
        check_column(expected[name], got[name], f"{what}, column {name!r}")


def check_column(expected: numpy.ndarray, got: object, what: str) -> None:
    """Raise VerificationError unless `got` equals `expected` in kind, length and values."""
    got = numpy.asarray(got)
    if got.dtype.kind != expected.dtype.kind:
        raise VerificationError(f"{what}: dtype {got.dtype}, expected {expected.dtype}")
    if got.dtype.kind == "M":
        finer = numpy.promote_types(got.dtype, expected.dtype)
        got, expected = got.astype(finer), expected.astype(finer)
    if len(got) != len(expected):
        raise VerificationError(f"{what}: {len(got)} rows, expected {len(expected)}")
    if not numpy.array_equal(got, expected):
        first = int(numpy.flatnonzero(got != expected)[0])
        raise VerificationError(
            f"{what}: row {first} is {got[first]!r}, expected {expected[first]!r}"
        )
