"""Storage backends: one contract run on every POD, then backend-specific behaviour."""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import re
import sys
import tempfile
import threading
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from limits import THREAD_SECONDS, join

import lakota.pod
from lakota.errors import LakotaError, UnsafePathError
from lakota.pod import POD, CachePOD, FilePOD, MemPOD
from lakota.pod.base import split_path
from lakota.pod.file import TMP_PREFIX

TREE = {"a": b"A", "b/c": b"BC", "b/d/e": b"BDE", "f/g/h/i": b"FGHI"}


def make_pod(kind: str, tmp_path: Path) -> POD:
    if kind == "memory":
        return MemPOD()
    if kind == "file":
        return FilePOD(tmp_path / "root")
    if kind == "memory+file":
        return CachePOD(MemPOD(), FilePOD(tmp_path / "remote"))
    return CachePOD(FilePOD(tmp_path / "local"), MemPOD())


@pytest.fixture(params=["memory", "file", "memory+file", "file+memory"])
def pod(request: pytest.FixtureRequest, tmp_path: Path) -> POD:
    return make_pod(request.param, tmp_path)


@pytest.fixture
def tree(pod: POD) -> POD:
    for path, data in TREE.items():
        pod.write(path, data)
    return pod


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TMP_PREFIX)]


# --- contract, on every backend ---------------------------------------------------------


def test_protocol(pod: POD, request: pytest.FixtureRequest) -> None:
    assert pod.protocol == request.node.callspec.params["pod"]


def test_write_then_read(pod: POD) -> None:
    assert pod.write("x/y/z", b"hello") == 5
    assert pod.read("x/y/z") == b"hello"
    assert pod.read("x/y/z", mode="r") == "hello"
    assert pod.write("t", "héllo", mode="w") == 6
    assert pod.read("t", mode="r") == "héllo"


def test_write_skips_existing_unless_forced(pod: POD) -> None:
    assert pod.write("k", b"first") == 5
    assert pod.write("k", b"second") is None
    assert pod.read("k") == b"first"
    assert pod.write("k", b"second!", force=True) == 7
    assert pod.read("k") == b"second!"


def test_write_accepts_bytes_like(pod: POD) -> None:
    assert pod.write("ba", bytearray(b"abc")) == 3
    assert pod.write("mv", memoryview(b"abcd")) == 4
    assert pod.read("ba") == b"abc"
    assert pod.read("mv") == b"abcd"
    with pytest.raises(TypeError):
        pod.write("s", "text in binary mode")


@pytest.mark.parametrize(
    "call", [lambda p: p.read("x", mode="rt"), lambda p: p.write("x", b"", mode="a")]
)
def test_unknown_modes(pod: POD, call: Callable[[POD], object]) -> None:
    with pytest.raises(ValueError, match="mode"):
        call(pod)


def test_read_missing(pod: POD) -> None:
    with pytest.raises(FileNotFoundError, match="nope/x"):
        pod.read("nope/x")


def test_ls(tree: POD) -> None:
    assert sorted(tree.ls()) == ["a", "b", "f"]
    assert sorted(tree.ls("b")) == ["c", "d"]
    assert sorted(tree.ls("b/")) == ["c", "d"]
    assert tree.ls("f/g/h") == ["i"]
    if tree.protocol == "s3":  # no folders on S3: a missing prefix lists empty, as in 0.7.1
        assert tree.ls("missing") == []
    else:
        with pytest.raises(FileNotFoundError, match="missing"):
            tree.ls("missing")
    assert tree.ls("missing", missing_ok=True) == []
    with pytest.raises(NotADirectoryError):
        tree.ls("a")


def test_isdir_isfile(tree: POD) -> None:
    assert [tree.isdir(p) for p in ("b", "b/d", "a", "b/c", "zz")] == [1, 1, 0, 0, 0]
    assert [tree.isfile(p) for p in ("b", "b/d", "a", "b/c", "zz")] == [0, 0, 1, 1, 0]


