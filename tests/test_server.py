"""`lakota serve` (lakota/server.py) and its client HttpPOD (lakota/pod/http.py).

Servers run as real subprocesses on free loopback ports (`conftest.lakota_server`).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy
import pytest
from conftest import lakota_server
from limits import COMMAND_SECONDS
from test_pod import (  # the POD contract, run here on HttpPOD
    test_cd,
    test_isdir_isfile,
    test_ls,
    test_mv_file_creates_parents,
    test_mv_folder,
    test_mv_renames_data_file_like_gc,
    test_paths_are_normalised,
    test_read_missing,
    test_rm_everything,
    test_rm_file,
    test_rm_folder,
    test_rm_many,
    test_sub_pod_cannot_escape,
    test_unsafe_paths_are_rejected,
    test_walk_depth,
    test_walk_missing_root,
    test_write_accepts_bytes_like,
    test_write_conflicts_with_folders,
    test_write_skips_existing_unless_forced,
    test_write_then_read,
    tree,
)

from lakota import POD, Collection, Repo, Schema
from lakota.pod.http import HttpPOD
from lakota.utils import hextime

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

CONTRACT = [
    test_cd, test_isdir_isfile, test_ls, test_mv_file_creates_parents, test_mv_folder,
    test_mv_renames_data_file_like_gc, test_paths_are_normalised, test_read_missing,
    test_rm_everything, test_rm_file, test_rm_folder, test_rm_many, test_sub_pod_cannot_escape,
    test_unsafe_paths_are_rejected, test_walk_depth, test_walk_missing_root,
    test_write_accepts_bytes_like, test_write_conflicts_with_folders,
    test_write_skips_existing_unless_forced, test_write_then_read, tree,
]
TOKEN = "s3cr3t+/="
SCHEMA = Schema(timestamp="timestamp*", value="float")


@pytest.fixture
def pod(http_base_uri: str, tmp_path: Path) -> HttpPOD:
    """A fresh folder on the shared server (the `pod` of the imported contract tests)."""
    return HttpPOD(http_base_uri, path=tmp_path.name)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A served folder, with a secret file next to it that must stay out of reach."""
    folder = tmp_path_factory.mktemp("served")
    (folder / "secret").write_bytes(b"SECRET")
    (folder / "root").mkdir()
    return folder / "root"


@pytest.fixture(scope="module")
def guarded(root: Path) -> Iterator[str]:
    """Two repositories (memory and file) behind a token, under the base path /api."""
    with lakota_server("main memory://", f"files {root}", "--token", TOKEN, base="/api/") as url:
        yield url + "/api"


@pytest.fixture(scope="module")
def read_only(root: Path) -> Iterator[str]:
    with lakota_server(f"ro {root}", "--read-only") as url:
        yield url


def call(url: str, data: bytes | None = None, token: str | None = TOKEN,
         content_type: str | None = None) -> tuple[int, bytes]:
    """One raw request: ``(status, body)``; POST when there is data."""
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def write_two_days(clct: Collection, label: str = "Paris", value: float = 1.0) -> None:
    frame = {"timestamp": ["2020-01-01", "2020-01-02"], "value": [value] * 2}
    clct.series(label).write(frame)


# --- the engine through HTTP ---------------------------------------------------------------


def test_engine_operations_over_http(pod: HttpPOD) -> None:
    repo = Repo(pod=pod)
    clct = repo.create_collection(SCHEMA, "temperature")
    write_two_days(clct)
    with clct.multi():
        write_two_days(clct, "Rome", 5.0)
        write_two_days(clct, "Oslo", -5.0)
    assert repo.ls() == ["temperature"]
    assert clct.ls() == ["Oslo", "Paris", "Rome"]
    assert len(clct.changelog.log()) == 2
    assert (clct / "Rome").frame()["value"].tolist() == [5.0, 5.0]
    # two writers on the same leaf make a fork; merge joins it
    other = Repo(pod=pod.cd(".")) / "temperature"
    other.changelog.log()
    (clct / "Paris").write({"timestamp": ["2020-01-03"], "value": [3.0]})
    (other / "Paris").write({"timestamp": ["2020-01-04"], "value": [4.0]})
    clct.refresh()
    assert len(clct.changelog.leafs()) == 2
    assert clct.merge()
    assert (clct / "Paris").frame()["value"].tolist() == [1.0, 1.0, 3.0, 4.0]


def test_push_pull_and_gc_between_http_and_memory(pod: HttpPOD) -> None:
    http_repo = Repo(pod=pod)
    write_two_days(http_repo.create_collection(SCHEMA, "temperature"))
    mem = Repo("memory://")
    mem.pull(http_repo)
    assert (mem / "temperature" / "Paris").frame() == (http_repo / "temperature" / "Paris").frame()
    write_two_days(mem / "temperature", "Rome", 7.0)
    mem.push(http_repo)
    assert (http_repo / "temperature" / "Rome").frame()["value"].tolist() == [7.0, 7.0]
    (http_repo / "temperature").delete("Rome")
    big = {"timestamp": numpy.arange(300).astype("M8[s]"), "value": numpy.random.rand(300)}
    (http_repo / "temperature" / "Big").write(big)  # not embedded: real data files
    (http_repo / "temperature").delete("Big")
    (http_repo / "temperature").trim(before=hextime(time.time() + 1))  # forget Big
    hard, soft = http_repo.gc()
    assert hard == 0 and soft >= 1
    assert any(name.count(".") == 1 for name in pod.walk() if len(name.split("/")) == 3)
    assert http_repo.gc() == (0, 0)
    assert (http_repo / "temperature" / "Paris").frame()["value"].tolist() == [1.0, 1.0]


