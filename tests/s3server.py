"""A real S3 server for the tests: moto's standalone server in a subprocess.

The `s3_server` session fixture starts ``python -m moto.server`` on a free port of
127.0.0.1 the first time a test needs it, points boto3 at dummy credentials (and away
from the user's ~/.aws files) for the rest of the session, and stops the server at the
end. `FaultProxy` sits between boto3 and the server to make requests fail on purpose.
`S3_REPO_FACTORIES` adds the storage kinds ``s3``, ``memory+s3`` and ``file+s3`` to the
`repo` fixture of conftest.py.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import boto3
import pytest

from lakota import Repo

# What boto3 sees for the whole test session: dummy credentials, no user config files,
# no instance metadata lookups, and no HTTP proxy between it and 127.0.0.1.
TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "lakota-test-key-id",
    "AWS_SECRET_ACCESS_KEY": "lakota-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
CLEARED_VARIABLES = [
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
]
START_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    """True once an HTTP server answers at `url` (any status), bypassing proxies."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        opener.open(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@dataclass
class S3Server:
    """A running moto server, with helpers to make buckets and URIs on it."""

    endpoint: str
    process: subprocess.Popen
    netloc: str = field(init=False)

    def __post_init__(self) -> None:
        self.netloc = self.endpoint.removeprefix("http://")

    @cached_property
    def client(self) -> Any:
        """A boto3 client straight on the server, to prepare or inspect buckets."""
        return boto3.session.Session().client("s3", endpoint_url=self.endpoint)

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique one by default) and return its name."""
        name = name or f"lakota-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        return name

    def drop_bucket(self, name: str) -> None:
        """Delete a bucket and everything in it."""
        client = self.client
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys})
        client.delete_bucket(Bucket=name)

    def uri(self, bucket: str, endpoint: str | None = None) -> str:
        """``s3://host:port/bucket`` on this server (or on `endpoint`, a proxy)."""
        netloc = endpoint.removeprefix("http://") if endpoint else self.netloc
        return f"s3://{netloc}/{bucket}"


def start_moto(port: int, log: IO[bytes], *options: str) -> subprocess.Popen:
    """moto's server in a subprocess; its request log goes to `log` (a pipe would fill up).
    `options` go to moto's command line (``--ssl`` for https)."""
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port), *options]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def wait_until_up(process: subprocess.Popen, endpoint: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not answers(f"{endpoint}/moto-api/"):
        if process.poll() is not None:
            log.seek(0)
            errors = log.read().decode(errors="replace")
            raise RuntimeError(f"moto server exited with {process.returncode}: {errors[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"moto server did not answer at {endpoint} in {START_TIMEOUT}s")
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    """Terminate a server subprocess (kill it if it does not exit within 10 s)."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1, with dummy credentials in the environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name in CLEARED_VARIABLES:
            patch.delenv(name, raising=False)
        for name, value in TEST_ENVIRONMENT.items():
            patch.setenv(name, value)
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryFile() as log:
            process = start_moto(port, log)
            try:
                wait_until_up(process, endpoint, log)
                yield S3Server(endpoint, process)
            finally:
                stop(process)


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A fresh, empty bucket, deleted after the test."""
    name = s3_server.create_bucket()
    yield name
    s3_server.drop_bucket(name)


# --- a proxy that injects faults between boto3 and the server -------------------------------

# A rule sees (method, path with query, headers, how many times this exact request was
# seen before) and names a fault, or None to forward the request untouched.
Rule = Callable[[str, str, dict, int], "str | None"]

ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "error": (500, "InternalError", "We encountered an internal error. Please try again."),
    "deny": (403, "AccessDenied", "Access Denied"),
    "unsupported": (501, "NotImplemented", "A header you provided is not implemented."),
}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}


class FaultProxy(ThreadingHTTPServer):
    """An HTTP proxy on 127.0.0.1 (a free `port` by default) to `upstream` that applies
    `rule` to every request (tests/test_s3_faults.py)."""

    daemon_threads = True

    def __init__(self, upstream: str, rule: Rule, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _ProxyHandler)
        self.upstream = upstream.removeprefix("http://")
        self.rule = rule
        self.seen: Counter = Counter()
        self.faults: Counter = Counter()
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> FaultProxy:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def decide(self, method: str, path: str, headers: dict) -> str | None:
        with self.lock:  # one request at a time, in arrival order
            nth = self.seen[(method, path)]
            self.seen[(method, path)] += 1
            fault = self.rule(method, path, headers, nth)
            if fault:
                self.faults[fault] += 1
            return fault

    def forward(self, method: str, path: str, headers: dict, body: bytes) -> tuple:
        connection = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.getheaders(), answer.read()
        finally:
            connection.close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def handle_request(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            raise NotImplementedError("The fault proxy only forwards sized request bodies")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        fault = self.server.decide(self.command, self.path, headers)
        if fault == "drop":  # the connection dies before the server sees the request
            self.close_connection = True
            return
        if fault in ERRORS:
            self.send_error_answer(*ERRORS[fault])
            return
        status, answer_headers, data = self.server.forward(self.command, self.path, headers, body)
        if fault == "drop-after" or (fault == "cut-body" and len(data) < 2):
            # the server acted, but its answer is lost
            self.close_connection = True
            return
        self.send_response_only(status)
        for name, value in answer_headers:
            if name.lower() not in HOP_BY_HOP | {"content-length"}:
                self.send_header(name, value)
        length = answer_headers_length(answer_headers) if self.command == "HEAD" else len(data)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if fault == "cut-body":  # half the body (if any), then the connection dies
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
        elif self.command != "HEAD":
            self.wfile.write(data)

    def send_error_answer(self, status: int, code: str, message: str) -> None:
        payload = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>{message}</Message><RequestId>fault</RequestId></Error>"
        ).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload if self.command != "HEAD" else b"")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_request

    def log_message(self, *args: object) -> None:
        pass


def answer_headers_length(headers: list[tuple[str, str]]) -> int:
    return int(next((v for k, v in headers if k.lower() == "content-length"), "0"))


# --- storage kinds for conftest.REPO_FACTORIES -------------------------------------------

Opener = Callable[[], Repo]


def _bucket_uri(request: pytest.FixtureRequest) -> str:
    server: S3Server = request.getfixturevalue("s3_server")
    return server.uri(request.getfixturevalue("s3_bucket"))


def s3_repo(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """A bucket of the moto server, opened by its ``s3://127.0.0.1:PORT/bucket`` URI."""
    uri = _bucket_uri(request)
    return lambda: Repo(uri)


def memory_s3_repo(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """The bucket behind a memory cache; each opened Repo has its own, like a process."""
    uri = _bucket_uri(request)
    return lambda: Repo(["memory://", uri])


def file_s3_repo(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """The bucket behind a cache folder that every opened Repo shares."""
    uri = _bucket_uri(request)
    return lambda: Repo([f"file://{tmp_path}/cache", uri])


S3_REPO_FACTORIES = {"s3": s3_repo, "memory+s3": memory_s3_repo, "file+s3": file_s3_repo}
