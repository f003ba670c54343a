"""Conversions between lakota frames and Arrow / Polars tables, and the optional-extra imports.

pandas, pyarrow, polars and dask are optional: `require` imports one of them on first
use and, when it is missing, raises an `ImportError` naming the extra to install
(``pip install 'lakota[arrow]'``).

Output types, column by column (numpy dtype of the lakota column -> Arrow -> Polars):

* numbers and booleans: the same type; numbers are zero-copy (booleans are bit-packed
  by Arrow and Polars, so they are copied).
* ``datetime64[s|ms|us|ns]``: Arrow ``timestamp`` of the same unit (zero-copy), Polars
  ``Datetime`` of the same unit (zero-copy) except seconds, which Polars lacks: those
  become ``Datetime("ms")``. ``datetime64[D]`` gives ``date32`` / ``Date``; coarser or
  odd units (minutes, hours, weeks...) are converted losslessly to seconds (Arrow) or
  milliseconds (Polars). ``NaT`` becomes null.
* ``timedelta64``: Arrow ``duration`` / Polars ``Duration``, with the same unit rules.
* ``str`` (numpy ``U``): Arrow ``string`` / Polars ``String`` (a copy: numpy stores
  fixed-width UTF-32).
* objects (``O``): Arrow infers one type from the values (dicts of the same keys become
  a ``struct``, lists a ``list``, text a ``string``); values without a common Arrow
  type raise a `TypeError` naming the column, so leave such columns out with
  ``select=``. Polars keeps the Python objects as they are, in an ``Object`` column.
* complex numbers: no Arrow type (`TypeError` naming the column); Polars ``Object``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy

__all__ = ["EXTRAS", "require", "frame_to_arrow", "frame_to_polars"]

# module -> the lakota extra that installs it
EXTRAS = {
    "pandas": "pandas",
    "pyarrow": "arrow",
    "polars": "polars",
    "dask": "dask",
    "dask.dataframe": "dask",
    "distributed": "dask",
}
_ARROW_UNITS = ("s", "ms", "us", "ns")
_POLARS_UNITS = ("ms", "us", "ns")
_FINER_THAN_NS = ("ps", "fs", "as")


def require(module: str, feature: str) -> ModuleType:
    """Import `module` for `feature`, or raise an ImportError telling which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = EXTRAS.get(module, module)
        raise ImportError(
            f"{feature} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'lakota[{extra}]'"
        ) from exc


# --- Arrow ---------------------------------------------------------------------------


def frame_to_arrow(frame: Any) -> Any:
    """A `pyarrow.Table` with the frame's columns, in schema order (see the module doc)."""
    pyarrow = require("pyarrow", "Arrow output")
    names = _present(frame)
    arrays = [_arrow_array(pyarrow, frame.columns[name], name) for name in names]
    return pyarrow.table(arrays, names=names)


def _arrow_array(pyarrow: ModuleType, arr: numpy.ndarray, name: str) -> Any:
    kind = arr.dtype.kind
    if kind in "mM":
        arr = _with_unit(arr, _ARROW_UNITS, "s", name)
    try:
        if kind == "U":
            return pyarrow.array(arr, type=pyarrow.string())
        return pyarrow.array(arr)
    except (pyarrow.ArrowException, TypeError, ValueError) as exc:
        raise TypeError(
            f"Column {name!r} ({arr.dtype}) has no Arrow equivalent: {exc}. "
            "Leave it out with select=, or read it with frame()"
        ) from None


def _with_unit(arr: numpy.ndarray, units: tuple[str, ...], coarse: str, name: str):
    """`arr` if its time unit is one of `units` (or days, for dates), else converted.

    Coarser units go to `coarse`, finer ones (ps, fs, as) to ns; values the new unit
    cannot hold exactly raise.
    """
    unit, _ = numpy.datetime_data(arr.dtype)
    if unit in units or (unit == "D" and arr.dtype.kind == "M"):
        return arr
    target = "ns" if unit in _FINER_THAN_NS else coarse
    out = arr.astype(f"{arr.dtype.kind}8[{target}]")
    if not numpy.all((out.astype(arr.dtype) == arr) | numpy.isnat(arr)):
        raise ValueError(f"Column {name!r}: {arr.dtype} values do not fit in unit {target!r}")
    return out


# --- Polars --------------------------------------------------------------------------


def frame_to_polars(frame: Any) -> Any:
    """A `polars.DataFrame` with the frame's columns, in schema order (see the module doc)."""
    polars = require("polars", "Polars output")
    series = [_polars_series(polars, frame.columns[name], name) for name in _present(frame)]
    return polars.DataFrame(series)


def _polars_series(polars: ModuleType, arr: numpy.ndarray, name: str) -> Any:
    kind = arr.dtype.kind
    if kind in "mM":
        arr = _with_unit(arr, _POLARS_UNITS, "ms", name)
    try:
        if kind in "Oc":
            return polars.Series(name, arr, dtype=polars.Object)
        if kind in "mM":
            return _polars_times(polars, arr, name)
        return polars.Series(name, arr)
    except (TypeError, ValueError, polars.exceptions.PolarsError) as exc:
        raise TypeError(f"Column {name!r} ({arr.dtype}) has no Polars equivalent: {exc}") from None


def _polars_times(polars: ModuleType, arr: numpy.ndarray, name: str) -> Any:
    """Datetimes and durations, zero-copy through an int64 view when there is no NaT."""
    unit, _ = numpy.datetime_data(arr.dtype)
    if unit == "D" or numpy.isnat(arr).any():  # polars turns NaT into null, with a copy
        return polars.Series(name, arr)
    dtype = polars.Datetime(unit) if arr.dtype.kind == "M" else polars.Duration(unit)
    return polars.Series(name, arr.view("i8")).cast(dtype)


def _present(frame: Any) -> list[str]:
    """The frame's column names, in schema order."""
    return [name for name in frame.schema if name in frame.columns]