def test_large_files_come_back_exactly(pod: HttpPOD) -> None:
    data = os.urandom(3 * 2**20)
    assert pod.write("big/blob", data) == len(data)
    assert pod.read("big/blob") == data
    assert pod.read("big/blob") == data  # on the kept-alive connection


def test_requests_like_session_and_fallback_to_json_reads(http_base_uri: str, pod: HttpPOD) -> None:
    """A server without the `raw` action (lakota 0.7.1) still serves reads, in base64."""

    class Response:
        def __init__(self, status: int, headers: dict, content: bytes) -> None:
            self.status_code, self.headers, self.content = status, headers, content

    class OldServerSession:
        actions: list[str] = []

        def request(self, method: str, url: str, data: bytes | None, headers: dict,
                    timeout: float) -> Response:
            action = url.split("?")[0].rsplit("/", 1)[1]
            self.actions.append(action)
            if action == "raw":
                return Response(404, {}, b'Action "raw" not supported')
            req = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    return Response(resp.status, dict(resp.headers), resp.read())
            except urllib.error.HTTPError as exc:
                return Response(exc.code, dict(exc.headers), exc.read())

    session = OldServerSession()
    client = HttpPOD(http_base_uri, path=str(pod.path), session=session)
    client.write("x", b"\x00\xff payload")
    assert client.read("x") == b"\x00\xff payload"
    assert client.read("x") == b"\x00\xff payload"
    assert session.actions == ["write", "raw", "read", "read"]
    with pytest.raises(FileNotFoundError):
        client.read("missing")


def test_unreachable_server_is_a_clear_storage_error() -> None:
    from conftest import free_port

    from lakota.errors import StorageError

    with pytest.raises(StorageError, match="failed"):
        HttpPOD(f"http://127.0.0.1:{free_port()}/").ls()


def test_http_uri_parameters() -> None:
    pod = POD.from_uri(f"http://127.0.0.1:1/base?token={TOKEN.replace('+', '%2B')}")
    assert pod.transport.headers == {"Authorization": f"Bearer {TOKEN}"}
    assert pod.base_uri == "http://127.0.0.1:1/base/"
    with pytest.raises(ValueError, match="http"):
        HttpPOD("ftp://host/")


# --- protocol ----------------------------------------------------------------------------


def test_protocol_shapes(guarded: str) -> None:
    api = guarded + "/main"
    assert call(f"{api}/write?path=d/f&force=", b"abc") == (200, b'{"body":3}')
    assert call(f"{api}/write?path=d/f", b"other") == (200, b'{"body":null}')
    assert call(f"{api}/write?path=d/f&force=1", b"other") == (200, b'{"body":null}')
    assert json.loads(call(f"{api}/ls?path=d")[1]) == {"body": ["f"]}
    assert json.loads(call(f"{api}/ls")[1]) == {"body": ["d"]}
    status, body = call(f"{api}/read?path=d/f")
    assert json.loads(body) == {"body": base64.b64encode(b"abc").decode(), "b64encoded": True}
    assert call(f"{api}/raw?path=d/f") == (200, b"abc")
    assert call(f"{api}/write?path=d/f&force=TRUE", b"new") == (200, b'{"body":3}')
    assert json.loads(call(f"{api}/walk?max_depth=2")[1]) == {"body": ["d/f"]}
    assert json.loads(call(f"{api}/walk?path=d")[1]) == {"body": ["f"]}
    assert call(f"{api}/mv?from_path=d/f&to_path=e/g", b"") == (200, b'{"status":"ok"}')
    assert call(f"{api}/rm?path=e&recursive=true", b"") == (200, b'{"status":"ok"}')
    assert call(f"{api}/rm?path=e&missing_ok=true", b"") == (200, b'{"status":"ok"}')


def test_form_encoded_writes_keep_their_bytes(guarded: str) -> None:
    api = guarded + "/main"
    form = "application/x-www-form-urlencoded"
    assert call(f"{api}/write?path=form", b"a=1&b=2", content_type=form)[0] == 200
    assert call(f"{api}/raw?path=form") == (200, b"a=1&b=2")


@pytest.mark.parametrize(
    "query, status, text",
    [
        ("read?path=nope/x", 404, b'Path "nope/x" not found'),
        ("ls?path=nope", 404, b'Path "nope" not found'),
        ("rm?path=nope", 404, b'Path "nope" not found'),
        ("mv?from_path=nope&to_path=x", 404, b'Path "nope" not found'),
        ("frobnicate", 404, b'Action "frobnicate" not supported'),
        ("mv?from_path=x", 400, b'Missing parameter "to_path"'),
        ("read", 400, b'Missing parameter "path"'),
        ("walk?max_depth=deep", 400, b"max_depth"),
    ],
)
def test_error_statuses(guarded: str, query: str, status: int, text: bytes) -> None:
    data = b"" if query.startswith(("rm", "mv")) else None
    got_status, body = call(f"{guarded}/main/{query}", data)
    assert got_status == status
    assert text in body


