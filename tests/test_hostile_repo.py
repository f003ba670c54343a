"""Repositories made elsewhere are untrusted: their schemas name only safe codecs, and
their data files cannot make a reader allocate more than the commit says they hold."""

from __future__ import annotations

import numcodecs
import numpy
import pytest

from lakota import Repo, Schema
from lakota import schema as schema_module
from lakota.errors import SchemaError
from lakota.schema import SAFE_CODECS, Codec, SchemaColumn


@pytest.mark.parametrize("text", ["O | pickle", "str* | pickle", "int | zstd pickle"])
def test_a_schema_refuses_the_pickle_codec(text):
    with pytest.raises(SchemaError, match="'pickle' is unknown or unsafe"):
        Schema(idx="int*", v=text)


@pytest.mark.parametrize(
    "name", ["pickle", "json2", "packbits", "no-such-codec", "astype", "delta", "os.system"]
)
def test_unknown_or_unsafe_codecs_are_schema_errors_naming_them(name):
    with pytest.raises(SchemaError, match=f"'{name}' is unknown or unsafe"):
        Codec("i8", name)


def test_a_codec_name_that_is_not_a_string_is_refused():
    with pytest.raises(SchemaError, match="not dict"):
        SchemaColumn("v", "i8", [{"id": "pickle"}])


def test_a_stored_schema_naming_pickle_is_refused():
    dump = {"kind": None, "columns": {"v": {"dt": "O", "codecs": ["pickle"], "idx": True}}}
    with pytest.raises(SchemaError, match="'pickle'"):
        Schema.loads(dump)


def test_numcodecs_is_never_asked_for_a_refused_codec(monkeypatch):
    asked = []
    monkeypatch.setattr(numcodecs, "get_codec", lambda config: asked.append(config))
    with pytest.raises(SchemaError):
        Codec("O", "msgpack2", "pickle")
    assert asked == []


@pytest.mark.parametrize("name", sorted(SAFE_CODECS - {"msgpack2", "vlen-utf8", "vlen-bytes"}))
def test_every_safe_byte_codec_round_trips_numbers(name):
    arr = numpy.arange(1000, dtype="i8")
    codec = Codec("i8", name)
    assert numpy.array_equal(codec.decode(codec.encode(arr)), arr)


@pytest.mark.parametrize("chain", [("msgpack2",), ("msgpack2", "lz4"), ("vlen-utf8", "gzip")])
def test_safe_object_codecs_round_trip_text(chain):
    arr = numpy.array(["a", "bc", "déf"], dtype=object)
    codec = Codec("O", *chain)
    assert list(codec.decode(codec.encode(arr))) == list(arr)


def test_a_hostile_repository_with_a_pickle_column_does_not_run_code(tmp_path, monkeypatch):
    """The schema of a collection is written with pickle allowed, as a hostile peer
    would; reading it back runs nothing and names the codec, even with a numcodecs that
    unpickles (as versions before 0.16.6 do)."""
    marker = tmp_path / "pwned"
    monkeypatch.setattr(numcodecs.pickles, "ALLOW_UNSAFE_PICKLE_DECODE", True, raising=False)

    class Exploit:
        def __reduce__(self):
            return (marker.write_text, ("code ran",))

    with monkeypatch.context() as patch:
        patch.setattr(schema_module, "SAFE_CODECS", SAFE_CODECS | {"pickle"})
        repo = Repo(str(tmp_path / "repo"))
        coll = repo.create_collection(Schema(idx="int*", v="O | pickle"), "evil")
        coll.series("s").write({"idx": [1], "v": numpy.array([Exploit()], dtype=object)})
    marker.unlink()  # the write decoded what it wrote, to check it reads back
    with pytest.raises(SchemaError, match="'pickle'"):
        Repo(str(tmp_path / "repo")).collection("evil").series("s").frame()
    assert not marker.exists()
