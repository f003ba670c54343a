"""S3POD against moto's S3 server (tests/s3server.py): the POD contract, S3 specifics,
URIs and credentials, the cache in front of S3, and the seed's S3 examples as written."""

from __future__ import annotations

import logging
import os
import re
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from s3server import FaultProxy, S3Server

# The POD contract of test_pod.py, run here on the S3 kinds of the `pod` fixture below.
# (test_write_conflicts_with_folders is left out: S3 has no folders to conflict with.)
from test_pod import (  # noqa: F401
    TREE,
    test_cd,
    test_every_operation_logs,
    test_generic_scan_matches_backends,
    test_isdir_isfile,
    test_ls,
    test_mv_file_creates_parents,
    test_mv_folder,
    test_mv_renames_data_file_like_gc,
    test_paths_are_normalised,
    test_protocol,
    test_read_missing,
    test_rm_everything,
    test_rm_file,
    test_rm_folder,
    test_rm_many,
    test_sub_pod_cannot_escape,
    test_walk_depth,
    test_walk_missing_root,
    test_write_accepts_bytes_like,
    test_write_skips_existing_unless_forced,
    test_write_then_read,
    tree,
)

import lakota.pod.s3
from lakota import POD, Repo, Schema
from lakota.errors import LakotaError, StorageError
from lakota.pod import CachePOD, FilePOD, MemPOD
from lakota.pod.s3 import MAX_ATTEMPTS, S3POD
from lakota.utils import settings as lakota_settings

KEY, SECRET, TOKEN = "AKIDLAKOTATEST", "s3cr3t/with+special=chars", "session-token-value"


@pytest.fixture(params=["s3"])  # CachePOD has its contract run in test_pod.py
def pod(s3_server: S3Server, s3_bucket: str) -> S3POD:
    return POD.from_uri(s3_server.uri(s3_bucket))


@pytest.fixture
def s3(pod: S3POD) -> S3POD:
    """A plain S3POD at the root of a fresh bucket."""
    return pod


def record_calls(pod: S3POD) -> list[str]:
    """The S3 operations the POD's client makes from now on (HeadObject, PutObject...)."""
    calls: list[str] = []
    pod.client.meta.events.register("before-call.s3", lambda model, **kw: calls.append(model.name))
    return calls


def record_headers(pod: S3POD) -> list[dict]:
    """The headers of the requests the POD's client sends from now on."""
    sent: list[dict] = []
    pod.client.meta.events.register(
        "before-send.s3", lambda request, **kw: sent.append(request.headers)
    )
    return sent


# --- S3 specifics ------------------------------------------------------------------------


def test_listings_and_deletes_span_pages(s3: S3POD, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small pages take the same path as S3's pages of 1,000 keys, with fewer requests.
    monkeypatch.setattr(lakota.pod.s3, "LIST_PAGE_SIZE", 4)
    monkeypatch.setattr(lakota.pod.s3, "DELETE_BATCH", 10)
    names = [f"{i:02d}" for i in range(23)]  # every third one a folder: both kinds paginate
    paths = [f"big/{n}/x" if i % 3 == 0 else f"big/{n}" for i, n in enumerate(names)]
    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(lambda p: s3.write(p, b"."), paths))
    s3.write("other", b"o")
    calls = record_calls(s3)
    assert sorted(s3.ls("big")) == names
    assert calls.count("ListObjectsV2") == 6
    assert sorted(s3.walk()) == sorted([*paths, "other"])
    shallow = [p for p in paths if p.count("/") == 1]
    assert sorted(s3.walk(max_depth=2)) == sorted([*shallow, "other"])
    calls.clear()
    s3.rm("big", recursive=True)
    assert calls.count("DeleteObjects") == 3  # 23 keys in batches of at most 10
    assert s3.ls() == ["other"]


key_names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/"),
    min_size=1,
    max_size=12,
).filter(lambda name: name not in (".", ".."))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(folder=key_names, name=key_names)
def test_any_key_name_round_trips(s3: S3POD, folder: str, name: str) -> None:
    # Spaces, "+", "%", "?", "#", unicode...: keys are URL-encoded on the way out and back
    path = f"{folder}/{name}"
    assert s3.write(path, name.encode()) == len(name.encode())
    assert (s3.ls(), s3.ls(folder), list(s3.walk())) == ([folder], [name], [path])
    assert s3.read(path) == name.encode() and s3.isfile(path)
    s3.rm(folder, recursive=True)
    assert s3.ls() == []