def test_write_conflicts_with_folders(tree: POD) -> None:
    with pytest.raises(IsADirectoryError):
        tree.write("b", b"x", force=True)
    with pytest.raises(OSError):
        tree.write("a/under_a_file", b"x")
    with pytest.raises(IsADirectoryError):
        tree.read("b")
    assert tree.read("a") == b"A"


def test_rm_file(tree: POD) -> None:
    tree.rm("b/c")
    assert not tree.isfile("b/c")
    assert sorted(tree.ls("b")) == ["d"]
    with pytest.raises(FileNotFoundError, match="b/c"):
        tree.rm("b/c")
    tree.rm("b/c", missing_ok=True)


def test_rm_folder(tree: POD) -> None:
    with pytest.raises(OSError):
        tree.rm("b")
    assert tree.read("b/d/e") == b"BDE"
    tree.rm("b", recursive=True)
    assert not tree.isdir("b")
    assert sorted(tree.walk()) == ["a", "f/g/h/i"]


def test_rm_many(tree: POD) -> None:
    tree.rm_many(["a", "b"], recursive=True)
    assert list(tree.walk()) == ["f/g/h/i"]
    with pytest.raises(FileNotFoundError):
        tree.rm_many(["a"])
    tree.rm_many(["a", "f"], recursive=True, missing_ok=True)
    assert list(tree.walk()) == []


def test_rm_everything(tree: POD) -> None:
    tree.rm(".", recursive=True)
    assert tree.ls(missing_ok=True) == []
    assert list(tree.walk()) == []


def test_mv_file_creates_parents(tree: POD) -> None:
    tree.mv("b/c", "new/deep/c2")
    assert tree.read("new/deep/c2") == b"BC"
    assert not tree.isfile("b/c")
    with pytest.raises(FileNotFoundError, match="b/c"):
        tree.mv("b/c", "elsewhere")
    tree.mv("b/c", "elsewhere", missing_ok=True)
    assert not tree.isfile("elsewhere")


def test_mv_folder(tree: POD) -> None:
    tree.mv("b", "x/b2")
    assert sorted(tree.walk()) == ["a", "f/g/h/i", "x/b2/c", "x/b2/d/e"]
    assert tree.read("x/b2/d/e") == b"BDE"


def test_mv_renames_data_file_like_gc(tree: POD) -> None:
    tree.write("ab/cd/" + "e" * 36, b"data")
    tree.mv("ab/cd/" + "e" * 36, "ab/cd/" + "e" * 36 + ".18a0b0c0d0e")
    assert tree.ls("ab/cd") == ["e" * 36 + ".18a0b0c0d0e"]


@pytest.mark.parametrize(
    "max_depth, expected",
    [
        (None, ["a", "b/c", "b/d/e", "f/g/h/i"]),
        (0, []),
        (1, ["a"]),
        (2, ["a", "b/c"]),
        (3, ["a", "b/c", "b/d/e"]),
        (4, ["a", "b/c", "b/d/e", "f/g/h/i"]),
    ],
)
def test_walk_depth(tree: POD, max_depth: int | None, expected: list[str]) -> None:
    assert sorted(tree.walk(max_depth=max_depth)) == expected


def test_walk_missing_root(pod: POD) -> None:
    assert list(pod.cd("nothing/here").walk()) == []


def test_cd(tree: POD) -> None:
    sub = tree.cd("b")
    assert sub.path.name == "b"
    assert sub.read("c") == b"BC"
    assert (tree / "b" / "d").read("e") == b"BDE"
    assert tree.cd("b", "d").ls() == ["e"]
    assert sorted(tree.cd("b/..").ls()) == ["a", "b", "f"]
    sub.write("new", b"N")
    assert tree.read("b/new") == b"N"
    assert sorted(sub.walk()) == ["c", "d/e", "new"]


def test_sub_pod_cannot_escape(tree: POD) -> None:
    sub = tree.cd("b")
    with pytest.raises(UnsafePathError):
        sub.read("../a")
    with pytest.raises(UnsafePathError):
        sub.cd("..")


