"""Code written for lakota 0.7.1 keeps working (issue 15), and where we differ on purpose.

Each numbered test matches an item of the issue; tests/test_interop.py runs the same
snippets (interop/compat.py) under lakota 0.7.1 and compares the outcomes.
"""

from __future__ import annotations

import errno

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st
from interop import compat

import lakota.changelog
from lakota import POD, Repo, Schema
from lakota.changelog import Revision
from lakota.errors import (
    CollectionNotFoundError,
    CorruptedDataError,
    FrameError,
    SchemaError,
    UnreadableRevisionError,
)
from lakota.pod import MemPOD
from lakota.schema import SchemaColumn
from lakota.utils import Pool, settings, timeit

# --- 1. codec pipes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, codecs, idx",
    [
        ("str|vlen-utf8|gzip", ("vlen-utf8", "gzip"), False),
        ("str* | vlen-utf8 gzip", ("vlen-utf8", "gzip"), True),
        ("str | zstd |gzip", ("zstd", "gzip"), False),
        ("str|vlen-utf8|", ("vlen-utf8",), False),
        ("str|zstd*", ("zstd",), True),
        ("int|", ("blosc",), False),
    ],
)
def test_1_codec_pipes(text: str, codecs: tuple, idx: bool) -> None:
    column = SchemaColumn.from_ui("c", text)
    assert (column.codec.codec_names, column.idx) == (codecs, idx)


@pytest.mark.parametrize("text", ["str || zstd", "str*|zstd", "float **", "int * extra"])
def test_1_runs_of_punctuation_stay_errors(text: str) -> None:
    with pytest.raises(SchemaError, match="Unexpected item"):
        SchemaColumn.from_ui("c", text)


def test_1_piped_codecs_write_and_read() -> None:
    clct = Repo().create_collection(Schema(key="int*", name="str|vlen-utf8|gzip"), "c")
    (clct / "s").write({"key": [1, 2], "name": ["a", "é"]})
    assert (clct / "s").frame()["name"].tolist() == ["a", "é"]
    assert clct.schema["name"].dumps()["codecs"] == ["vlen-utf8", "gzip"]


# --- 2. a missing collection is a ValueError too -----------------------------------------


def test_2_rename_of_a_missing_collection() -> None:
    repo = Repo()
    with pytest.raises(ValueError, match="missing") as info:
        repo.rename("missing", "other")
    assert isinstance(info.value, CollectionNotFoundError) and isinstance(info.value, KeyError)
    assert repo.ls() == []


def test_2_pull_of_a_missing_collection() -> None:
    remote = Repo()
    with pytest.raises(KeyError, match="missing") as info:
        Repo().pull(remote, "missing")
    assert isinstance(info.value, ValueError)


# --- 3. MemPOD("/") ---------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: MemPOD("/"), lambda: POD.from_uri("memory:///")])
def test_3_slash_is_the_root_of_a_memory_store(make) -> None:
    pod = make()
    assert pod.ls() == []
    pod.write("a/b", b"x")
    assert (pod.ls(), pod.cd("a").ls(), pod.read("a/b")) == (["a"], ["b"], b"x")
    assert MemPOD("/a", store=pod.store).read("b") == b"x"
    repo = Repo(pod=MemPOD("/"))
    (repo.create_collection(Schema(x="int*"), "c") / "s").write({"x": [1, 2]})
    assert (repo / "c" / "s").frame()["x"].tolist() == [1, 2]


# --- 4. floats into a datetime column ----------------------------------------------------


def write_read(schema: Schema, frame: dict) -> dict:
    series = Repo().create_collection(schema, "c") / "s"
    series.write(frame)
    return series.frame()


def test_4_floats_are_epoch_seconds() -> None:
    frame = write_read(
        Schema(timestamp="timestamp*", value="float"),
        {"timestamp": numpy.arange(0.0, 3.0), "value": [1.0, 2.0, 3.0]},
    )
    assert frame["timestamp"].tolist() == numpy.arange(3).astype("M8[s]").tolist()


@given(st.lists(st.integers(-(2**52), 2**52), min_size=1, max_size=20))
def test_4_whole_floats_cast_like_ints(counts: list[int]) -> None:
    for unit in ("s", "D", "ms"):
        column = SchemaColumn.from_ui("t", f"M8[{unit}]")
        as_float = column.cast(numpy.array(counts, dtype="f8"))
        assert as_float.tolist() == column.cast(numpy.array(counts, dtype="i8")).tolist()


@pytest.mark.parametrize(
    "values, match",
    [([1.5], "fractional"), ([0.0, numpy.inf], "range"), ([1e300], "range")],
)
def test_4_lossy_floats_are_refused(values: list, match: str) -> None:
    """0.7.1 truncates 1.5 s to 1 s and turns huge values into NaT: we refuse."""
    with pytest.raises(FrameError, match=match):
        SchemaColumn.from_ui("t", "timestamp").cast(numpy.array(values))