def test_rm_ignores_keys_that_only_share_a_prefix(s3: S3POD) -> None:
    s3.write("ab", b"file")
    s3.write("abc/d", b"other folder")
    s3.rm("ab")  # a file next to a folder with a longer name
    assert sorted(s3.walk()) == ["abc/d"]
    with pytest.raises(FileNotFoundError, match="ab"):
        s3.rm("ab")  # "abc/d" does not make "ab" an existing (non-empty) folder
    with pytest.raises(FileNotFoundError):
        s3.rm("ab", recursive=True)
    s3.write("x/y", b"Y")
    with pytest.raises(OSError) as info:
        s3.rm("x")
    assert "not empty" in str(info.value).lower()
    assert s3.read("x/y") == b"Y"


def test_isfile_and_existing_writes_never_download(s3: S3POD) -> None:
    s3.write("f", b"content")
    calls = record_calls(s3)
    assert s3.isfile("f") and not s3.isfile("missing")
    assert s3.write("f", b"other") is None
    assert calls == ["HeadObject"] * 3
    calls.clear()
    assert s3.write("g", b"new") == 3
    assert calls == ["HeadObject", "PutObject"]


def test_write_is_atomic_against_a_concurrent_writer(
    s3: S3POD, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.write("f", b"first")
    # Another writer creates the key between our HEAD and our PUT
    monkeypatch.setattr(S3POD, "_head", lambda self, key, operation="isfile": False)
    assert s3.write("f", b"second") is None
    assert s3.read("f") == b"first"
    assert s3.write("f", b"forced", force=True) == 6
    assert s3.read("f") == b"forced"


def test_concurrent_writers_of_one_key(s3: S3POD) -> None:
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: s3.write("ab/cd/ef", b"same bytes"), range(6)))
    assert results.count(10) >= 1 and results.count(10) + results.count(None) == 6
    assert s3.read("ab/cd/ef") == b"same bytes"


def test_folders_and_the_root(s3: S3POD) -> None:
    assert s3.ls() == [] and s3.isdir(".") and not s3.isfile(".")
    s3.write("d/f", b"F")
    with pytest.raises(IsADirectoryError, match="d"):
        s3.read("d")
    with pytest.raises(IsADirectoryError):
        s3.write(".", b"x")
    with pytest.raises(NotADirectoryError, match="d/f"):
        s3.ls("d/f")
    with pytest.raises(OSError):
        s3.rm(".")  # not empty
    s3.mv("d", "d")
    with pytest.raises(OSError):
        s3.mv("d", "d/inside")
    assert s3.read("d/f") == b"F"


def test_folder_markers_and_odd_keys_are_skipped(s3_server: S3Server, s3: S3POD) -> None:
    client = s3_server.client
    for key in ["console-folder/", "console-folder/file", "a//b"]:
        client.put_object(Bucket=s3.bucket, Key=key, Body=b"k")
    assert s3.ls("console-folder") == ["file"]
    assert sorted(s3.walk()) == ["console-folder/file"]


def test_prefix_pods_are_isolated(s3_server: S3Server, s3_bucket: str) -> None:
    pod = POD.from_uri(f"{s3_server.uri(s3_bucket)}/some/prefix")
    sibling = POD.from_uri(f"{s3_server.uri(s3_bucket)}/some/prefix-2")
    pod.write("a/b", b"AB")
    sibling.write("a/b", b"other")
    assert (pod.bucket, pod.path.as_posix()) == (s3_bucket, f"{s3_bucket}/some/prefix")
    assert list(pod.walk()) == ["a/b"] and pod.ls() == ["a"]
    stored = s3_server.client.get_object(Bucket=s3_bucket, Key="some/prefix/a/b")
    assert stored["Body"].read() == b"AB"
    pod.rm(".", recursive=True)
    assert list(pod.walk()) == [] and sibling.read("a/b") == b"other"
    assert pod.cd("a").path.as_posix() == f"{s3_bucket}/some/prefix/a"


def test_sub_pods_share_the_client(s3: S3POD) -> None:
    assert s3.cd("x").client is s3.client and (s3 / "x" / "y").bucket == s3.bucket


def test_client_configuration(s3: S3POD) -> None:
    config = s3.client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
    assert config.max_pool_connections >= lakota_settings.max_threads
    assert config.s3 == {"addressing_style": "path"}


def test_repr_and_errors_name_the_bucket(s3_server: S3Server) -> None:
    pod = POD.from_uri(f"{s3_server.uri('no-such-bucket')}/pre")
    assert repr(pod) == f"S3POD('no-such-bucket/pre', endpoint_url='{s3_server.endpoint}')"
    for action, operation in [
        (lambda: pod.ls(missing_ok=True), "ls"),
        (lambda: pod.read("k"), "read"),
        (lambda: pod.write("k", b"x"), "write"),
        (lambda: list(pod.walk()), "walk"),
        (lambda: pod.rm("k", missing_ok=True), "rm"),
    ]:
        with pytest.raises(StorageError) as info:
            action()
        message = str(info.value)
        assert "'no-such-bucket' does not exist" in message and f"S3 {operation} " in message
        assert not isinstance(info.value, FileNotFoundError)  # never taken for "empty"