def test_paths_are_normalised(pod: POD) -> None:
    pod.write("x/./y/../z", b"Z")
    assert pod.read("x/z") == b"Z"
    assert list(pod.walk()) == ["x/z"]


BAD_PATHS = ["..", "../x", "a/../../x", "/abs", "/", "//a", "a//b", "a\x00b"]
OPERATIONS = {
    "read": lambda p, bad: p.read(bad),
    "write": lambda p, bad: p.write(bad, b"x"),
    "ls": lambda p, bad: p.ls(bad, missing_ok=True),
    "rm": lambda p, bad: p.rm(bad, missing_ok=True),
    "mv-from": lambda p, bad: p.mv(bad, "ok", missing_ok=True),
    "mv-to": lambda p, bad: p.mv("a", bad),
    "isfile": lambda p, bad: p.isfile(bad),
    "isdir": lambda p, bad: p.isdir(bad),
    "cd": lambda p, bad: p.cd(bad),
    "div": lambda p, bad: p / bad,
}


@pytest.mark.parametrize("bad", BAD_PATHS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_unsafe_paths_are_rejected(tree: POD, operation: str, bad: str) -> None:
    with pytest.raises(UnsafePathError, match=re.escape(repr(bad))) as info:
        OPERATIONS[operation](tree, bad)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, LakotaError)
    assert tree.read("a") == b"A"


def test_every_operation_logs(pod: POD, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lakota")
    pod.write("a/b", b"x")
    pod.read("a/b")
    pod.ls("a")
    pod.mv("a/b", "a/c")
    list(pod.walk())
    pod.rm("a", recursive=True)
    actions = [r.getMessage().split()[0] for r in caplog.records if r.name == "lakota"]
    assert {"write", "read", "ls", "mv", "walk", "rm"} <= set(actions)


# --- path normalisation properties ------------------------------------------------------

segments = st.sampled_from(["a", "b", ".", "..", "", "~", "...", "c\x00", " "])
paths = st.one_of(st.lists(segments, max_size=8).map("/".join), st.text(max_size=16))


@given(paths)
def test_accepted_paths_stay_under_root(path: str) -> None:
    try:
        parts = split_path(path)
    except UnsafePathError:
        return
    assert all(part not in ("", ".", "..") and "/" not in part for part in parts)
    assert "\x00" not in "".join(parts)
    assert posixpath.normpath(posixpath.join("/root", path)) == posixpath.join("/root", *parts)


@given(paths)
def test_escaping_paths_are_rejected(path: str) -> None:
    resolved = posixpath.normpath(posixpath.join("/root", path))
    inside = resolved == "/root" or resolved.startswith("/root/")
    if "\x00" in path or not inside:
        with pytest.raises(UnsafePathError):
            split_path(path)


fs_paths = st.one_of(
    st.lists(segments.filter(lambda s: "\x00" not in s), max_size=6).map("/".join),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
)


@settings(max_examples=60, deadline=None)
@given(fs_paths)
def test_filepod_never_writes_outside_root(path: str) -> None:
    with tempfile.TemporaryDirectory() as outer:
        root = Path(outer, "root")
        try:
            FilePOD(root).write(path, b"x")
        except (UnsafePathError, OSError):
            pass
        created = list(Path(outer).rglob("*"))
        assert all(p == root or root in p.parents for p in created)


# --- POD.from_uri -----------------------------------------------------------------------


@pytest.mark.parametrize("uri", [None, "", ":memory:", "memory://"])
def test_from_uri_memory(uri: str | None) -> None:
    pod = POD.from_uri(uri)
    assert isinstance(pod, MemPOD)
    assert pod.path == PurePosixPath(".")
    assert pod.store.lru_size is None


def test_from_uri_memory_lru() -> None:
    assert POD.from_uri("memory://?lru_size=64").store.lru_size == 64
    assert POD.from_uri("memory://", lru_size=32).store.lru_size == 32
    for bad in ("memory://?lru_size=big", "memory://?lru_size=0", "memory://?size=1"):
        with pytest.raises(ValueError):
            POD.from_uri(bad)


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("some/local/path", Path("some/local/path")),
        ("/tmp/x", Path("/tmp/x")),
        ("~/x", Path.home() / "x"),
        (Path("rel/p"), Path("rel/p")),
        ("file://some/local/path", Path("some/local/path")),
        ("file:///tmp/local_cache", Path("/tmp/local_cache")),
        ("file:////abs", Path("/abs")),
        ("FILE:///tmp/up", Path("/tmp/up")),
        ("file://~/x", Path.home() / "x"),
    ],
)
def test_from_uri_file(uri: str, expected: Path) -> None:
    pod = POD.from_uri(uri)
    assert isinstance(pod, FilePOD)
    assert pod.path == expected


