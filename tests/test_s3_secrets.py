"""S3 credentials given in a URI (``s3://KEY:SECRET@host:port/bucket`` or ``?key=&secret=``)
never show in a repr, a log record, an error message or the CLI's output; https
endpoints are reachable from the URI (``s3+https://``) and `settings.verify_ssl` applies."""

from __future__ import annotations

import logging
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from s3server import FaultProxy, S3Server, free_port, start_moto, stop

from lakota import POD, Repo
from lakota.errors import LakotaError
from lakota.pod import S3POD
from lakota.utils import settings

KEY, SECRET = "AKIDUSERINFO", "user/info+secret=value"
QUOTED = f"{KEY}:{quote(SECRET, safe='')}"


def leaks(text: str) -> list[str]:
    return [word for word in (SECRET, quote(SECRET, safe=""), "info+secret") if word in text]


def failure_texts(action) -> list[str]:
    with pytest.raises(LakotaError) as info:
        action()
    return [str(info.value), "".join(traceback.format_exception(info.value))]


def test_credentials_before_the_host_are_used(s3_server: S3Server, s3_bucket: str) -> None:
    pod = POD.from_uri(f"s3://{QUOTED}@{s3_server.netloc}/{s3_bucket}")
    sent = []
    pod.client.meta.events.register(
        "before-send.s3.*", lambda request, **_: sent.append(request.headers["Authorization"])
    )
    pod.write("k", b"v")
    assert pod.read("k") == b"v"
    assert f"Credential={KEY}/".encode() in sent[-1]
    assert pod.endpoint_url == s3_server.endpoint
    assert leaks(repr(pod)) == [] and leaks(repr(Repo(pod=pod))) == []


@pytest.mark.parametrize(
    "uri, message",
    [
        (f"s3://{KEY}@127.0.0.1:9/b", "KEY:SECRET@host"),
        (f"s3://{QUOTED}@127.0.0.1:9/b?key=other&secret=x", "once"),
        (f"s3+https:///b?key={KEY}", "needs an endpoint"),
    ],
)
def test_malformed_credentials_or_endpoints_are_refused_quietly(uri, message) -> None:
    with pytest.raises(ValueError, match=message) as info:
        POD.from_uri(uri)
    assert leaks(str(info.value)) == []


def test_no_error_path_shows_the_secret(
    s3_server: S3Server, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lakota")
    denied = FaultProxy(s3_server.endpoint, lambda *_: "deny").start()
    try:
        uris = [
            f"s3://{QUOTED}@{s3_server.netloc}/no-such-bucket/p",  # wrong bucket
            f"s3://{QUOTED}@127.0.0.1:{free_port()}/{s3_bucket}",  # connection refused
            f"s3://{QUOTED}@{denied.endpoint.removeprefix('http://')}/{s3_bucket}",  # denied
            f"s3+https://{QUOTED}@{s3_server.netloc}/{s3_bucket}",  # https to a plain server
            f"s3://{s3_server.netloc}/no-such-bucket?key={KEY}&secret={quote(SECRET, safe='')}",
        ]
        texts = []
        for uri in uris:
            pod = POD.from_uri(uri)
            pod.client.meta.config.retries["total_max_attempts"] = 1
            texts += [repr(pod), repr(POD.from_uri(["memory://", uri]))]
            texts += failure_texts(lambda pod=pod: pod.read("x"))
            texts += failure_texts(lambda pod=pod: pod.write("x", b"1"))
            texts += failure_texts(lambda pod=pod: pod.ls())
    finally:
        denied.stop()
    texts += [record.getMessage() for record in caplog.records]
    assert any("Access denied" in text for text in texts)
    assert any("does not exist" in text for text in texts)
    assert [text for text in texts if leaks(text)] == []


def test_the_cli_does_not_show_the_secret(s3_server: S3Server) -> None:
    for uri in (
        f"s3://{QUOTED}@{s3_server.netloc}/no-such-bucket",
        f"s3://{QUOTED}@127.0.0.1:{free_port()}/bucket",
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "lakota", "-vv", "-r", uri, "ls"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode != 0
        assert proc.stderr.strip()
        assert leaks(proc.stdout + proc.stderr) == [], proc.stderr


# --- https endpoints -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_netloc(s3_server: S3Server) -> Iterator[str]:
    """moto's server again, over https with a self-signed certificate."""
    port = free_port()
    unverified = ssl.create_default_context()
    unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=unverified)
    )
    with tempfile.TemporaryFile() as log:
        process = start_moto(port, log, "--ssl")
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    opener.open(f"https://127.0.0.1:{port}/moto-api/", timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        pytest.fail(f"moto over https did not start: {log.read()[-2000:]!r}")
                    time.sleep(0.1)
            yield f"127.0.0.1:{port}"
        finally:
            stop(process)


UNVERIFIED = pytest.mark.filterwarnings("ignore:Unverified HTTPS request")


@UNVERIFIED
def test_s3_https_uris_reach_https_endpoints(tls_netloc: str) -> None:
    pod = POD.from_uri(f"s3+https://{tls_netloc}/tls-bucket?verify=false")
    assert isinstance(pod, S3POD) and pod.endpoint_url == f"https://{tls_netloc}"
    pod.client.create_bucket(Bucket="tls-bucket")
    pod.write("k", b"over tls")
    assert pod.read("k") == b"over tls"


@UNVERIFIED
def test_certificates_are_verified_unless_settings_or_the_uri_say_not(
    tls_netloc: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"s3+https://{QUOTED}@{tls_netloc}/tls-verify"
    strict = POD.from_uri(uri)
    strict.client.meta.config.retries["total_max_attempts"] = 1
    texts = failure_texts(lambda: strict.ls())
    assert "SSL" in texts[0] or "certificate" in texts[0]
    assert [text for text in texts if leaks(text)] == []

    monkeypatch.setattr(settings, "verify_ssl", False)
    relaxed = POD.from_uri(uri)  # read when the client is made
    relaxed.client.create_bucket(Bucket="tls-verify")
    assert relaxed.ls() == []
    assert POD.from_uri(f"{uri}?verify=true").client.meta.endpoint_url.startswith("https://")


@pytest.mark.parametrize(
    "query, verify",
    [("", None), ("?verify=false", False), ("?verify=1", True), ("?verify=/ca.pem", "/ca.pem")],
)
def test_the_verify_option_of_a_uri(query: str, verify) -> None:
    pod = POD.from_uri(f"s3+https://127.0.0.1:9/b{query}")
    assert pod._client_args[2] == verify  # None: settings.verify_ssl when the client is made
