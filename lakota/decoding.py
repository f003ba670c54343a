"""Decoding bytes from elsewhere within a size budget, so that a small hostile file (a
"decompression bomb") cannot make a reader allocate gigabytes before its digest is checked.

>>> import numcodecs
>>> data = numcodecs.Zstd().encode(bytes(1000))
>>> announced_size("zstd", data)
1000
>>> len(decode_within(numcodecs.Zstd(), data, 1000))
1000
>>> decode_within(numcodecs.Zstd(), data, 999)
Traceback (most recent call last):
...
lakota.errors.CorruptedDataError: zstd data announces 1000 bytes where at most 999 are expected

Codecs whose header announces the decoded size (blosc, zstd, lz4, and the item count
of vlen-utf8 and vlen-bytes) are checked before decoding; stream compressors without
one (gzip, zlib, bz2, lzma) are decoded with a bounded output, and msgpack2 data is
checked for the shape it declares before its array is made. Other codecs never output
much more than they are given.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import math
import zlib
from collections.abc import Callable
from typing import Any

import msgpack
import numpy

from lakota.errors import CorruptedDataError

__all__ = ["announced_size", "decode_within"]

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SKIPPABLE_MAGIC = b"\x2a\x4d\x18"  # after a first byte of 0x50 to 0x5f
_BLOSC_HEADER = 16
_LZ4_HEADER = 4  # numcodecs' LZ4 prefixes the decoded size, little-endian
_VLEN_HEADER = 4  # numcodecs' VLenUTF8 and VLenBytes prefix the number of items
_REFERENCE_SIZE = 8  # bytes per item of an object array


def announced_size(codec_id: str, data: bytes) -> int | None:
    """The decoded size that the headers of `data` announce, None if they do not say
    (raises `CorruptedDataError` for zstd frames that do not tell)."""
    if codec_id == "blosc":
        return int.from_bytes(data[4:8], "little") if len(data) >= _BLOSC_HEADER else None
    if codec_id == "lz4":
        return int.from_bytes(data[:_LZ4_HEADER], "little") if len(data) >= _LZ4_HEADER else None
    if codec_id == "zstd":
        return _zstd_content_size(data)
    if codec_id in ("vlen-utf8", "vlen-bytes") and len(data) >= _VLEN_HEADER:
        # a count of items, for which the decoder allocates an array of references first
        return int.from_bytes(data[:_VLEN_HEADER], "little") * _REFERENCE_SIZE
    return None


def _zstd_content_size(data: bytes) -> int | None:
    """The sum of the Frame_Content_Size of every frame in `data` (zstd decoders, the one
    of numcodecs included, decode concatenated frames and skip skippable ones), walking
    the block headers of each frame to find the next (RFC 8878, section 3.1)."""
    if len(data) < 6 or not (data[:4] == _ZSTD_MAGIC or _skippable(data[:4])):
        return None  # not zstd: the decoder will say so
    total, pos = 0, 0
    while pos < len(data):
        magic = data[pos : pos + 4]
        if _skippable(magic):
            pos += 8 + int.from_bytes(data[pos + 4 : pos + 8], "little")
            continue
        if magic != _ZSTD_MAGIC:
            raise CorruptedDataError(f"unexpected bytes after a zstd frame (at {pos})")
        size, pos = _zstd_frame(data, pos)
        total += size
    return total


def _skippable(magic: bytes) -> bool:
    return len(magic) == 4 and magic[1:] == _SKIPPABLE_MAGIC and magic[0] & 0xF0 == 0x50


def _zstd_frame(data: bytes, pos: int) -> tuple[int, int]:
    """``(content size, end)`` of the zstd frame starting at `pos`."""
    descriptor = data[pos + 4] if len(data) > pos + 4 else 0
    size_flag, single_segment = descriptor >> 6, descriptor >> 5 & 1
    field_size = (1 if single_segment else 0, 2, 4, 8)[size_flag]
    if field_size == 0:
        raise CorruptedDataError("zstd frame does not announce its decoded size")
    start = pos + 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3]
    size = int.from_bytes(data[start : start + field_size], "little")
    size += 256 if field_size == 2 else 0
    pos = start + field_size
    while pos + 3 <= len(data):
        header = int.from_bytes(data[pos : pos + 3], "little")
        block_type, block_size = header >> 1 & 3, header >> 3
        if block_type == 3:
            raise CorruptedDataError("zstd block of the reserved type")
        pos += 3 + (1 if block_type == 1 else block_size)
        if header & 1:  # the last block
            return size, pos + (4 if descriptor & 4 else 0)  # and its checksum
    return size, len(data)  # truncated: the decoder will say so


def _gzip(data: bytes, most: int) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as stream:
        return stream.read(most)


def _stream(make: Callable[[], Any]) -> Callable[[bytes, int], bytes]:
    """A decoder that stops after `most` bytes, for decompressor objects of the stdlib."""

    def decode(data: bytes, most: int) -> bytes:
        decompressor = make()
        out = decompressor.decompress(data, most)
        if len(out) < most and not decompressor.eof:
            raise CorruptedDataError("compressed stream ends too soon")
        if decompressor.eof and decompressor.unused_data:
            raise CorruptedDataError("bytes after the end of the compressed stream")
        return out

    return decode


_BOUNDED: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gzip,
    "zlib": _stream(zlib.decompressobj),
    "bz2": _stream(bz2.BZ2Decompressor),
    "lzma": _stream(lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ)),
}


def _msgpack_array(codec: Any, data: bytes, limit: int) -> numpy.ndarray:
    """numcodecs' ``msgpack2`` decoding, refusing before it allocates an array whose
    shape and dtype (stored at the end of the data) take more than `limit` bytes."""
    items = msgpack.unpackb(data, raw=codec.raw)  # msgpack bounds lengths by len(data)
    shape, dtype = items[-1], numpy.dtype(items[-2])
    size = math.prod(shape if isinstance(shape, list) else [shape]) * dtype.itemsize
    if size > limit:
        raise CorruptedDataError(
            f"msgpack2 data announces {size} bytes where at most {limit} are expected"
        )
    out = numpy.empty(shape, dtype=dtype)
    out[:] = items[:-2]
    return out


def decode_within(codec: Any, data: bytes, limit: int) -> Any:
    """`codec.decode(data)`, refused with `CorruptedDataError` before it allocates more
    than `limit` bytes."""
    codec_id = codec.codec_id
    size = announced_size(codec_id, memoryview(data).cast("B"))
    if size is not None and size > limit:
        raise CorruptedDataError(
            f"{codec_id} data announces {size} bytes where at most {limit} are expected"
        )
    if codec_id == "msgpack2":
        return _msgpack_array(codec, data, limit)
    bounded = _BOUNDED.get(codec_id)
    if bounded is None:
        return codec.decode(data)
    out = bounded(bytes(data), limit + 1)
    if len(out) > limit:
        raise CorruptedDataError(f"{codec_id} data decodes to more than {limit} bytes")
    return out