def test_from_uri_file_needs_a_path() -> None:
    with pytest.raises(ValueError, match="path"):
        POD.from_uri("file://")


def test_from_uri_chain(tmp_path: Path) -> None:
    assert isinstance(POD.from_uri([str(tmp_path)]), FilePOD)
    pod = POD.from_uri(["memory://", str(tmp_path)])
    assert isinstance(pod, CachePOD)
    assert (pod.protocol, pod.path) == ("memory+file", tmp_path)
    assert isinstance(pod.local, MemPOD)
    nested = POD.from_uri(("memory://", "memory://?lru_size=5", str(tmp_path)))
    assert nested.protocol == "memory+memory+file"
    assert isinstance(nested.remote, CachePOD)
    assert nested.remote.local.store.lru_size == 5
    with pytest.raises(ValueError, match="empty"):
        POD.from_uri([])


def test_from_uri_chain_kwargs_go_to_the_remote_end() -> None:
    pod = POD.from_uri(["memory://", "memory://"], lru_size=8)
    assert (pod.local.store.lru_size, pod.remote.store.lru_size) == (None, 8)


def test_from_uri_errors() -> None:
    with pytest.raises(NotImplementedError):
        POD.from_uri("ssh://host/path")
    with pytest.raises(ValueError, match='Protocol "ftp" not supported') as info:
        POD.from_uri("ftp://user:pw@host/x?secret=XYZ")
    assert "XYZ" not in str(info.value) and "pw" not in str(info.value)
    with pytest.raises(TypeError):
        POD.from_uri(42)


