"""Column codecs and the read path that decodes data files straight into the output."""

from __future__ import annotations

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numcodecs import Blosc

from lakota import Frame, Repo, Schema
from lakota.commit import load_column
from lakota.errors import CorruptedDataError
from lakota.schema import Codec, SizedBlosc
from lakota.utils import digest_path
from lakota.utils import settings as lakota_settings

UPSTREAM_BLOSC = Blosc(cname="zstd", clevel=5, shuffle=Blosc.BITSHUFFLE)
FILE_ROWS = 1000  # random floats: too large to be embedded


def header(data: bytes) -> dict:
    """The blosc1 chunk header fields that tell how a chunk was made."""
    return {
        "compressor": data[2] >> 5,
        "nbytes": int.from_bytes(data[4:8], "little"),
        "blocksize": int.from_bytes(data[8:12], "little"),
    }


@pytest.mark.parametrize("rows", [1, 3, 100, 110])
def test_arrays_that_will_be_embedded_are_byte_identical_with_lakota_071(rows):
    arr = numpy.random.default_rng(rows).normal(size=rows)
    data = Codec("f8").encode(arr)
    assert len(data) < lakota_settings.embed_max_size
    assert data == bytes(UPSTREAM_BLOSC.encode(arr))


def test_large_arrays_that_compress_well_are_embedded_as_upstream_makes_them():
    days = numpy.arange(20_000, dtype="i8")
    data = Codec("i8").encode(days)
    assert len(data) < lakota_settings.embed_max_size
    assert data == bytes(UPSTREAM_BLOSC.encode(days))


def test_the_embedding_limit_is_read_when_encoding(monkeypatch):
    arr = numpy.random.default_rng(0).normal(size=FILE_ROWS)
    assert Codec("f8").encode(arr) != bytes(UPSTREAM_BLOSC.encode(arr))
    monkeypatch.setattr(lakota_settings, "embed_max_size", 10**6)
    assert Codec("f8").encode(arr) == bytes(UPSTREAM_BLOSC.encode(arr))


