"""The benchmark harness (bench/), exercised in-process on the lakota engine with tiny sizes.

No virtual environment and no peer engine is needed: these tests check that the workloads
run, record every metric, and that a wrong read makes them fail (never pass silently).
Speed itself is measured by `make bench`, not here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import datagen  # noqa: E402
import report  # noqa: E402
import workloads  # noqa: E402
from engines import LakotaEngine  # noqa: E402
from scales import SCALES, Sizes  # noqa: E402
from worker import lakota_source  # noqa: E402

TINY = Sizes(
    rows=2_000,
    appends=4,
    append_rows=10,
    many_series=6,
    many_rows=20,
    series_reads=3,
    range_reads=2,
    short_history=4,
    long_history=12,
    history_samples=2,
)


def context(tmp_path: Path, engine: type = LakotaEngine) -> workloads.Context:
    return workloads.Context(engine, TINY, tmp_path, rounds=2, log=lambda line: None)


def prepared(tmp_path: Path, engine: type = LakotaEngine) -> workloads.Context:
    """A context whose bulk write is done (the store every read workload uses)."""
    ctx = context(tmp_path, engine)
    workloads.bulk_write(ctx)
    return ctx


def test_run_all_records_every_metric(tmp_path):
    ctx = context(tmp_path)
    probe = lambda store: workloads.read_memory(LakotaEngine, store, TINY.rows)  # noqa: E731
    results = workloads.run_all(ctx, probe, budget=60)
    metrics = results["metrics"]
    expected = {row.key for row in report.ROWS} | {"data_bytes"}
    assert set(metrics) == expected
    assert len(metrics["bulk_write"]["samples"]) == 2
    assert len(metrics["append"]["samples"]) == TINY.appends
    assert len(metrics["range_read"]["samples"]) == TINY.range_reads
    assert len(metrics["series_read"]["samples"]) == TINY.series_reads
    # the probe runs in this warm process, whose freed pages may absorb a read: its RSS
    # may not grow (bench/run.py probes in a fresh process); tracemalloc always sees it
    assert metrics["read_memory"]["median"] >= 0
    timed = {key: m["median"] for key, m in metrics.items() if key != "read_memory"}
    assert all(value > 0 for value in timed.values()), timed
    assert metrics["data_bytes"]["median"] == TINY.rows * 40
    assert metrics["append_after_short"]["note"] == "after 4 revisions"
    assert metrics["append_after_long"]["note"] == "after 12 revisions"
    assert metrics["history_build"]["note"] == "6 one-row appends"
    table = report.build({"lakota": {"engine": "lakota", **results}}, vars(TINY))
    memory = next(t for t in table.targets if t["key"] == "read_memory")
    ratio = metrics["read_memory"]["median"] / metrics["data_bytes"]["median"]
    assert memory["ratio"] == pytest.approx(ratio)


def test_history_budget_stops_the_build(tmp_path):
    ctx = context(tmp_path)
    workloads.long_history(ctx, budget=0)
    long = ctx.metrics["append_after_long"]
    assert long.partial
    assert long.note == "after 6 revisions, when the build budget of 0 s ran out"
    table = report.build({"lakota": {"engine": "lakota", **ctx.results()}}, vars(TINY))
    line = next(line for line in table.lines if line[0].endswith("12 revisions"))
    assert line[1].endswith(" †")
    assert "† lakota: after 6 revisions, when the build budget of 0 s ran out" in table.notes
    target = next(t for t in table.targets if t["key"] == "append_after_long")
    assert target["met"] is not True


def _corrupt_value(data):
    data = dict(data)
    data["b"] = data["b"].copy()
    data["b"][len(data["b"]) // 2] += 1e-9
    return data


def _drop_last_row(data):
    return {name: values[:-1] for name, values in data.items()}


def _shift_timestamps(data):
    return {**data, "ts": data["ts"] + numpy.timedelta64(1, "s")}


def _int_as_float(data):
    return {**data, "n": data["n"].astype("f8")}


def _lose_column(data):
    return {name: values for name, values in data.items() if name != "c"}


@pytest.mark.parametrize(
    "corrupt", [_corrupt_value, _drop_last_row, _shift_timestamps, _int_as_float, _lose_column]
)
def test_wrong_full_read_fails(tmp_path, corrupt):
    class Wrong(LakotaEngine):
        def read(self, group, name):
            return corrupt(super().read(group, name))

    ctx = prepared(tmp_path, Wrong)
    with pytest.raises(datagen.VerificationError, match="full read"):
        workloads.full_read(ctx)


def test_range_read_that_excludes_stop_fails(tmp_path):
    class StopExcluded(LakotaEngine):
        def read_range(self, group, name, start, stop):
            frame = self.collections[group].series(name).frame(start=start, stop=stop)
            return {column: frame[column] for column in datagen.COLUMNS}

    ctx = prepared(tmp_path, StopExcluded)
    with pytest.raises(
        datagen.VerificationError, match=r"range read, column 'ts': 19 rows, expected 20"
    ):
        workloads.range_read(ctx)


def test_as_of_read_that_ignores_the_version_fails(tmp_path):
    class Latest(LakotaEngine):
        def read_as_of(self, group, name, token):
            return self.read(group, name)

    ctx = prepared(tmp_path, Latest)
    workloads.appends(ctx)
    workloads.read_after_appends(ctx)
    with pytest.raises(datagen.VerificationError, match="as of the version before"):
        workloads.as_of_read(ctx)


def test_wrong_series_read_fails(tmp_path):
    class Swapped(LakotaEngine):
        def read_one(self, group, name):
            return self.read(group, "s0000" if name != "s0000" else "s0001")

    ctx = context(tmp_path, Swapped)
    workloads.batch_write(ctx)
    with pytest.raises(datagen.VerificationError, match="read of series"):
        workloads.series_reads(ctx)


def test_generated_data_is_deterministic_and_sorted():
    first = datagen.make_columns(500, (7,), after=datagen.T0)
    again = datagen.make_columns(500, (7,), after=datagen.T0)
    other = datagen.make_columns(500, (8,), after=datagen.T0)
    datagen.check(first, again, "same key")
    assert not numpy.array_equal(first["a"], other["a"])
    assert first["ts"].dtype == numpy.dtype("M8[s]")
    assert first["ts"][0] > datagen.T0
    assert (numpy.diff(first["ts"].astype("i8")) >= 1).all()
    assert [first[n].dtype.kind for n in datagen.COLUMNS] == ["M", "f", "f", "f", "i"]


def test_check_accepts_finer_timestamp_units_only_when_exact():
    data = datagen.make_columns(10, (1,))
    datagen.check(data, {**data, "ts": data["ts"].astype("M8[ns]")}, "ns")
    late = data["ts"].astype("M8[ns]") + numpy.timedelta64(1, "ns")
    with pytest.raises(datagen.VerificationError, match="row 0"):
        datagen.check(data, {**data, "ts": late}, "ns")


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 49), st.sampled_from(datagen.VALUES))
def test_check_catches_any_single_changed_value(position, name):
    data = datagen.make_columns(50, (2,))
    changed = data[name].copy()
    changed[position] += 1
    with pytest.raises(datagen.VerificationError, match=f"row {position} "):
        datagen.check(data, {**data, name: changed}, "changed")


def test_report_ratios_targets_and_markers():
    def result(engine, **medians):
        metrics = {key: {"median": value, "samples": [value]} for key, value in medians.items()}
        return {"engine": engine, "ok": True, "metrics": metrics}

    results = {
        "lakota": result("lakota", bulk_write=0.5, full_read=3.0, disk_bytes=90.0),
        "lakota071": {**result("lakota071", disk_bytes=100.0), "cached": "2024-01-01"},
        "arcticdb": result("arcticdb", bulk_write=1.0, full_read=2.0),
        "parquet": {"engine": "parquet", "ok": False, "failure": "install", "error": "no wheel"},
    }
    table = report.build(results, vars(SCALES["quick"]))
    targets = {t["key"]: t for t in table.targets}
    assert targets["bulk_write"]["ratio"] == 0.5 and targets["bulk_write"]["met"] is True
    assert targets["full_read"]["ratio"] == 1.5 and targets["full_read"]["met"] is False
    assert targets["disk_bytes"]["ratio"] == 0.9 and targets["disk_bytes"]["met"] is True
    assert targets["append"]["met"] is None
    assert table.header[:5] == ["workload", "lakota", "lakota071*", "arcticdb", "parquet"]
    bulk = table.lines[0]
    assert bulk[1:5] == ["500 ms", "–", "1 s", "not installed"]
    assert bulk[-3:] == ["0.500", "≤ 0.7 × arcticdb", "yes"]
    text = report.as_text(table)
    assert "* lakota071: cached result of 2024-01-01" in text
    assert "parquet: install: no wheel" in text
    assert "targets met: 2 of 14 (11 not measured)" in text


def test_lakota_engines_import_the_right_package():
    assert lakota_source("lakota").endswith("lakota")
    with pytest.raises(RuntimeError, match="lakota 0.7.1 from PyPI"):
        lakota_source("lakota071")


def test_many_series_workload_measures_and_verifies(tmp_path):
    """bench/many_series.py on the lakota engine, tiny sizes: every metric, every count."""
    import json

    import many_series

    out = tmp_path / "result.json"
    argv = ["run", "--engine", "lakota", "--series", "4,12", "--writes", "3", "--rounds", "2"]
    argv += ["--batch", "5", "--out", str(out), "--tmpdir", str(tmp_path)]
    assert many_series.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["ok"], result.get("error")
    for count in ("4", "12"):
        metrics = result["by_series"][count]
        assert set(metrics) == {"build", "write", "write_bytes", "listing", "fresh_read"}
        assert len(metrics["write"]["samples"]) == 3
        assert metrics["write_bytes"]["median"] > 0
    sizes = {"rows": 10, "writes": 3, "batch": 5, "rounds": 2}
    lines = many_series.table(
        {
            "lakota": {
                **result,
                "by_series": {c: {"metrics": m} for c, m in result["by_series"].items()},
            }
        },
        sizes,
    )
    assert lines[0][:3] == ["series", "measure", "lakota"]
    assert {line[0] for line in lines[1:]} == {"4", "12"}


def test_many_series_targets():
    import many_series

    def result(write: float, grown: float) -> dict:
        return {"metrics": {"write": {"samples": [write]}, "write_bytes": {"samples": [grown]}}}

    lakota = {"by_series": {"10": result(0.002, 9000), "100000": result(0.005, 70_000)}}
    assert many_series._target("write", lakota, "100000") == (
        "≤ 3 × write at 10 series: 2.5 ×",
        "yes",
    )
    assert many_series._target("write_bytes", lakota, "100000") == ("≤ 64 KB", "NO")
    assert many_series._target("write", lakota, "10") == ("", "")