class FakeBackend:
    def __init__(self, *args: object, **kwargs: object) -> None:
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def fake_backends(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    classes = {}
    for module_name, class_name in [("lakota.pod.s3", "S3POD"), ("lakota.pod.http", "HttpPOD")]:
        module = types.ModuleType(module_name)
        classes[class_name] = type(class_name, (FakeBackend,), {})
        setattr(module, class_name, classes[class_name])
        monkeypatch.setitem(sys.modules, module_name, module)
    return classes


def test_from_uri_s3(fake_backends: dict[str, type]) -> None:
    uri = "s3://localhost:9000/bucket/some/prefix?profile=dev&verify=false&key=K&secret=a%2Bb+c&token=T"
    pod = POD.from_uri(uri)
    assert isinstance(pod, fake_backends["S3POD"])
    assert pod.args == (PurePosixPath("bucket/some/prefix"),)
    assert pod.kwargs == {
        "netloc": "localhost:9000",
        "profile": "dev",
        "verify": False,
        "key": "K",
        "secret": "a+b+c",
        "token": "T",
    }


def test_from_uri_s3_endpoint_keyword(fake_backends: dict[str, type]) -> None:
    pod = POD.from_uri("s3:///bucket", endpoint_url="http://minio:9000")
    assert pod.args == (PurePosixPath("bucket"),)
    assert pod.kwargs == {"netloc": None, "endpoint_url": "http://minio:9000"}


@pytest.mark.parametrize(
    "uri, error",
    [("s3://", ValueError), ("s3:///b?bogus=1", ValueError), ("s3:///b/../..", UnsafePathError)],
)
def test_from_uri_s3_invalid(fake_backends: dict[str, type], uri: str, error: type) -> None:
    with pytest.raises(error):
        POD.from_uri(uri)


def test_from_uri_http(fake_backends: dict[str, type]) -> None:
    pod = POD.from_uri("https://host:8080/base/?header-Authorization=Bearer%20tok&header-X-Key=1")
    assert isinstance(pod, fake_backends["HttpPOD"])
    assert pod.args == ("https://host:8080/base/",)
    assert pod.kwargs == {"headers": {"Authorization": "Bearer tok", "X-Key": "1"}}
    assert POD.from_uri("http://host").args == ("http://host/",)
    assert POD.from_uri("http://host").kwargs == {}
    with pytest.raises(ValueError, match="foo"):
        POD.from_uri("http://host/x?foo=1")


def test_from_uri_missing_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lakota.pod.s3", None)
    monkeypatch.setitem(sys.modules, "lakota.pod.http", None)
    with pytest.raises(ValueError, match=re.escape("pip install 'lakota[s3]'")):
        POD.from_uri("s3:///bucket")
    with pytest.raises(ImportError, match="requests"):
        POD.from_uri("http://host")
    assert not hasattr(lakota.pod, "S3POD")
    assert not hasattr(lakota.pod, "HttpPOD")


def test_lazy_backend_exports(fake_backends: dict[str, type]) -> None:
    assert lakota.pod.S3POD is fake_backends["S3POD"]
    assert lakota.pod.HttpPOD is fake_backends["HttpPOD"]
    with pytest.raises(AttributeError):
        lakota.pod.NoSuchPOD  # noqa: B018


def test_reprs(tmp_path: Path) -> None:
    assert repr(MemPOD("a/b")) == "MemPOD('a/b')"
    assert repr(MemPOD(lru_size=10)) == "MemPOD('.', lru_size=10)"
    assert repr(FilePOD(tmp_path)) == f"FilePOD({str(tmp_path)!r})"
    cache = CachePOD(MemPOD(), FilePOD(tmp_path))
    assert repr(cache) == f"CachePOD(local=MemPOD('.'), remote=FilePOD({str(tmp_path)!r}))"


# --- MemPOD -----------------------------------------------------------------------------


def test_memory_sub_pods_share_the_store() -> None:
    root = MemPOD()
    root.cd("x").write("y", b"Y")
    assert root.read("x/y") == b"Y"
    assert MemPOD("x", store=root.store).read("y") == b"Y"
    assert root.cd("x").store is root.store


def test_memory_lru_evicts_the_back_generation() -> None:
    pod = MemPOD(lru_size=10)
    pod.write("k/a", b"aaaa")  # front: 4 bytes
    pod.write("j/b", b"bbbb")  # front: 8 > 5, becomes the back
    pod.write("c", b"cccc")  # new front: 4 bytes
    assert pod.read("k/a") == b"aaaa"  # promoted: front 8 > 5, back (j/b) dropped
    assert pod.ls() == ["c", "k"]
    assert not pod.isfile("j/b") and not pod.isdir("j")
    with pytest.raises(FileNotFoundError):
        pod.read("j/b")
    assert (pod.read("c"), pod.read("k/a")) == (b"cccc", b"aaaa")


def test_memory_lru_overwrite_and_rm_track_size() -> None:
    pod = MemPOD(lru_size=100)
    pod.write("a", b"x" * 40)
    pod.write("a", b"x" * 10, force=True)
    pod.write("b", b"y" * 30)
    assert pod.store.front_size == 40
    pod.rm("b")
    assert pod.store.front_size == 10


@pytest.mark.parametrize("lru_size", [0, -1, "10"])
def test_memory_invalid_lru_size(lru_size: object) -> None:
    with pytest.raises(ValueError, match="lru_size"):
        MemPOD(lru_size=lru_size)


def test_memory_store_and_lru_size_conflict() -> None:
    with pytest.raises(ValueError, match="lru_size"):
        MemPOD(store=MemPOD().store, lru_size=4)


def test_memory_mv_onto_itself_or_inside_itself() -> None:
    pod = MemPOD()
    pod.write("d/f", b"F")
    pod.mv("d", "d")
    with pytest.raises(OSError):
        pod.mv("d", "d/sub")
    assert pod.read("d/f") == b"F"


def test_memory_concurrent_writes() -> None:
    pod = MemPOD()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: pod.write(f"{i % 7}/{i}", b"x" * i), range(200)))
    assert results == list(range(200))
    assert sorted(pod.walk(), key=lambda p: int(p.split("/")[1])) == [
        f"{i % 7}/{i}" for i in range(200)
    ]


