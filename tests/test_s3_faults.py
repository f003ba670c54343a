"""S3 under faults: a proxy between boto3 and the moto server answers 503 SlowDown or 500,
drops connections (before or after the server acted) or cuts bodies, for a seeded share
of the requests. Everything must still complete, or fail with a clear StorageError, and a
fresh Repo straight on the server must never find a revision pointing to missing data."""

from __future__ import annotations

import random
import re
import time
import traceback
from collections.abc import Callable, Iterator

import numpy
import pytest
from conftest import check_invariants
from s3server import FaultProxy, Rule, S3Server

import lakota.pod.s3
from lakota import POD, Repo, Schema
from lakota.errors import StorageError
from lakota.pod.s3 import S3POD
from lakota.utils import digest_path, settings


def seeded(share: float, faults: list[str], seed: int = 7) -> Rule:
    """Fault a `share` of the requests, drawn from a seeded generator in arrival order
    (the same requests on every run when the client sends them one at a time)."""
    draw = random.Random(seed)

    def rule(method: str, path: str, headers: dict, nth: int) -> str | None:
        return draw.choice(faults) if draw.random() < share else None

    return rule


def always(fault: str) -> Rule:
    return lambda method, path, headers, nth: fault


def first(method: str, fault: str) -> Rule:
    """`fault` on the first request of each path made with `method`."""
    return lambda verb, path, headers, nth: fault if verb == method and nth == 0 else None


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[Callable[[Rule], FaultProxy]]:
    """Start fault proxies in front of the moto server; all stop after the test."""
    started: list[FaultProxy] = []

    def start(rule: Rule) -> FaultProxy:
        started.append(FaultProxy(s3_server.endpoint, rule).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def few_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer retries, for tests where every attempt fails."""
    monkeypatch.setattr(lakota.pod.s3, "MAX_ATTEMPTS", 3)


SCHEMA = Schema(timestamp="int*", value="float")
DATA_KEY = re.compile(r"^/[^/]+/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{36}$")


def frame(seed: int, size: int = 200) -> dict:
    """Random values: too large to embed in the commit, so they go to a data file."""
    return {"timestamp": numpy.arange(size), "value": numpy.random.default_rng(seed).random(size)}


def assert_complete(repo: Repo) -> None:
    """Every revision of every collection references data that is stored."""
    repo.refresh()
    for clct in [repo.registry, *repo.search()]:
        for revision in clct.changelog.log():
            check_invariants(revision.commit(clct), repo.pod)


def values(repo: Repo, label: str, series: str) -> list[float]:
    return repo.collection(label).series(series).frame()["value"].tolist()


# --- transient faults: everything completes ----------------------------------------------


def test_flaky_server_writes_reads_push_and_pull(
    s3_server: S3Server, proxy: Callable[[Rule], FaultProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "threaded", False)  # requests in a reproducible order
    faults = ["slowdown", "error", "drop", "drop-after", "cut-body"]
    flaky = proxy(seeded(0.2, faults))
    origin, mirror = s3_server.create_bucket(), s3_server.create_bucket()
    repo = Repo(s3_server.uri(origin, flaky.endpoint))
    clct = repo.create_collection(SCHEMA, "prices")
    for pos in range(4):
        clct.series(f"s{pos}").write(frame(100 * pos))
    for pos in range(4):
        assert values(repo, "prices", f"s{pos}") == frame(100 * pos)["value"].tolist()

    # push to a second flaky bucket, pull back into memory
    remote = Repo(s3_server.uri(mirror, flaky.endpoint))
    repo.push(remote)
    local = Repo("memory://")
    local.pull(remote)
    assert values(local, "prices", "s3") == frame(300)["value"].tolist()
    assert set(flaky.faults) == set(faults) and sum(flaky.faults.values()) > 20

    for bucket in (origin, mirror):  # what landed on the server is complete
        fresh = Repo(s3_server.uri(bucket))
        assert_complete(fresh)
        assert values(fresh, "prices", "s1") == frame(100)["value"].tolist()


def test_a_download_cut_mid_body_is_retried(
    s3_server: S3Server, s3_bucket: str, proxy: Callable[[Rule], FaultProxy]
) -> None:
    cut_first_get = proxy(first("GET", "cut-body"))
    pod = POD.from_uri(s3_server.uri(s3_bucket, cut_first_get.endpoint))
    pod.write("k", b"0123456789" * 100)
    assert pod.read("k") == b"0123456789" * 100
    assert cut_first_get.faults == {"cut-body": 1}


def test_a_write_whose_answer_was_lost(
    s3_server: S3Server, s3_bucket: str, proxy: Callable[[Rule], FaultProxy]
) -> None:
    # The first PUT reaches the server but its answer is lost: the retry, conditional,
    # must not fail and the content is the one written.
    lossy = proxy(first("PUT", "drop-after"))
    pod = POD.from_uri(s3_server.uri(s3_bucket, lossy.endpoint))
    assert pod.write("k", b"payload") in (7, None)
    assert pod.read("k") == b"payload" and lossy.faults == {"drop-after": 1}


def test_services_without_conditional_puts(
    s3_server: S3Server, s3_bucket: str, proxy: Callable[[Rule], FaultProxy]
) -> None:
    def no_conditions(method: str, path: str, headers: dict, nth: int) -> str | None:
        return "unsupported" if "If-None-Match" in headers else None

    old_service = proxy(no_conditions)
    pod = POD.from_uri(s3_server.uri(s3_bucket, old_service.endpoint))
    assert pod.write("a", b"first") == 5
    assert pod.write("a", b"second") is None
    assert pod.cd("sub").write("b", b"B") == 1  # sub-PODs know it already
    assert old_service.faults == {"unsupported": 1}
    assert (pod.read("a"), pod.read("sub/b")) == (b"first", b"B")


# --- persistent faults: clear errors, nothing half-written ----------------------------------


def test_persistent_errors_are_reported(
    s3_server: S3Server, s3_bucket: str, proxy: Callable[[Rule], FaultProxy], few_attempts: None
) -> None:
    broken = proxy(always("error"))
    pod = POD.from_uri(s3_server.uri(s3_bucket, broken.endpoint))
    started = time.monotonic()
    expected = f"S3 read of s3://{s3_bucket}/x/y failed: InternalError"
    with pytest.raises(StorageError, match=expected):
        pod.read("x/y")
    assert broken.faults == {"error": 3}  # tried MAX_ATTEMPTS times
    assert time.monotonic() - started < 5
    down = proxy(always("drop"))
    pod = POD.from_uri(s3_server.uri(s3_bucket, down.endpoint))
    with pytest.raises(StorageError, match=f"S3 ls of s3://{s3_bucket}/ failed"):
        pod.ls()


def test_access_denied_names_bucket_and_operation(
    s3_server: S3Server, s3_bucket: str, proxy: Callable[[Rule], FaultProxy]
) -> None:
    secret = "do-not-print-me"
    denied = proxy(always("deny"))
    pod = POD.from_uri(f"{s3_server.uri(s3_bucket, denied.endpoint)}?key=K&secret={secret}")
    for action, operation in [(lambda: pod.write("a", b"x"), "write"), (pod.ls, "ls")]:
        with pytest.raises(StorageError) as info:
            action()
        pattern = rf"Access denied \((AccessDenied|403)\) for S3 {operation} "
        assert re.match(pattern, str(info.value))
        assert f"bucket {s3_bucket!r}" in str(info.value)
        assert secret not in "".join(traceback.format_exception(info.value))


@pytest.mark.parametrize("failing", ["data", "revision"])
def test_failed_writes_leave_no_dangling_revision(
    s3_server: S3Server,
    s3_bucket: str,
    proxy: Callable[[Rule], FaultProxy],
    few_attempts: None,
    failing: str,
) -> None:
    repo = Repo(s3_server.uri(s3_bucket))
    repo.create_collection(SCHEMA, "prices").series("s").write(frame(1))

    def fail_puts(method: str, path: str, headers: dict, nth: int) -> str | None:
        if method != "PUT":
            return None
        is_data = DATA_KEY.match(path.split("?")[0]) is not None
        return "error" if is_data == (failing == "data") else None

    broken = proxy(fail_puts)
    through = Repo(s3_server.uri(s3_bucket, broken.endpoint))
    with pytest.raises(StorageError, match="S3 write of"):
        through.collection("prices").series("s").write(frame(2))
    assert broken.faults["error"] >= 3
    fresh = Repo(s3_server.uri(s3_bucket))
    assert_complete(fresh)
    assert values(fresh, "prices", "s") == frame(1)["value"].tolist()


def test_fresh_reader_sees_every_referenced_file(s3_server: S3Server, s3_bucket: str) -> None:
    # The check used above does fail on a revision whose data file is missing.
    repo = Repo(s3_server.uri(s3_bucket))
    repo.create_collection(SCHEMA, "c").series("s").write(frame(3))
    digest = next(iter(repo.collection("c").digests()))
    S3POD(s3_bucket, endpoint_url=s3_server.endpoint).rm(digest_path(digest))
    with pytest.raises(AssertionError, match=digest):
        assert_complete(Repo(s3_server.uri(s3_bucket)))