def test_missing_credentials(
    s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    pod = POD.from_uri(s3_server.uri(s3_bucket))
    with pytest.raises(StorageError, match=f"credentials for S3 read of s3://{s3_bucket}/k"):
        pod.read("k")


# --- URIs and credentials ----------------------------------------------------------------


def test_uri_forms(s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    POD.from_uri(s3_server.uri(s3_bucket)).write("k", b"v")
    endpoint, netloc = s3_server.endpoint, s3_server.netloc
    direct = [
        POD.from_uri(f"s3://{netloc}/{s3_bucket}"),
        POD.from_uri(f"s3://{netloc}/{s3_bucket}?verify=false"),
        POD.from_uri(f"s3:///{s3_bucket}", endpoint_url=endpoint),
        POD.from_uri(f"s3:///{s3_bucket}", endpoint_url=endpoint.replace("127.0.0.1", "localhost")),
        S3POD(s3_bucket, endpoint_url=endpoint),
    ]
    assert [pod.read("k") for pod in direct] == [b"v"] * len(direct)
    assert all(isinstance(pod, lakota.pod.S3POD) for pod in direct)
    for variable in ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]:
        with monkeypatch.context() as patch:  # boto3 reads these itself
            patch.setenv(variable, endpoint.replace("127.0.0.1", "localhost"))
            assert POD.from_uri(f"s3:///{s3_bucket}").read("k") == b"v"
    with pytest.raises(ValueError, match="once"):
        POD.from_uri(f"s3://{netloc}/{s3_bucket}", endpoint_url=endpoint)


def test_credentials_from_the_uri(s3_server: S3Server, s3_bucket: str) -> None:
    query = f"key={KEY}&secret={quote(SECRET, safe='')}&token={TOKEN}"
    pod = POD.from_uri(f"{s3_server.uri(s3_bucket)}?{query}")
    headers = record_headers(pod)
    pod.write("k", b"v")
    assert f"Credential={KEY}/" in headers[-1]["Authorization"].decode()
    assert headers[-1]["X-Amz-Security-Token"] == TOKEN.encode()


def test_credentials_from_a_profile(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile lakota-test]\naws_access_key_id = PROFILEKEY\naws_secret_access_key = x\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    pod = POD.from_uri(f"{s3_server.uri(s3_bucket)}?profile=lakota-test")
    headers = record_headers(pod)
    pod.write("k", b"v")
    assert "Credential=PROFILEKEY/" in headers[-1]["Authorization"].decode()
    with pytest.raises(ValueError, match="unknown-profile"):
        POD.from_uri(f"{s3_server.uri(s3_bucket)}?profile=unknown-profile")


def test_credentials_never_leak(s3_server: S3Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lakota")
    query = f"key={KEY}&secret={quote(SECRET, safe='')}&token={TOKEN}"
    uri = f"{s3_server.uri('missing-bucket')}/p?{query}"
    pod = POD.from_uri(uri)
    cache = POD.from_uri(["memory://", uri])
    texts = [repr(pod), repr(cache), repr(Repo(pod=pod))]
    for action in [lambda: pod.read("x"), lambda: cache.write("x", b"1"), lambda: pod.ls()]:
        with pytest.raises(LakotaError) as info:
            action()
        texts.append("".join(traceback.format_exception(info.value)))
    texts += [record.getMessage() for record in caplog.records]
    for secret in (KEY, SECRET, TOKEN):
        assert not any(secret in text for text in texts), secret


# --- cache in front of S3 ----------------------------------------------------------------

SCHEMA = Schema(timestamp="int*", value="float")


def big_frame(seed: int, size: int = 300) -> dict[str, Any]:
    """Random values: too large to embed in the commit, so they go to a data file."""
    return {"timestamp": numpy.arange(size), "value": numpy.random.default_rng(seed).random(size)}


def stored_values(repo: Repo, collection: str, series: str) -> list[float]:
    return repo.collection(collection).series(series).frame()["value"].tolist()


def test_cache_reads_fill_it_and_listings_stay_fresh(s3_server: S3Server, s3_bucket: str) -> None:
    uri = s3_server.uri(s3_bucket)
    writer = Repo(uri)
    writer.create_collection(SCHEMA, "prices").series("x").write(big_frame(0))
    local = MemPOD()
    cached = Repo(pod=CachePOD(local, POD.from_uri(uri)))
    assert cached.ls() == ["prices"]
    series = cached.collection("prices").series("x")
    assert series.frame()["value"].tolist() == big_frame(0)["value"].tolist()
    assert len([path for path in local.walk() if path.count("/") == 2]) == 1  # a data file
    assert sorted(local.walk()) == sorted(writer.pod.walk())  # the reads filled the cache

    # Another writer, straight on S3: seen through the cache after refresh()
    writer.collection("prices").series("x").write(big_frame(1000))
    writer.create_collection(SCHEMA, "volumes")
    cached.refresh()
    assert cached.ls() == ["prices", "volumes"]
    clct = cached.collection("prices")
    clct.refresh()
    assert clct.series("x").frame()["value"].tolist() == big_frame(1000)["value"].tolist()

    # Data already cached is served locally, even if S3 lost it
    data_files = [path for path in local.walk() if path.count("/") == 2]
    assert len(data_files) == 2
    for path in data_files:
        writer.pod.rm(path)
    assert stored_values(cached, "prices", "x") == big_frame(1000)["value"].tolist()


def test_cache_writes_go_to_both(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    uri = s3_server.uri(s3_bucket)
    cached = Repo([f"file://{tmp_path}/cache", uri])
    cached.create_collection(SCHEMA, "c").series("s").write(big_frame(5))
    remote_files = sorted(POD.from_uri(uri).walk())
    assert remote_files and sorted(FilePOD(tmp_path / "cache").walk()) == remote_files
    assert stored_values(Repo(uri), "c", "s") == big_frame(5)["value"].tolist()


# --- the seed's S3 section, as written ------------------------------------------------------


@pytest.fixture
def seed_buckets(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The seed's bucket names on the moto server, boto3 pointed at it by its own setting,
    and the seed's endpoint http://127.0.0.1:5300 forwarding to it (if that port is free;
    otherwise the test uses the server's own address)."""
    names = ["my_bucket", "bucket_name"]
    for name in names:
        s3_server.create_bucket(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    try:
        forward = FaultProxy(s3_server.endpoint, rule=lambda *request: None, port=5300).start()
    except OSError:
        yield s3_server.endpoint
    else:
        yield "http://127.0.0.1:5300"
        forward.stop()
    for name in names:
        s3_server.drop_bucket(name)


def test_seed_s3_examples(
    seed_buckets: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # From an S3 location
    repo = Repo('s3:///my_bucket')
    schema = Schema(timestamp='int*', value='float')
    repo.create_collection(schema, 'my_collection')
    (repo / 'my_collection').series('s').write(big_frame(7))
    # Use a list of uri to enable caching
    repo = Repo(['memory://', 's3:///my_bucket'])
    assert list(repo.ls()) == ['my_collection']
    repo = Repo([f'file://{tmp_path}/local_cache', 's3:///my_bucket'])
    assert stored_values(repo, 'my_collection', 's') == big_frame(7)['value'].tolist()

    # Special characters in KEY and SECRET must be escaped (for example
    # with urllib.parse.quote)
    pod = POD.from_uri('s3:///bucket_name?key=KEY&secret=SECRET')
    repo = Repo(pod=pod)
    repo.create_collection(schema, 'one', 'or_more', 'labels')

    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    if seed_buckets == 'http://127.0.0.1:5300':
        pod = POD.from_uri('s3:///bucket_name', endpoint_url='http://127.0.0.1:5300')
    else:
        pod = POD.from_uri('s3:///bucket_name', endpoint_url=seed_buckets)
    repo = Repo(pod=pod)
    assert list(repo.ls()) == ['labels', 'one', 'or_more']


# --- docs/s3.md ------------------------------------------------------------------------------

DOCS = Path(__file__).parent.parent / "docs" / "s3.md"


def test_docs_examples_run(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ```python block of docs/s3.md, in order, in one namespace, with the MinIO
    address of the examples pointing at the moto server."""
    text = DOCS.read_text()
    text = text.replace("127.0.0.1:9000", s3_server.netloc)
    text = text.replace("/tmp/lakota-cache", f"{tmp_path}/cache")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert len(blocks) == 3
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the examples set them
        monkeypatch.setenv(name, os.environ[name])
    namespace: dict = {"__name__": "__docs__"}
    try:
        for block in blocks:
            exec(compile(block, str(DOCS), "exec"), namespace)
    finally:
        s3_server.drop_bucket("my-bucket")
    assert sorted(FilePOD(tmp_path / "cache").walk())  # the cache was filled