def test_generic_scan_matches_backends(tree: POD) -> None:
    # The folder-by-folder scan of POD is what backends without their own use.
    for folder in [(), ("b",), ("b", "d"), ("missing",)]:
        assert POD._scan(tree, folder) == sorted(tree._scan(folder))


# --- CachePOD ---------------------------------------------------------------------------


@pytest.fixture
def cache() -> CachePOD:
    return CachePOD(MemPOD(), MemPOD())


def test_cache_read_fills_local(cache: CachePOD) -> None:
    cache.remote.write("x", b"remote")
    assert not cache.local.isfile("x")
    assert cache.read("x") == b"remote"
    assert cache.local.read("x") == b"remote"
    cache.remote.rm("x")
    assert cache.read("x") == b"remote"  # served by the cache


def test_cache_write_goes_to_both(cache: CachePOD) -> None:
    cache.local.write("x", b"old")
    assert cache.write("x", b"new") == 3  # the remote's result
    assert (cache.local.read("x"), cache.remote.read("x")) == (b"old", b"new")
    assert cache.write("x", b"newer") is None


def test_cache_listing_goes_to_remote(cache: CachePOD) -> None:
    cache.local.write("only-local/x", b"L")
    cache.remote.write("only-remote/y", b"R")
    assert cache.ls() == ["only-remote"]
    assert cache.isdir("only-remote") and not cache.isdir("only-local")
    assert cache.isfile("only-remote/y") and not cache.isfile("only-local/x")
    assert list(cache.walk()) == ["only-remote/y"]


def test_cache_rm_and_mv_on_both(cache: CachePOD) -> None:
    cache.write("a", b"A")
    cache.write("b", b"B")
    cache.mv("a", "moved/a")
    assert cache.local.read("moved/a") == cache.remote.read("moved/a") == b"A"
    cache.rm("moved", recursive=True)
    assert cache.local.ls() == cache.remote.ls() == ["b"]


def test_cache_local_errors_are_ignored(cache: CachePOD) -> None:
    cache.remote.write("remote-only", b"R")
    cache.mv("remote-only", "renamed")
    cache.rm("renamed")
    assert cache.remote.ls() == [] and cache.local.ls() == []


def test_cache_rm_cleans_stale_local_copy(cache: CachePOD) -> None:
    cache.local.write("stale", b"S")
    cache.rm("stale", missing_ok=True)
    assert not cache.local.isfile("stale")


def test_cache_cd_and_path(tmp_path: Path) -> None:
    cache = CachePOD(MemPOD(), FilePOD(tmp_path))
    sub = cache.cd("x")
    assert isinstance(sub, CachePOD)
    assert sub.path == tmp_path / "x"
    assert sub.local.path == PurePosixPath("x")


# --- FilePOD ----------------------------------------------------------------------------


def test_file_expands_user() -> None:
    assert FilePOD("~/repo").path == Path.home() / "repo"
    assert FilePOD(".").cd("~").path == Path("~")  # a folder named "~" is not expanded


def test_file_size(tmp_path: Path) -> None:
    pod = FilePOD(tmp_path / "r")
    assert pod.size == 0
    pod.write("a", b"12345")
    pod.write("b/c", b"123")
    assert pod.size == 8