def test_other_storage_errors_keep_their_errno(guarded: str) -> None:
    pod = HttpPOD(guarded + "/main", headers={"Authorization": f"Bearer {TOKEN}"})
    pod.write("full/x", b"x")
    with pytest.raises(OSError) as info:
        pod.rm("full")
    assert info.type is OSError and "not empty" in str(info.value).lower()
    with pytest.raises(NotADirectoryError):
        pod.ls("full/x")


# --- safety: token, read-only, traversal -------------------------------------------------


def test_token_is_required_on_every_request(guarded: str) -> None:
    host = guarded.rsplit("/api", 1)[0]
    for url in (host + "/", guarded + "/main/ls", guarded + "/main/nothing"):
        assert call(url, token=None)[0] == 401
        assert call(url, token="wrong")[0] == 401
    status, body = call(host + "/")
    assert status == 200
    assert b'<a href="/api/main">' in body and b'<a href="/api/files">' in body
    with pytest.raises(PermissionError, match="401"):
        Repo(guarded + "/main").ls()
    with pytest.raises(PermissionError, match="401"):
        Repo(guarded + "/main?token=wrong").ls()


def test_two_repositories_with_a_token(guarded: str, root: Path) -> None:
    token = TOKEN.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    files = Repo(f"{guarded}/files?token={token}")
    write_two_days(files.create_collection(SCHEMA, "temperature"))
    main = Repo(f"{guarded}/main?header-Authorization=Bearer%20{token}")
    assert "temperature" not in main.ls()
    assert Repo(str(root)).ls() == ["temperature"]  # on disk, in the served folder
    assert (Repo(str(root)) / "temperature" / "Paris").frame()["value"].tolist() == [1.0, 1.0]


def test_read_only_server(read_only: str, root: Path) -> None:
    Repo(str(root)).create_collection(SCHEMA, "readonly", raise_if_exists=False)
    repo = Repo(read_only + "/ro")
    assert "readonly" in repo.ls()
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    for query in ("write?path=x", "rm?path=00&recursive=true", "mv?from_path=00&to_path=zz"):
        status, body = call(f"{read_only}/ro/{query}", b"data", token=None)
        assert status == 403 and b"read-only" in body
    with pytest.raises(PermissionError, match="403"):
        repo.create_collection(SCHEMA, "refused")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


@pytest.mark.parametrize(
    "query",
    [
        "read?path=../secret",
        "raw?path=../secret",
        "raw?path=%2E%2E/secret",
        "raw?path=a/../../secret",
        "raw?path=/etc/passwd",
        "ls?path=..",
        "walk?path=..",
        "write?path=../evil",
        "mv?from_path=x&to_path=../evil",
        "mv?from_path=../secret&to_path=stolen",
        "rm?path=../secret",
    ],
)
def test_paths_leaving_the_repository_are_refused(guarded: str, root: Path, query: str) -> None:
    data = b"EVIL" if query.startswith(("write", "mv", "rm")) else None
    status, body = call(f"{guarded}/files/{query}", data)
    assert status == 400, body
    assert b"leaves the root" in body or b"Absolute path" in body
    assert b"SECRET" not in body
    assert (root.parent / "secret").read_bytes() == b"SECRET"
    assert not (root.parent / "evil").exists()
    assert not (root / "stolen").exists()


def test_cli_against_a_served_repository(guarded: str) -> None:
    uri = f"{guarded}/main?token={TOKEN.replace('+', '%2B')}"
    lakota = [sys.executable, "-m", "lakota", "-r", uri]
    run = subprocess.run(
        [*lakota, "create", "cli", "day date*", "n int"],
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
    )
    assert run.returncode == 0, run.stderr
    write = subprocess.run(
        [*lakota, "write", "cli/x"],
        input="day,n\n2021-01-01,1\n",
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
    )
    assert write.returncode == 0, write.stderr
    read = subprocess.run(
        [*lakota, "read", "cli/x"], capture_output=True, text=True, timeout=COMMAND_SECONDS
    )
    assert read.stdout == "day,n\n2021-01-01,1\n"
    denied = subprocess.run(
        [sys.executable, "-m", "lakota", "-r", guarded + "/main", "ls"],
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
    )
    assert denied.returncode == 1
    assert denied.stderr.count("\n") == 1 and "401" in denied.stderr



def test_serve_the_default_repository_with_the_token_from_the_environment(root: Path) -> None:
    Repo(str(root)).create_collection(SCHEMA, "from-env", raise_if_exists=False)
    with lakota_server(env={"LAKOTA_REPO": str(root), "LAKOTA_TOKEN": "env-token"}) as url:
        assert call(url + "/ls", token=None)[0] == 401
        assert "from-env" in Repo(f"{url}?token=env-token").ls()