def test_4_nan_is_nat() -> None:
    cast = SchemaColumn.from_ui("t", "timestamp").cast(numpy.array([numpy.nan, 60.0]))
    assert numpy.isnat(cast[0]) and cast[1] == numpy.datetime64("1970-01-01T00:01:00")


# --- 5. datetimes into an int column -----------------------------------------------------


def test_5_datetimes_are_counts_of_their_unit() -> None:
    frame = write_read(
        Schema(key="int*", value="float"),
        {"key": numpy.array(["2020-01-01"], "M8[s]"), "value": [1.0]},
    )
    assert frame["key"].tolist() == [1577836800]
    column = SchemaColumn.from_ui("k", "int")
    assert column.cast(numpy.array(["2020-01-01"], "M8[D]")).tolist() == [18262]
    assert column.cast(numpy.array([90], "m8[s]")).tolist() == [90]
    assert SchemaColumn.from_ui("f", "float").cast(numpy.array([1], "M8[s]")).tolist() == [1.0]


@pytest.mark.parametrize(
    "definition, values, match",
    [
        ("int", numpy.array(["NaT"], "M8[s]"), "NaT"),
        ("i2", numpy.array(["2020-01-01"], "M8[s]"), "precision"),
        ("u8", numpy.array(["1960-01-01"], "M8[s]"), "precision"),
        ("bool", numpy.array(["2020-01-01"], "M8[s]"), "precision"),
    ],
)
def test_5_lossy_datetimes_are_refused(definition: str, values, match: str) -> None:
    with pytest.raises(FrameError, match=match):
        SchemaColumn.from_ui("k", definition).cast(values)


# --- 6. clone with a new index column ----------------------------------------------------


def test_6_clone_fills_a_new_index_column() -> None:
    found = compat.clone_with_extra_index({})
    assert found["revisions"] == 1 and found["labels"] == ["a", "b"]
    assert found["extra"] == {"a": [5, 5], "b": [5]}
    assert found["value"] == {"a": [1.0, 2.0], "b": [3.0]}
    assert found["ts"]["b"] == ["2020-01-03T00:00:00"]


def test_6_new_index_column_defaults_to_zero_and_can_be_queried() -> None:
    repo = Repo()
    src = repo.create_collection(Schema(ts="int*", value="float"), "src")
    (src / "a").write({"ts": [1, 2], "value": [1.0, 2.0]})
    dst = repo.create_collection(Schema(ts="int*", extra="int*", value="float"), "dst")
    src.clone(dst)
    assert (dst.commit().start["extra"].tolist(), dst.commit().stop["ts"].tolist()) == ([0], [2])
    assert (dst / "a").frame(start=(2, 0))["value"].tolist() == [2.0]


# --- 7. MemPOD keeps emptied folders ----------------------------------------------------


def test_7_emptied_folders_stay() -> None:
    pod = MemPOD()
    pod.write("ham/spam/key", b"x")
    pod.rm("ham/spam/key")
    assert (pod.ls("ham/spam"), pod.ls("ham"), pod.ls()) == ([], ["spam"], ["ham"])
    assert pod.isdir("ham/spam") and list(pod.walk()) == []
    with pytest.raises(OSError) as info:
        pod.rm("ham")  # it holds a folder
    assert info.value.errno == errno.ENOTEMPTY
    pod.rm("ham/spam")
    assert pod.ls("ham") == []
    pod.write("a/b", b"x")
    pod.mv("a/b", "c/b")
    assert (sorted(pod.ls()), pod.ls("a")) == (["a", "c", "ham"], [])
    pod.mv("c", "d/e")
    assert sorted(pod.ls()) == ["a", "d", "ham"] and pod.read("d/e/b") == b"x"
    pod.rm(".", recursive=True)
    assert pod.ls() == []


# --- 8. S3 ls of a missing prefix --------------------------------------------------------


def test_8_s3_missing_prefix_lists_empty(s3_server, s3_bucket: str) -> None:
    pod = POD.from_uri(s3_server.uri(s3_bucket))
    pod.write("a/b", b"x")
    assert (pod.ls("missing"), pod.ls("a/missing"), pod.ls("a")) == ([], [], ["b"])
    with pytest.raises(NotADirectoryError):
        pod.ls("a/b")  # a file is not an empty folder


# --- 9. defrag of overlapping writes -----------------------------------------------------


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(settings, "page_len", 100)
    return 100


def test_9_page_len_default() -> None:
    assert type(settings)().page_len == 100_000


