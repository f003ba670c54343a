"""Attacks on `lakota serve` and on its client HttpPOD (issue 14, docs/security.md).

Each test runs a real server subprocess on a free loopback port (`conftest.lakota_process`)
and tries what a hostile web page, client or server would. Faults in the network (a
connection dropped after the server answered, a server breaking the protocol) come from
`FaultyProxy`, a small HTTP proxy on 127.0.0.1 in front of a real server.
"""

from __future__ import annotations

import datetime
import http.client
import http.server
import ipaddress
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import free_port, lakota_process, lakota_server
from hypothesis import given
from hypothesis import strategies as st
from limits import join

from lakota import Repo, Schema
from lakota.errors import ProtocolError, StorageError
from lakota.pod.http import HttpPOD

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from lakota.server import (  # noqa: E402 (needs starlette)
    DEFAULT_MAX_BODY,
    Policy,
    base64_pieces,
    startup_warnings,
)

TOKEN = "t0ken"
SCHEMA = Schema(timestamp="timestamp*", value="float")


def request(
    url: str,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, bytes]:
    """One request with exactly these headers (``Host`` included when given)."""
    split = urlsplit(url)
    conn = http.client.HTTPConnection(split.hostname, split.port, timeout=10)
    headers = dict(headers or {})
    conn.putrequest(method, target, skip_host="Host" in headers, skip_accept_encoding=True)
    if body is not None and "Transfer-Encoding" not in headers:
        headers["Content-Length"] = str(len(body))
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders(body)
    response = conn.getresponse()
    try:
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("security") / "served"


@pytest.fixture
def folder(served: Path) -> Path:
    """The served folder, emptied for each test but for one file, ``keep/me``."""
    shutil.rmtree(served, ignore_errors=True)
    (served / "keep").mkdir(parents=True)
    (served / "keep" / "me").write_bytes(b"precious")
    return served


@pytest.fixture(scope="module")
def open_server(served: Path) -> Iterator[str]:
    """The most permissive server: no token and anonymous writes (its repository: /r)."""
    with lakota_server(f"r {served}", "--allow-anonymous-writes") as url:
        yield url


def tree(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


# --- 1. changes over GET/HEAD ------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    "target",
    [
        "/r/rm?path=&recursive=true",
        "/r/rm?path=keep/me",
        "/r/write?path=planted",
        "/r/mv?from_path=keep&to_path=moved",
    ],
)
def test_changes_refuse_get_and_head(
    open_server: str, folder: Path, method: str, target: str
) -> None:
    before = tree(folder)
    status, _ = request(open_server, method, target)
    assert status == 405
    assert tree(folder) == before == ["keep", "keep/me"]


def test_changes_over_post_still_work(open_server: str, folder: Path) -> None:
    assert request(open_server, "POST", "/r/write?path=new", body=b"data")[0] == 200
    assert request(open_server, "POST", "/r/mv?from_path=new&to_path=moved")[0] == 200
    assert request(open_server, "POST", "/r/rm?path=keep&recursive=true")[0] == 200
    assert tree(folder) == ["moved"]
    assert (folder / "moved").read_bytes() == b"data"


# --- 2. cross-site requests and DNS rebinding -------------------------------------------


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1"]
)
def test_foreign_origins_are_refused(open_server: str, folder: Path, origin: str) -> None:
    headers = {"Origin": origin, "Content-Type": "text/plain"}
    status, body = request(open_server, "POST", "/r/write?path=planted", headers, b"EVIL")
    assert status == 403 and b"Cross-origin" in body
    assert request(open_server, "GET", "/r/raw?path=keep/me", {"Origin": origin})[0] == 403
    assert tree(folder) == ["keep", "keep/me"]