@pytest.mark.parametrize("rows", [10_000, 100_000, 300_000])
@pytest.mark.parametrize("shape", ["ramp", "walk"])
def test_data_files_use_one_block_of_up_to_a_mebibyte(rows, shape):
    rng = numpy.random.default_rng(rows)
    if shape == "ramp":  # timestamps
        arr = numpy.cumsum(rng.integers(1, 4, size=rows))
    else:  # prices
        arr = 100 + numpy.cumsum(rng.normal(size=rows)) * 0.01
    data = Codec(arr.dtype).encode(arr)
    assert header(data) == {
        "compressor": 4,  # zstd
        "nbytes": arr.nbytes,
        "blocksize": min(arr.nbytes, SizedBlosc.BLOCK),
    }
    assert data != bytes(UPSTREAM_BLOSC.encode(arr))
    assert len(data) <= 1.1 * len(UPSTREAM_BLOSC.encode(arr))
    decoded = numpy.frombuffer(UPSTREAM_BLOSC.decode(data), arr.dtype)
    assert numpy.array_equal(decoded, arr)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.sampled_from([0, 1, 7, 127, 128, FILE_ROWS, 9000]),
    dtype=st.sampled_from(["f8", "i8", "M8[s]", "f4", "u1", "bool"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_decode_into_matches_decode(rows, dtype, seed):
    codec = Codec(dtype)
    arr = numpy.random.default_rng(seed).integers(0, 2**40, size=rows).astype(dtype)
    data = codec.encode(arr)
    out = numpy.full(rows, 1, dtype=dtype)
    codec.decode_into(data, out)
    assert numpy.array_equal(out, arr)
    assert numpy.array_equal(codec.decode(data), arr)


@pytest.mark.parametrize("codecs", [(), ("zstd",)])
@pytest.mark.parametrize("delta", [-1, 1])
def test_decode_into_refuses_an_output_of_another_size(codecs, delta):
    codec = Codec("i8", *codecs)
    data = codec.encode(numpy.arange(10_000))
    out = numpy.zeros(10_000 + delta, dtype="i8")
    with pytest.raises(ValueError, match="expected"):
        codec.decode_into(data, out)


def test_decode_into_a_text_column_copies():
    codec = Codec("U")
    out = numpy.empty(2, dtype="U5")
    codec.decode_into(codec.encode(numpy.array(["ab", "cde"])), out)
    assert out.tolist() == ["ab", "cde"]


@pytest.fixture
def big(tmp_path, monkeypatch):
    """A series of 5 pages of 1,000 rows, one column of each kind, in a folder."""
    monkeypatch.setattr(lakota_settings, "page_len", 1_000)
    repo = Repo(str(tmp_path / "repo"))
    schema = Schema(ts="timestamp*", value="float", count="int", name="str")
    series = repo.create_collection(schema, "c") / "s"
    rows = 5_000
    rng = numpy.random.default_rng(3)
    data = {
        "ts": numpy.datetime64("2024-01-01", "s") + numpy.arange(rows) * 7,
        "value": rng.normal(size=rows),
        "count": rng.integers(0, 10**9, size=rows),
        "name": numpy.array([f"n{i % 17}" * (1 + i % 3) for i in range(rows)]),
    }
    series.write(data)
    return repo, series, data


def test_full_read_of_many_pages(big):
    _, series, data = big
    assert len(series.segments()) == 5
    frame = series.frame()
    for name, values in data.items():
        assert numpy.array_equal(frame[name], values), name
        assert (
            frame[name].dtype == values.dtype if name != "name" else frame[name].dtype.kind == "U"
        )


@pytest.mark.parametrize("start, stop", [(None, None), (1500, 3999), (10, 20), (999, 1000)])
@pytest.mark.parametrize("select", [None, "value", ["ts", "name"]])
def test_ranges_and_columns_across_pages(big, start, stop, select):
    _, series, data = big
    ts = data["ts"]
    lo, hi = (None, None) if start is None else (ts[start], ts[stop])
    frame = series.frame(start=lo, stop=hi, closed="b", select=select)
    rows = slice(start, None if stop is None else stop + 1)
    names = list(data) if select is None else [select] if isinstance(select, str) else select
    assert list(frame) == names
    for name in names:
        assert numpy.array_equal(frame[name], data[name][rows]), name


@pytest.mark.parametrize("limit, offset", [(1, 0), (2500, 500), (10, 4995), (0, 0), (None, 4999)])
def test_limit_and_offset_across_pages(big, limit, offset):
    _, series, data = big
    frame = series.frame(limit=limit, offset=offset)
    end = None if limit is None else offset + limit
    for name, values in data.items():
        assert numpy.array_equal(frame[name], values[offset:end]), name


def test_an_overwrite_inside_a_page_is_read_around(big):
    _, series, data = big
    patch = {name: values[2100:2200].copy() for name, values in data.items()}
    patch["value"][:] = -1.0
    series.write(patch)
    frame = series.frame()
    expected = data["value"].copy()
    expected[2100:2200] = -1.0
    assert numpy.array_equal(frame["value"], expected)
    assert numpy.array_equal(frame["ts"], data["ts"])


def test_a_damaged_file_decoded_in_place_raises(big, monkeypatch):
    monkeypatch.setattr(lakota_settings, "verify_digests", "always")
    repo, series, _ = big
    segment = series.segments()[2]
    path = digest_path(segment.digest["value"])
    data = bytearray(repo.pod.read(path))
    data[-100] ^= 0xFF
    repo.pod.write(path, bytes(data), force=True)
    with pytest.raises(CorruptedDataError, match=path.split("/")[-1]):
        series.frame()


def test_a_file_of_the_wrong_length_raises_even_without_verification(big, monkeypatch):
    repo, series, data = big
    segment = series.segments()[0]
    path = digest_path(segment.digest["count"])
    repo.pod.write(path, Codec("i8").encode(data["count"][:999]), force=True)
    monkeypatch.setattr(lakota_settings, "verify_digests", False)
    with pytest.raises(CorruptedDataError, match="999"):
        series.frame()


def test_load_column_into_an_output(big):
    repo, series, data = big
    segment = series.segments()[1]
    out = numpy.empty(1000, dtype="f8")
    got = load_column(repo.pod, segment.digest["value"], {}, Codec("f8"), out=out)
    assert got is out
    assert numpy.array_equal(out, data["value"][1000:2000])


@pytest.mark.parametrize(
    "columns, numeric",
    [
        ({"ts": "timestamp*", "value": "float", "flag": "bool", "day": "date"}, True),
        ({"ts": "timestamp*", "name": "str"}, False),
        ({"key": "int*", "meta": "O"}, False),
    ],
)
def test_schema_tells_whether_every_column_is_numeric(columns, numeric):
    assert Schema(**columns).numeric is numeric


def test_segments_cut_by_the_query_are_marked_clipped(big):
    _, series, data = big
    ts = data["ts"]
    assert [s.clipped for s in series.segments()] == [False] * 5
    cut = series.segments(start=(ts[1500],))
    assert [s.clipped for s in cut] == [True, False, False, False]
    frame = Frame.from_segments(series.schema, cut, select=["value"])
    assert numpy.array_equal(frame["value"], data["value"][1500:])
    assert "value" in cut[0]._columns  # the cut segment was decoded whole, up front
    assert "value" not in cut[1]._columns  # the whole one went straight to the output


@pytest.mark.parametrize(
    "text, numeric",
    [("float", True), ("int", True), ("timestamp", True), ("date", True), ("bool", True)]
    + [("f4", True), ("u1", True), ("str", False), ("O", False), ("S8", False)],
)
def test_schema_column_tells_whether_it_is_numeric(text, numeric):
    assert Schema(key="int*", col=text)["col"].numeric is numeric
