"""A small data file that announces (or expands to) far more than its commit row holds
is refused as corrupted before the reader allocates it."""

from __future__ import annotations

import tracemalloc
import zlib

import msgpack
import numcodecs
import numpy
import pytest

from lakota import Repo, Schema
from lakota.decoding import announced_size, decode_within
from lakota.errors import CorruptedDataError
from lakota.schema import Codec
from lakota.utils import settings

ROWS = 1000
BOMB_SIZE = 256 * 1024 * 1024
RLE_BLOCK = 128 * 1024  # the largest block of a zstd frame


def zstd_bomb(size: int = BOMB_SIZE) -> bytes:
    """A zstd frame of RLE blocks: 4 bytes on disk for every 128 KiB decoded."""
    header = b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + size.to_bytes(8, "little")
    blocks = []
    for start in range(0, size, RLE_BLOCK):
        block_size = min(RLE_BLOCK, size - start)
        last = start + block_size >= size
        blocks.append((last | 1 << 1 | block_size << 3).to_bytes(3, "little") + b"\x00")
    return header + b"".join(blocks)


def gzip_bomb(size: int = BOMB_SIZE // 4) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip container
    chunk = bytes(1024 * 1024)
    parts = [compressor.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join(parts) + compressor.flush()


def blosc_bomb(data: bytes) -> bytes:
    """A genuine blosc chunk whose header claims `BOMB_SIZE` decoded bytes."""
    return data[:4] + BOMB_SIZE.to_bytes(4, "little") + data[8:]


def test_the_crafted_zstd_bomb_is_what_it_claims():
    bomb = zstd_bomb(4 * RLE_BLOCK + 10)
    assert numcodecs.Zstd().decode(bomb) == bytes(4 * RLE_BLOCK + 10)
    assert announced_size("zstd", zstd_bomb()) == BOMB_SIZE
    assert len(zstd_bomb()) < 10_000


@pytest.mark.parametrize(
    "column, make_bomb",
    [
        ("float | zstd", lambda data: zstd_bomb()),
        ("str", lambda data: zstd_bomb()),  # msgpack2 then zstd
        ("float | gzip", lambda data: gzip_bomb()),
        ("float", blosc_bomb),
    ],
)
@pytest.mark.parametrize("start", [None, 5])  # the whole row, or a part (no output array)
def test_a_bomb_in_a_repository_is_refused_before_it_is_allocated(
    tmp_path, column, make_bomb, start
):
    repo = Repo(str(tmp_path / "repo"))
    coll = repo.create_collection(Schema(idx="int*", v=column), "c")
    values = numpy.random.default_rng(0).normal(size=ROWS)
    if column == "str":
        values = values.astype(str)
    coll.series("s").write({"idx": numpy.arange(ROWS), "v": values})
    before = set(repo.pod.walk())
    data_file = max(
        (path for path in before if path.count("/") == 2), key=lambda path: len(repo.pod.read(path))
    )
    repo.pod.write(data_file, make_bomb(repo.pod.read(data_file)), force=True)

    tracemalloc.start()
    try:
        with pytest.raises(CorruptedDataError, match="announces|decodes to more|decoded where"):
            Repo(str(tmp_path / "repo")).collection("c").series("s").frame(start=start)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < BOMB_SIZE // 8


def test_the_budget_follows_the_row_length_and_the_setting(monkeypatch):
    assert Codec("f8").max_decoded_size(1000) == 8000 + 1000 + 1024
    monkeypatch.setattr(settings, "max_text_value_size", 100)
    assert Codec("U").max_decoded_size(10) == 1000 + 125 + 1024


@pytest.mark.parametrize("codec_id", ["gzip", "zlib", "bz2", "lzma", "zstd", "lz4", "blosc"])
def test_bounded_decoding_gives_the_same_bytes_and_refuses_one_byte_too_many(codec_id):
    codec = numcodecs.get_codec({"id": codec_id})
    raw = numpy.random.default_rng(1).integers(0, 4, 50_000).astype("u1").tobytes()
    data = codec.encode(raw)
    assert bytes(decode_within(codec, data, len(raw))) == raw
    with pytest.raises(CorruptedDataError):
        decode_within(codec, data, len(raw) - 1)


@pytest.mark.parametrize("codec_id", ["gzip", "zlib", "bz2", "lzma"])
def test_a_truncated_stream_is_corrupted(codec_id):
    codec = numcodecs.get_codec({"id": codec_id})
    data = codec.encode(numpy.arange(10_000).tobytes())
    with pytest.raises((CorruptedDataError, EOFError, OSError)):
        decode_within(codec, data[: len(data) // 2], 1_000_000)


def test_a_zstd_frame_without_a_size_is_refused():
    frame = b"\x28\xb5\x2f\xfd" + bytes([0x00, 0x58]) + b"\x01\x00\x00"  # no content size
    with pytest.raises(CorruptedDataError, match="does not announce"):
        decode_within(numcodecs.Zstd(), frame, 1000)


def test_concatenated_zstd_frames_count_together():
    small, large = numcodecs.Zstd().encode(bytes(1000)), zstd_bomb(4 * RLE_BLOCK)
    assert announced_size("zstd", small + small) == 2000
    assert len(decode_within(numcodecs.Zstd(), small + small, 2000)) == 2000
    with pytest.raises(CorruptedDataError, match="announces"):
        decode_within(numcodecs.Zstd(), small + large, 10_000)


def test_skippable_frames_do_not_hide_a_frame_without_a_size():
    skippable = (0x184D2A50).to_bytes(4, "little") + (4).to_bytes(4, "little") + b"skip"
    unsized = (
        b"\x28\xb5\x2f\xfd"
        + bytes([0x00, 0x58])
        + (1 | 1 << 1 | 100_000 << 3).to_bytes(3, "little")
        + b"\x00"
    )
    assert len(numcodecs.Zstd().decode(skippable + unsized)) == 100_000  # what a reader does
    with pytest.raises(CorruptedDataError, match="does not announce"):
        decode_within(numcodecs.Zstd(), skippable + unsized, 1000)
    data = numcodecs.Zstd().encode(bytes(1000))
    assert announced_size("zstd", data + skippable) == 1000


@pytest.mark.parametrize("codec_id", ["zlib", "bz2", "lzma"])
def test_bytes_after_a_stream_are_not_dropped_silently(codec_id):
    codec = numcodecs.get_codec({"id": codec_id})
    data = codec.encode(bytes(100))
    with pytest.raises(CorruptedDataError, match="after the end"):
        decode_within(codec, data + data, 10_000)


@pytest.mark.parametrize("codec_id", ["vlen-utf8", "vlen-bytes"])
def test_a_vlen_header_claiming_many_items_is_refused(codec_id):
    codec = numcodecs.get_codec({"id": codec_id})
    bomb = (2**31 - 1).to_bytes(4, "little") + bytes(16)  # 16 GiB of references
    with pytest.raises(CorruptedDataError, match="announces"):
        decode_within(codec, bomb, 1_000_000)
    items = ["a", "bc"] if codec_id == "vlen-utf8" else [b"a", b"bc"]
    data = codec.encode(numpy.array(items, dtype=object))
    assert announced_size(codec_id, data) == 16
    assert decode_within(codec, data, 16).tolist() == items


@pytest.mark.parametrize("dtype, shape", [("O", [2**31]), ("V2000000000", [1]), ("<U40", 2**30)])
def test_a_msgpack_header_declaring_a_huge_array_is_refused(dtype, shape):
    bomb = msgpack.packb(["a", dtype, shape])
    with pytest.raises(CorruptedDataError, match="announces"):
        decode_within(numcodecs.MsgPack(), bomb, 1_000_000)


def test_msgpack_arrays_decode_as_numcodecs_does():
    codec = numcodecs.MsgPack()
    for arr in (numpy.array(["a", "bc"], dtype=object), numpy.array(["x", "yz"], dtype="U2")):
        data = codec.encode(arr)
        ours, theirs = decode_within(codec, data, 10_000), codec.decode(data)
        assert ours.dtype == theirs.dtype and ours.tolist() == theirs.tolist()
