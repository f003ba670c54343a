"""A tour of lakota on a fresh local folder repository: ``python -m lakota.demo [FOLDER]``.

It creates a collection, writes a few series, reads a date range, overwrites part of
it, reads it again as of before the overwrite, and lists the revisions.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy

from . import Repo, Schema

DEFAULT_FOLDER = "demo-repo"


def show(title: str, frame) -> None:
    print(f"\n== {title}")
    names = list(frame)
    print("  ".join(f"{name:>19}" for name in names))
    for row in zip(*(frame[name] for name in names)):
        print("  ".join(f"{_text(value):>19}" for value in row))


def _text(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def hourly_prices(day: str, base: float, hours: int = 24) -> dict:
    """Deterministic hourly prices for one day."""
    stamps = numpy.datetime64(day, "h") + numpy.arange(hours)
    values = base + numpy.round(numpy.sin(numpy.arange(hours) / 3.0) * 10, 2)
    return {"timestamp": stamps.astype("M8[s]"), "price": values}


def main(folder: str = DEFAULT_FOLDER) -> None:
    path = Path(folder)
    if path.exists():
        shutil.rmtree(path)
    repo = Repo(str(path))
    print(f"Repository in {path.resolve()}")

    schema = Schema(timestamp="timestamp*", price="float")
    prices = repo.create_collection(schema, "prices")
    print("Collections:", repo.ls())

    with prices.multi():
        for market, base in (("BE", 50.0), ("FR", 48.0), ("NL", 52.0)):
            (prices / market).write(hourly_prices("2024-03-01", base))
    print("Series:", prices.ls())

    belgium = prices / "BE"
    show(
        "BE from 06:00 to 09:00 (stop excluded)",
        belgium.frame(start="2024-03-01T06:00", stop="2024-03-01T09:00"),
    )

    correction = {
        "timestamp": ["2024-03-01T07:00", "2024-03-01T08:00"],
        "price": [99.5, 101.25],
    }
    (fix,) = belgium.write(correction)
    show(
        "BE after the correction of 07:00 and 08:00",
        belgium.frame(start="2024-03-01T06:00", stop="2024-03-01T09:00"),
    )
    show(
        "BE as it was before the correction (time travel)",
        belgium.frame(start="2024-03-01T06:00", stop="2024-03-01T09:00", before=fix.epoch),
    )

    print(f"\nBE has {len(belgium)} rows; the collection has these revisions:")
    for rev in prices.changelog.log():
        marker = " (leaf)" if rev.is_leaf else ""
        print(f"  {rev.path}{marker}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