def test_9_defrag_merges_overlapping_writes(small_pages: int) -> None:
    """Ten overlapping writes of a page each: one revision rewrites them (as in 0.7.1)."""
    clct = Repo().create_collection(Schema(ts="int*", value="float"), "c")
    series = clct / "s"
    half = small_pages // 2
    for i in range(10):
        keys = numpy.arange(i * half, i * half + small_pages)
        series.write({"ts": keys, "value": keys * 0.5})
    frame = series.frame()
    assert len(clct.commit()) == 10
    assert len(clct.defrag()) == 1
    assert clct.commit().length.tolist() == [100] * 5 + [50]
    assert series.frame() == frame
    assert clct.defrag() == []


def test_9_defrag_leaves_full_pages_alone(small_pages: int) -> None:
    clct = Repo().create_collection(Schema(ts="int*", value="float"), "c")
    keys = numpy.arange(10 * small_pages)
    (clct / "s").write({"ts": keys, "value": keys * 1.0})
    assert len(clct.commit()) == 10
    assert clct.defrag() == []


# --- 10. Schema.from_frame on pandas -----------------------------------------------------


def test_10_from_pandas_frame() -> None:
    pandas = pytest.importorskip("pandas")
    df = pandas.DataFrame(
        {"timestamp": pandas.date_range("2020-01-01", periods=3), "value": [1.0, 2.0, 3.0]}
    )
    schema = Schema.from_frame(df, ["timestamp"])
    assert [(n, schema[n].dt.kind, schema[n].idx) for n in schema] == [
        ("timestamp", "M", True),
        ("value", "f", False),
    ]
    with pytest.raises(SchemaError, match="'ts'"):
        Schema.from_frame(df, ["ts"])


# --- 11. Revision.from_path, digests, read -----------------------------------------------


def test_11_from_path_accepts_walked_paths_and_short_names() -> None:
    repo = Repo()
    clct = repo.create_collection(Schema(x="int*"), "c")
    (clct / "s").write({"x": [1, 2]})
    leaf = clct.changelog.leaf()
    walked = next(path for path in repo.pod.walk() if path.endswith(leaf.path))
    assert walked.count("/") == 3
    rev = Revision.from_path(clct.changelog, walked)
    assert (rev.path, rev.read()) == (leaf.path, leaf.read())
    short = Revision.from_path(clct.changelog, "0-abc.1f-def")
    assert (short.parent, short.child, short.epoch) == ("0-abc", "1f-def", "1f")
    assert tuple(short.digests) == ("abc", "def")
    with pytest.raises(ValueError, match="Not a revision"):
        Revision.from_path(clct.changelog, "a.b")


def test_11_unreadable_revision_is_a_runtime_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lakota.changelog, "_read_retries", (0, 0))
    clct = Repo().create_collection(Schema(x="int*"), "c")
    (clct / "s").write({"x": [1, 2]})
    path = clct.changelog.leaf().path
    clct.changelog.pod.write(path, b"not the payload", force=True)
    with pytest.raises(RuntimeError, match="Unable to read") as info:
        Revision.from_path(clct.changelog, path).read()
    assert isinstance(info.value, UnreadableRevisionError)
    assert isinstance(info.value, CorruptedDataError)


# --- the documented helpers --------------------------------------------------------------


@pytest.mark.parametrize("threaded", [True, False])
def test_pool_results_in_submission_order(monkeypatch: pytest.MonkeyPatch, threaded) -> None:
    monkeypatch.setattr(settings, "threaded", threaded)
    with Pool() as pool:
        for n in range(20):
            pool.submit(pow, n, exp=2)
    assert pool.results == [n * n for n in range(20)]
    with pytest.raises(ValueError, match="invalid literal"):
        with Pool() as pool:
            pool.submit(int, "1")
            pool.submit(int, "x")


def test_nested_pools() -> None:
    def inner(n: int) -> list:
        with Pool() as pool:
            for k in range(n):
                pool.submit(abs, -k)
        return pool.results

    with Pool() as pool:
        for n in range(4):
            pool.submit(inner, n)
    assert pool.results == [[], [0], [0, 1], [0, 1, 2]]


def test_timeit_prints_on_stderr(capsys: pytest.CaptureFixture) -> None:
    with timeit("load") as value:
        pass
    out, err = capsys.readouterr()
    assert value is None and out == ""
    title, duration = err.split()
    assert title == "load" and duration.endswith(("ns", "us", "ms", "s"))
    with pytest.raises(KeyError), timeit("fails"):
        raise KeyError(1)
    assert capsys.readouterr().err == ""


def test_commit_jitter_sleeps_first(monkeypatch: pytest.MonkeyPatch) -> None:
    naps: list[float] = []
    monkeypatch.setattr(lakota.changelog.time, "sleep", naps.append)
    clct = Repo().create_collection(Schema(x="int*"), "c")
    assert len(clct.changelog.commit(b"payload", _jitter=True)) == 1
    assert len(naps) == 1 and 0 <= naps[0] <= lakota.changelog._max_jitter
    clct.changelog.commit(b"other")
    assert len(naps) == 1