def test_own_origin_is_accepted(open_server: str, folder: Path) -> None:
    headers = {"Origin": open_server, "Content-Type": "text/plain"}
    assert request(open_server, "POST", "/r/write?path=mine", headers, b"ok")[0] == 200
    assert (folder / "mine").read_bytes() == b"ok"


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example",
        "attacker.example:80",
        "127.0.0.1.attacker.example",
        "",
        "localhost@evil",
        "evil/x",
        "127.0.0.1:notaport",
    ],
)
def test_foreign_host_names_are_refused(open_server: str, folder: Path, host: str) -> None:
    status, body = request(open_server, "GET", "/r/raw?path=keep/me", {"Host": host})
    assert status == 400 and b"precious" not in body
    status, body = request(open_server, "POST", "/r/rm?path=keep&recursive=true", {"Host": host})
    assert status == 400
    assert tree(folder) == ["keep", "keep/me"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST:8080", "[::1]:1"])
def test_localhost_forms_are_accepted(open_server: str, folder: Path, host: str) -> None:
    assert request(open_server, "GET", "/r/raw?path=keep/me", {"Host": host}) == (200, b"precious")


def test_allowed_host_option(folder: Path) -> None:
    with lakota_server(f"r {folder}", "--allowed-host", "data.example") as url:
        assert request(url, "GET", "/r/raw?path=keep/me", {"Host": "data.example:8080"})[0] == 200
        assert request(url, "GET", "/r/raw?path=keep/me", {"Host": "other.example"})[0] == 400


def test_host_policy_of_addresses() -> None:
    local = Policy.bound_to("127.0.0.1")
    assert local.host_allowed("127.0.0.1:80") and local.host_allowed("[::1]")
    assert not local.host_allowed("10.1.2.3") and not local.host_allowed("box")
    everywhere = Policy.bound_to("0.0.0.0", ["box.lan"])  # a DNS name must be allowed
    assert everywhere.host_allowed("10.1.2.3:8080") and everywhere.host_allowed("[fe80::1]")
    assert everywhere.host_allowed("BOX.lan") and not everywhere.host_allowed("evil.example")
    assert Policy.bound_to("[::]").any_ip_host
    assert Policy.bound_to("Data.Example").host_allowed("data.example:1")


# --- 3. no token, no writes --------------------------------------------------------------


def test_without_token_the_server_is_read_only(folder: Path) -> None:
    with lakota_server(f"r {folder}") as url:
        assert request(url, "GET", "/r/raw?path=keep/me") == (200, b"precious")
        for target in (
            "/r/write?path=planted",
            "/r/rm?path=keep&recursive=true",
            "/r/mv?from_path=keep&to_path=x",
        ):
            status, body = request(url, "POST", target, body=b"EVIL")
            assert status == 403
            assert b"read-only" in body and b"--allow-anonymous-writes" in body
        repo = Repo(f"{url}/r")
        with pytest.raises(PermissionError, match="403"):
            repo.create_collection(SCHEMA, "refused")
    assert tree(folder) == ["keep", "keep/me"]


def test_a_token_holder_writes_and_nobody_else(folder: Path) -> None:
    with lakota_server(f"r {folder}", "--token", TOKEN) as url:
        repo = Repo(f"{url}/r?token={TOKEN}")
        repo.create_collection(SCHEMA, "temp").series("Paris").write(
            {"timestamp": ["2020-01-01"], "value": [1.5]}
        )
        assert (Repo(str(folder)) / "temp" / "Paris").frame()["value"].tolist() == [1.5]
        assert request(url, "POST", "/r/write?path=x", body=b"EVIL")[0] == 401
        with pytest.raises(PermissionError, match="401") as info:
            Repo(f"{url}/r?token=wrong-s3cr3t").ls()
        assert "wrong-s3cr3t" not in str(info.value) + repr(info.value.args)
        assert "s3cr3t" not in repr(HttpPOD(f"{url}/r", headers={"Authorization": "s3cr3t"}))
        bad = {"Authorization": "Bearer wrong"}
        assert request(url, "POST", "/r/write?path=x", bad, b"EVIL")[0] == 401
    assert not (folder / "x").exists()


def run_lakota(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LAKOTA_REPO", "LAKOTA_TOKEN")}
    return subprocess.run(
        [sys.executable, "-m", "lakota", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_serving_beyond_loopback_without_token_warns() -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the bind fails, after the warning
    run = run_lakota("serve", "r memory://", "-w", f"http://192.0.2.1:{free_port()}")
    assert (
        "Warning: listening on 192.0.2.1 without a token: anyone who reaches it may read"
        in run.stderr
    )
    assert run.returncode != 0


def test_startup_warnings() -> None:
    assert startup_warnings("127.0.0.1", Policy(), tls=False) == []
    assert startup_warnings("localhost", Policy(anonymous_writes=True), tls=False) == []
    assert "may write" in startup_warnings("0.0.0.0", Policy(anonymous_writes=True), False)[0]
    assert "in clear" in startup_warnings("::", Policy(token="t"), tls=False)[0]
    assert startup_warnings("box.lan", Policy(token="t"), tls=True) == []


def test_serve_help_states_the_defaults() -> None:
    text = " ".join(run_lakota("serve", "--help").stdout.split())
    assert "Without a token the server is read-only, unless --allow-anonymous-writes" in text
    assert "--allowed-host" in text and "--max-body-size" in text and "--certfile" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--token", "t", "--allow-anonymous-writes"], "make no sense with a token"),
        (["--read-only", "--allow-anonymous-writes"], "cannot allow anonymous writes"),
        (["--max-body-size", "lots"], "not a size"),
    ],
)
def test_contradictory_options_are_refused(args: list[str], message: str) -> None:
    run = run_lakota("serve", "r memory://", "-w", f"http://127.0.0.1:{free_port()}", *args)
    assert run.returncode in (1, 2) and message in run.stderr


# --- 4. memory ---------------------------------------------------------------------------


def test_bodies_past_the_limit_are_refused(folder: Path) -> None:
    with lakota_server(f"r {folder}", "--allow-anonymous-writes", "--max-body-size", "1K") as url:
        assert request(url, "POST", "/r/write?path=small", body=b"x" * 1024)[0] == 200
        status, body = request(url, "POST", "/r/write?path=big", body=b"x" * 1025)
        assert status == 413 and b"1024 bytes" in body
        chunked = {"Transfer-Encoding": "chunked"}
        payload = b"".join(b"100\r\n" + b"y" * 256 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
        assert request(url, "POST", "/r/write?path=chunked", chunked, payload)[0] == 413
    assert tree(folder) == ["keep", "keep/me", "small"]


def test_the_default_limit_refuses_a_huge_announced_body(open_server: str, folder: Path) -> None:
    split = urlsplit(open_server)
    conn = http.client.HTTPConnection(split.hostname, split.port, timeout=10)
    conn.putrequest("POST", "/r/write?path=huge")
    conn.putheader("Content-Length", str(DEFAULT_MAX_BODY + 1))
    conn.endheaders()  # the body never comes: the answer must not wait for it
    assert conn.getresponse().status == 413
    conn.close()
    assert not (folder / "huge").exists()


def peak_memory(pid: int) -> int:
    """The peak resident memory of a process, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


def test_reads_stream_large_files(folder: Path) -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc")
    size = 96 * 2**20
    data = os.urandom(2**20) * 96
    (folder / "large").write_bytes(data)
    with lakota_process(f"r {folder}") as (url, proc):
        assert request(url, "GET", "/r/raw?path=keep/me") == (200, b"precious")
        before = peak_memory(proc.pid)
        pod = HttpPOD(url + "/r")
        assert pod.read("large") == data
        status, body = request(url, "GET", "/r/read?path=large")
        assert status == 200 and len(body) > size * 4 // 3
        grown = peak_memory(proc.pid) - before
    assert grown < size // 3, f"the server grew by {grown >> 20} MiB to send {size >> 20} MiB"


@given(st.lists(st.binary(max_size=20), max_size=8))
def test_base64_pieces_join_into_the_base64_of_the_whole(chunks: list[bytes]) -> None:
    import base64

    joined = b"".join(base64_pieces(chunks))
    assert joined == base64.b64encode(b"".join(chunks))


# --- 5. TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost: ``(certfile, keyfile)``."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lakota test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certfile), str(keyfile)


@pytest.fixture(scope="module")
def tls_server(certificate: tuple[str, str]) -> Iterator[str]:
    certfile, keyfile = certificate
    args = ("r memory://", "--token", TOKEN, "--certfile", certfile, "--keyfile", keyfile)
    with lakota_process(*args, scheme="https") as (url, _):
        yield url


def test_https_with_the_servers_certificate(tls_server: str, certificate: tuple[str, str]) -> None:
    repo = Repo(f"{tls_server}/r?token={TOKEN}&cafile={certificate[0]}")
    repo.create_collection(SCHEMA, "tls").series("x").write(
        {"timestamp": ["2021-01-01"], "value": [2.5]}
    )
    pod = HttpPOD(
        f"{tls_server}/r", headers={"Authorization": f"Bearer {TOKEN}"}, cafile=certificate[0]
    )
    assert pod.ls() == repo.pod.ls() and "tls" in repo.ls()
    assert (repo / "tls" / "x").frame()["value"].tolist() == [2.5]


def test_https_certificates_are_verified(
    tls_server: str, certificate: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(StorageError, match="CERTIFICATE_VERIFY_FAILED"):
        Repo(f"{tls_server}/r?token={TOKEN}").ls()
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])  # the standard variable works too
    assert Repo(f"{tls_server}/r?token={TOKEN}").ls() in ([], ["tls"])


def test_a_missing_cafile_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Cannot load certificate authorities from .*nope.pem"):
        Repo(f"https://127.0.0.1:1/r?cafile={tmp_path}/nope.pem")


def test_plain_http_to_a_tls_server_gets_nothing(tls_server: str) -> None:
    plain = tls_server.replace("https://", "http://")
    with pytest.raises(StorageError):
        Repo(f"{plain}/r?token={TOKEN}").ls()


def test_https_needs_both_files(certificate: tuple[str, str]) -> None:
    port = free_port()
    run = run_lakota("serve", "r memory://", "-w", f"https://127.0.0.1:{port}")
    assert run.returncode == 1 and "--certfile and --keyfile" in run.stderr
    run = run_lakota(
        "serve",
        "r memory://",
        "-w",
        f"http://127.0.0.1:{port}",
        "--certfile",
        certificate[0],
        "--keyfile",
        certificate[1],
    )
    assert run.returncode == 1 and "need an https:// web URI" in run.stderr


# --- 6. robustness -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, method",
    [
        ("/r/write?path=" + "a/" * 1100 + "f", "POST"),
        ("/r/ls?path=" + "a/" * 1100, "GET"),
        ("/r/mv?from_path=keep&to_path=" + "b/" * 200 + "c", "POST"),
        ("/r/raw?path=" + "x" * 5000, "GET"),
    ],
)
def test_deep_or_long_paths_are_refused(
    open_server: str, folder: Path, target: str, method: str
) -> None:
    status, body = request(open_server, method, target, body=b"x" if method == "POST" else None)
    assert status == 400
    assert b"components" in body or b"characters" in body
    assert tree(folder) == ["keep", "keep/me"]
    assert request(open_server, "GET", "/r/raw?path=keep/me") == (200, b"precious")


class FaultyProxy(http.server.ThreadingHTTPServer):
    """An HTTP proxy on 127.0.0.1 in front of `target` that misbehaves on request.

    `drop` names actions whose next request is forwarded, answered by the server, and then
    left without an answer (the connection closes); `rewrite` replaces response headers.
    """

    daemon_threads = True

    def __init__(self, target: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.target = urlsplit(target)
        self.drop: set[str] = set()
        self.dropped: list[str] = []
        self.rewrite: dict[str, str] = {}
        self.body: bytes | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultyProxy

    def log_message(self, *args: object) -> None:
        pass

    def forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        proxy = self.server
        upstream = http.client.HTTPConnection(proxy.target.hostname, proxy.target.port, timeout=10)
        upstream.request(self.command, self.path, body=body, headers=dict(self.headers))
        response = upstream.getresponse()
        data = response.read()
        upstream.close()
        action = urlsplit(self.path).path.rsplit("/", 1)[-1]
        if action in proxy.drop:
            proxy.drop.discard(action)
            proxy.dropped.append(action)
            self.close_connection = True  # the server did it; the client never hears so
            return
        data = data if proxy.body is None else proxy.body
        self.send_response(response.status)
        skip = {"content-length", "transfer-encoding", "connection", "date", "server"}
        skip |= {name.lower() for name in proxy.rewrite}
        for name, value in response.getheaders():
            if name.lower() not in skip:
                self.send_header(name, value)
        for name, value in proxy.rewrite.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_HEAD = forward


@pytest.fixture
def proxy(open_server: str) -> Iterator[FaultyProxy]:
    server = FaultyProxy(open_server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        join(thread)


@pytest.mark.parametrize("header", ["²", "99999999999999999999", "abc", "-2", "", "4242"])
def test_malformed_errno_header_is_a_protocol_error(
    proxy: FaultyProxy, folder: Path, header: str
) -> None:
    pod = HttpPOD(proxy.url + "/r")
    proxy.rewrite["X-Lakota-Errno"] = header
    with pytest.raises(ProtocolError, match="X-Lakota-Errno") as info:
        pod.rm("keep")  # not empty: a 409
    assert isinstance(info.value, OSError)
    assert (folder / "keep" / "me").exists()


@pytest.mark.parametrize(
    "body, call",
    [
        (b"<html>", lambda pod: pod.ls()),
        (b'{"body": 3}', lambda pod: pod.ls()),
        (b"[]", lambda pod: list(pod.walk())),
        (b'{"body": true}', lambda pod: pod.write("w", b"x")),
    ],
)
def test_answers_breaking_the_protocol_are_protocol_errors(
    proxy: FaultyProxy, body: bytes, call
) -> None:
    proxy.body = body
    with pytest.raises(ProtocolError, match="answer"):
        call(HttpPOD(proxy.url + "/r"))


# --- 10. retried changes -----------------------------------------------------------------


def test_changes_survive_a_connection_dropped_after_the_server_acted(
    proxy: FaultyProxy, folder: Path
) -> None:
    pod = HttpPOD(proxy.url + "/r")
    assert pod.ls() == ["keep"]  # a kept-alive connection, as in real use
    proxy.drop.add("write")
    assert pod.write("ab/cd/0123", b"content") == len(b"content")
    proxy.drop.add("mv")
    pod.mv("ab/cd/0123", "ab/cd/0123.gc")
    proxy.drop.add("rm")
    pod.rm("keep", recursive=True)
    assert proxy.dropped == ["write", "mv", "rm"]
    assert tree(folder) == ["ab", "ab/cd", "ab/cd/0123.gc"]
    assert (folder / "ab/cd/0123.gc").read_bytes() == b"content"


def test_a_retried_write_does_not_claim_someone_elses_file(
    proxy: FaultyProxy, folder: Path
) -> None:
    pod = HttpPOD(proxy.url + "/r")
    pod.ls()
    (folder / "theirs").write_bytes(b"other")
    proxy.drop.add("write")
    assert pod.write("theirs", b"mine") is None  # it exists, and not with our bytes
    assert (folder / "theirs").read_bytes() == b"other"
    with pytest.raises(FileNotFoundError):
        pod.rm("never-there")  # not retried: the first attempt answered


def test_engine_writes_through_a_dropping_connection(proxy: FaultyProxy, folder: Path) -> None:
    repo = Repo(pod=HttpPOD(proxy.url + "/r"))
    clct = repo.create_collection(SCHEMA, "temp")
    for step in range(3):
        proxy.drop.add("write")
        clct.series("Paris").write({"timestamp": [f"2020-01-0{step + 1}"], "value": [step]})
    assert (Repo(str(folder)) / "temp" / "Paris").frame()["value"].tolist() == [0.0, 1.0, 2.0]
    assert len(proxy.dropped) == 3
