"""The single-pass full read (`frame._read_whole`): every column of every segment decoded
straight into the output, assuming no segment hides stored rows, with a fallback when one
does. The values must be those of the ordinary path in every case."""

from __future__ import annotations

import numpy
import pytest

import lakota.frame
from lakota import Repo, Schema
from lakota.frame import Frame
from lakota.utils import settings

SCHEMA = Schema(ts="int*", value="float", count="int")
COUNTS = numpy.random.default_rng(0).integers(0, 10**9, 5000)  # large enough for data files


@pytest.fixture
def series(monkeypatch):
    monkeypatch.setattr(settings, "page_len", 1000)
    srs = Repo().create_collection(SCHEMA, "clct") / "s"
    ts = numpy.arange(5000)
    srs.write({"ts": ts, "value": ts * 0.5, "count": COUNTS})
    return srs


@pytest.fixture
def whole_reads(monkeypatch):
    """Count the reads served by the single pass and those that fell back."""
    counts = {"served": 0, "fallback": 0}
    original = lakota.frame._read_whole

    def counted(*args):
        columns = original(*args)
        counts["served" if columns is not None else "fallback"] += 1
        return columns

    monkeypatch.setattr(lakota.frame, "_read_whole", counted)
    return counts


def test_a_full_read_takes_the_single_pass(series, whole_reads):
    frame = series.frame()
    assert frame["ts"].tolist() == list(range(5000))
    assert frame["count"].tolist() == COUNTS.tolist()
    assert series.frame(select="value")["value"].tolist() == [v * 0.5 for v in range(5000)]
    assert whole_reads == {"served": 2, "fallback": 0}


def test_a_segment_cut_by_a_later_write_falls_back(series, whole_reads):
    series.write({"ts": [1500, 1501], "value": [-1.0, -2.0], "count": [-1, -2]})
    series.delete(3000, 3100)
    expected = [v for v in range(5000) if not 3000 <= v <= 3100]
    frame = series.frame()
    assert frame["ts"].tolist() == expected
    values = {1500: -1.0, 1501: -2.0}
    assert frame["value"].tolist() == [values.get(v, v * 0.5) for v in expected]
    assert whole_reads == {"served": 0, "fallback": 1}


def test_a_range_query_and_a_limit_use_the_ordinary_path(series, whole_reads):
    assert series.frame(start=10, stop=20)["ts"].tolist() == list(range(10, 20))
    assert series.frame(limit=3, offset=2)["ts"].tolist() == [2, 3, 4]
    assert whole_reads == {"served": 0, "fallback": 0}


def test_segments_read_twice_give_the_same_values_and_do_not_share_memory(series):
    segments = series.segments()
    first = Frame.from_segments(SCHEMA, segments)
    first["value"][:] = -7.0
    second = Frame.from_segments(SCHEMA, segments)
    assert second["value"].tolist() == [v * 0.5 for v in range(5000)]
    assert second["ts"].tolist() == list(range(5000))


def test_a_file_shorter_than_the_commit_says_is_refused(series, monkeypatch):
    from lakota.errors import CorruptedDataError
    from lakota.schema import Codec
    from lakota.utils import digest_path

    segment = series.segments()[1]
    assert segment.digest["count"] not in series.collection.commit().embedded
    path = digest_path(segment.digest["count"])
    series.pod.write(path, Codec("i8").encode(numpy.arange(999)), force=True)
    monkeypatch.setattr(settings, "verify_digests", "never")
    with pytest.raises(CorruptedDataError, match="999"):
        series.frame()