def test_file_writes_leave_no_temp_files(tmp_path: Path) -> None:
    pod = FilePOD(tmp_path)
    pod.write("a/b", b"x")
    pod.write("a/b", b"y", force=True)
    pod.write("a/b", b"z")
    assert temp_files(tmp_path) == []
    assert sorted(os.listdir(tmp_path / "a")) == ["b"]


def test_file_temp_files_are_invisible(tmp_path: Path) -> None:
    pod = FilePOD(tmp_path)
    pod.write("a/b", b"x")
    (tmp_path / "a" / f"{TMP_PREFIX}crashed-writer").write_bytes(b"partial")
    (tmp_path / f"{TMP_PREFIX}other").write_bytes(b"partial")
    assert pod.ls("a") == ["b"]
    assert pod.ls() == ["a"]
    assert list(pod.walk()) == ["a/b"]
    assert pod.size == 1


def test_file_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pod = FilePOD(tmp_path)

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "disk on fire")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk on fire"):
        pod.write("a/b", b"x")
    assert not pod.isfile("a/b")
    assert temp_files(tmp_path) == []


def test_file_write_keeps_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        FilePOD(tmp_path).write("f", b"x")
    finally:
        os.umask(previous)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_file_reader_never_sees_a_partial_write(tmp_path: Path) -> None:
    pod = FilePOD(tmp_path)
    payloads = [bytes([i]) * 300_000 for i in range(1, 4)]
    pod.write("f", payloads[0])
    done = threading.Event()
    bad, reads = [], []

    def reader() -> None:
        while not done.is_set():
            data = pod.read("f")
            reads.append(1)
            if data not in payloads:
                bad.append(len(data))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(40):
            pod.write("f", payloads[i % 3], force=True)
    finally:
        done.set()
        join(thread)
    assert reads and bad == []


def test_file_concurrent_writers_of_one_path(tmp_path: Path) -> None:
    pod = FilePOD(tmp_path)
    payload = b"same content-addressed bytes" * 1000
    barrier = threading.Barrier(8, timeout=THREAD_SECONDS)

    def write(_: int) -> int | None:
        barrier.wait()
        return pod.write("ab/cd/ef", payload)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(write, range(8)))
    assert results.count(len(payload)) == 1
    assert results.count(None) == 7
    assert pod.read("ab/cd/ef") == payload
    assert temp_files(tmp_path) == []


def test_file_concurrent_forced_writes(tmp_path: Path) -> None:
    pod = FilePOD(tmp_path)
    payloads = [bytes([i]) * 50_000 for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda p: pod.write("f", p, force=True), payloads))
    assert results == [50_000] * 8
    assert pod.read("f") in payloads
    assert temp_files(tmp_path) == []


def test_file_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: object, dst: object) -> None:
        raise PermissionError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(os, "link", no_link)
    pod = FilePOD(tmp_path)
    assert pod.write("a", b"first") == 5
    assert pod.write("a", b"second") is None
    assert pod.read("a") == b"first"
    assert temp_files(tmp_path) == []


def test_file_link_errors_propagate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "no space left")

    monkeypatch.setattr(os, "link", full_disk)
    with pytest.raises(OSError, match="no space"):
        FilePOD(tmp_path).write("a", b"x")
    assert os.listdir(tmp_path) == []


def test_file_writes_fsync_only_when_the_setting_asks(tmp_path, monkeypatch):
    from lakota.utils import settings

    calls = []
    monkeypatch.setattr("os.fsync", lambda fd: calls.append(fd))
    pod = FilePOD(str(tmp_path))
    pod.write("a", b"1")  # the file, then its folder
    monkeypatch.setattr(settings, "fsync", False)
    pod.write("b", b"2")
    assert len(calls) == 2 and pod.read("b") == b"2"


def test_open_streams_what_read_returns(pod: POD) -> None:
    data = bytes(range(256)) * 1000
    pod.write("big/f", data)
    with pod.open("big/f") as stream:
        assert stream.read(10) == data[:10]
        assert stream.read() == data[10:]
    with pytest.raises(FileNotFoundError):
        pod.open("big/missing")
    with pytest.raises(UnsafePathError):
        pod.open("../outside")
