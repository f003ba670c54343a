"""The ``lakota`` command line, run for real in subprocesses (``python -m lakota``)."""

from __future__ import annotations

import io
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from limits import COMMAND_SECONDS

from lakota import Repo, Schema
from lakota.cli import cli, main

pytest.importorskip("click")
pytest.importorskip("rich")

BRUSSELS = """timestamp,value
2020-06-20,24.5
2020-06-21,26.0
2020-06-22,27.0
2020-07-01,22.5
2020-07-02,21.0
"""
PARIS = "timestamp,value\n2020-06-21,19.5\n2020-06-22,20.0\n"


def run(cwd: Path, *args: str, input: str | None = None, env: dict | None = None,
        status: int = 0) -> str:
    """Run ``lakota ARGS`` in `cwd`; check the exit status; return stdout."""
    environ = {k: v for k, v in os.environ.items() if k not in ("LAKOTA_REPO", "LAKOTA_TOKEN")}
    proc = subprocess.run(
        [sys.executable, "-m", "lakota", *args],
        cwd=cwd, input=input, capture_output=True, text=True, env={**environ, **(env or {})},
        timeout=COMMAND_SECONDS,
    )
    assert proc.returncode == status, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    if status:
        assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
        return proc.stderr
    return proc.stdout


@pytest.fixture
def lakota(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Like `run` but in this process (much faster): ``lakota(*args, input=, status=)``."""
    monkeypatch.delenv("LAKOTA_REPO", raising=False)

    def call(*args: str, input: str = "", status: int = 0) -> str:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(input.encode())))
        code = main(list(args))
        out, err = capsys.readouterr()
        assert code == status, (out, err)
        if status:
            assert err.startswith("Error: ") and err.count("\n") == 1, err
            return err
        return out

    return call


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder, whose .lakota holds temperature/Brussels and temperature/Paris."""
    monkeypatch.chdir(tmp_path)
    repo = Repo(str(tmp_path / ".lakota"))
    clct = repo.create_collection(Schema(timestamp="timestamp*", value="float"), "temperature")
    rows = [line.split(",") for line in BRUSSELS.splitlines()[1:]]
    clct.series("Brussels").write(
        {"timestamp": [r[0] for r in rows], "value": [float(r[1]) for r in rows]}
    )
    clct.series("Paris").write({"timestamp": ["2020-06-21", "2020-06-22"], "value": [19.5, 20]})
    return tmp_path


def test_readme_session(tmp_path: Path) -> None:
    """The session of docs/cli.md: create, write a CSV, read a range, rev, push."""
    assert run(tmp_path, "create", "temperature", "timestamp timestamp*", "value float") == ""
    (tmp_path / "brussels.csv").write_text(BRUSSELS)
    assert run(tmp_path, "write", "temperature/Brussels", "-f", "brussels.csv") == ""
    assert run(tmp_path, "write", "temperature/Paris", input=PARIS) == ""
    assert run(tmp_path, "ls") == "collection\ntemperature\n"
    assert run(tmp_path, "ls", "temperature") == "series\nBrussels\nParis\n"
    assert run(tmp_path, "read", "temp/Bru", "--gt", "2020-06-21", "--lt", "2020-07-01") == (
        "timestamp,value\n2020-06-21T00:00:00,26.0\n2020-06-22T00:00:00,27.0\n"
    )
    rev = run(tmp_path, "rev", "temperature", "-e").splitlines()
    assert [line.split(":")[0] for line in rev if line and ":" in line[:14]] == [
        "Revision", "Date", "Total length"] * 2
    assert rev[0] == "" and rev[3] == "Total length: 5" and rev[-4] == "Total length: 7"
    assert rev[-6].endswith("*") and not rev[1].endswith("*")
    assert rev[-3].split() == ["label", "start", "stop", "length", "closed"]
    assert rev[-1].split() == ["Paris", "2020-06-21T00:00:00", "2020-06-22T00:00:00", "2", "b"]
    assert run(tmp_path, "push", "file://backup") == ""
    assert run(tmp_path, "-r", "file://backup", "read", "temperature/Paris") == PARIS.replace(
        "21,", "21T00:00:00,").replace("22,", "22T00:00:00,")
    assert (tmp_path / "backup").is_dir()


def test_read_selections(demo: Path, lakota: Callable[..., str]) -> None:
    def read(*args: str) -> list[str]:
        return lakota("read", "temperature/Brussels", *args).splitlines()

    assert read("value", "-l", "2", "-o", "1") == ["value", "26.0", "27.0"]
    assert read("-t", "2", "value") == ["value", "22.5", "21.0"]
    assert read("-p", "2", "value") == ["value", "24.5", "26.0", "27.0", "22.5", "21.0"]
    assert read("-m", "(> self.value 25)", "value") == ["value", "26.0", "27.0"]
    assert read("--gt", "2020-06-22", "--lt", "2020-07-01", "-c", "BOTH", "value") == [
        "value", "27.0", "22.5"]
    assert read("--gt", "2020-06-22", "--lt", "2020-07-01", "-c", "n") == ["timestamp,value"]
    assert read("(floor self.timestamp 'M')", "(max self.value)") == [
        "(floor self.timestamp 'M'),(max self.value)", "2020-06,27.0", "2020-07,22.5"]


def test_read_output_formats(demo: Path, lakota: Callable[..., str]) -> None:
    rows = json.loads(lakota("read", "temp/Par", "--json"))
    assert rows == [{"timestamp": "2020-06-21T00:00:00", "value": 19.5},
                    {"timestamp": "2020-06-22T00:00:00", "value": 20.0}]
    assert json.loads(lakota("read", "temp/Par", "--json", "-l", "0")) == []
    table = lakota("-P", "read", "temp/Par", "value", "timestamp")
    rows = [line for line in table.splitlines() if line.startswith(("│", "┃"))]
    assert [[c for c in line.split() if c not in "│┃"] for line in rows] == [
        ["value", "timestamp"], ["19.5", "2020-06-21T00:00:00"], ["20.0", "2020-06-22T00:00:00"]]
    assert json.loads(lakota("ls", "temperature", "--json")) == ["Brussels", "Paris"]
    assert lakota("write", "temperature/[red]x", input="timestamp,value\n2020-01-01,1\n") == ""
    listing = lakota("ls", "temperature", "-P")
    assert "Brussels" in listing and "│ [red]x " in listing  # shown as is, not as markup
    assert "--json and --pretty" in lakota("ls", "-P", "--json", status=1)


def test_read_before_a_revision(demo: Path, lakota: Callable[..., str]) -> None:
    lakota("write", "temperature/Paris", input="timestamp,value\n2020-06-21,0\n")
    revisions = [line for line in lakota("rev", "temp").splitlines() if "Revision" in line]
    last = revisions[-1].split(".")[-1][:11]
    assert lakota("read", "temp/Par", "value", "-B", last) == "value\n19.5\n20.0\n"
    assert lakota("read", "temp/Par", "value") == "value\n0.0\n20.0\n"
    assert lakota("read", "temp/Par", "value", "-B", "2000-01-01") == "value\n"


def test_write_input_checks(demo: Path, lakota: Callable[..., str]) -> None:
    assert "not match" in lakota("write", "temp/Par", input="day,value\n1,2\n", status=1)
    assert "line 2" in lakota("write", "temp/Par", input="timestamp,value\n2020\n", status=1)
    assert "empty file" in lakota("write", "temp/Par", input="", status=1)
    assert lakota("write", "temp/New", input="timestamp,value\n") == ""  # no rows, no series
    assert "Expected COLLECTION/SERIES" in lakota("write", "temperature", status=1)
    (demo / "rows.csv").write_text("timestamp,value\n2021-01-01,1.5\n")
    assert lakota("write", "temp/New", "-f", "rows.csv") == ""
    assert lakota("read", "temp/New") == "timestamp,value\n2021-01-01T00:00:00,1.5\n"


def test_len_and_delete(demo: Path, lakota: Callable[..., str]) -> None:
    assert lakota("len", "temperature") == "7\n"
    assert lakota("length", "temp/Par") == "2\n"
    assert "Series temperature/Rome not found" in lakota("del", "temperature/Rome", status=1)
    assert lakota("del", "temperature/Paris") == ""
    assert lakota("ls", "temperature") == "series\nBrussels\n"
    assert lakota("delete", "temperature") == ""
    assert lakota("ls") == "collection\n"


def test_rev_digests_and_registry(demo: Path, lakota: Callable[..., str]) -> None:
    extended = lakota("rev", "temperature/Paris", "-ee").splitlines()
    assert extended[-2].split()[-1] == "digests"
    assert extended[-1].split()[:2] == ["Paris", "2020-06-21T00:00:00"]
    assert extended[-1].count(" / ") == 1  # one digest per column
    assert "Total length: 1" in lakota("rev")  # the registry: one row


def test_maintenance_commands(demo: Path, lakota: Callable[..., str]) -> None:
    for day in ("2020-08-01", "2020-08-02", "2020-08-03", "2020-08-04", "2020-08-05"):
        lakota("write", "temperature/Paris", input=f"timestamp,value\n{day},1\n")
    assert lakota("defrag", "temp") == "temperature: defragmented\n"
    assert lakota("defrag") == "registry: nothing to do\n"
    assert lakota("trim", "-a", "-b", "2999-01-01") == (
        "temperature: 7 revision(s) deleted\nregistry: 0 revision(s) deleted\n")
    assert lakota("gc") == "0 segments deleted\n0 segments soft-deleted\n"
    assert lakota("merge", "temperature") == "temperature: nothing to merge\n"
    assert lakota("merge") == "registry: nothing to merge\n"
    assert lakota("len", "temperature/Paris") == "7\n"


def test_merge_joins_branches(demo: Path, lakota: Callable[..., str]) -> None:
    first = Repo(str(demo / ".lakota")) / "temperature"
    second = Repo(str(demo / ".lakota")) / "temperature"
    second.changelog.log()  # both writers start from the same leaf
    first.series("Rome").write({"timestamp": ["2020-01-01"], "value": [1.0]})
    second.series("Oslo").write({"timestamp": ["2020-01-01"], "value": [2.0]})
    assert lakota("merge", "temp") == "temperature: merged, 2 revision(s) written\n"
    assert lakota("ls", "temperature") == "series\nBrussels\nOslo\nParis\nRome\n"


def test_push_pull_import_export(demo: Path, lakota: Callable[..., str]) -> None:
    assert lakota("-r", "other", "pull", ".lakota", "temp") == ""
    assert lakota("-r", "other", "len", "temperature") == "7\n"
    assert "Repository nowhere not found" in lakota("pull", "nowhere", status=1)
    assert lakota("push", "memory://", "-s") == ""
    assert lakota("export", "exported", "-c", "temperature") == ""
    assert (demo / "exported" / "temperature" / "Paris.csv").is_file()
    assert lakota("-r", "imported", "import", "exported") == ""
    assert lakota("-r", "imported", "read", "temperature/Paris", "value") == (
        "value\n19.5\n20.0\n")
    assert lakota("-r", "imported2", "import", "exported", "-c", "temperature") == ""
    assert lakota("-r", "imported2", "len", "temperature") == "7\n"
    assert "Folder nothing-here not found" in lakota("import", "nothing-here", status=1)


def test_global_options(demo: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "lakota", "-t", "-vv", "len", "temperature"],
                          cwd=demo, capture_output=True, text=True, timeout=COMMAND_SECONDS)
    assert proc.stdout == "7\n"
    assert proc.stderr.startswith("DEBUG:") and " ls FilePOD(" in proc.stderr
    assert re.fullmatch(r"Timing \(len\): [0-9.]+m?s", proc.stderr.splitlines()[-1])
    proc = subprocess.run([sys.executable, "-m", "lakota", "-v", "push", "memory://"],
                          cwd=demo, capture_output=True, text=True, timeout=COMMAND_SECONDS)
    assert proc.stderr.startswith("INFO:") and "DEBUG:" not in proc.stderr
    elsewhere = demo / "elsewhere"
    elsewhere.mkdir()
    assert run(elsewhere, "ls", env={"LAKOTA_REPO": str(demo / ".lakota")}) == (
        "collection\ntemperature\n")
    cache = elsewhere / "cache"
    assert run(elsewhere, "-r", str(cache), "-r", str(demo / ".lakota"), "len", "temp") == "7\n"
    assert cache.is_dir()  # the chain filled the local cache
    assert run(demo, "version") == "0.7.1\n"
    assert "Usage: lakota [OPTIONS] [COMMAND]" in run(demo)
    assert "Usage: lakota read" in run(demo, "help", "read")


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture) -> None:
    assert main([command, "--help"]) == 0
    assert f"Usage: lakota {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["read", "nope/x"], "Collection nope not found"),
        (["read", "temp/Nope"], "Series temperature/Nope not found"),
        (["read", "temp/Bru", "-B", "yesterday"], "Invalid date 'yesterday'"),
        (["read", "temp/Bru", "--gt", "soon"], "bound 'soon'"),
        (["read", "temp/Bru", "-c", "sideways"], "Invalid value 'sideways'"),
        (["read", "temp/Bru", "nocolumn"], "Unknown column(s) nocolumn"),
        (["read", "temp/Bru", "-t", "1", "-p", "1"], "cannot be combined"),
        (["read", "temp"], "Expected COLLECTION/SERIES"),
        (["read", "/x"], "Invalid name '/x'"),
        (["create", "bad", "x flaot*"], "flaot"),
        (["create", "bad", "x"], "Invalid column definition 'x'"),
        (["create", "bad", "x int", "x int*"], "defined twice"),
        (["create", "temperature", "x int*"], "already exists"),
        (["-r", "missing-folder", "ls"], "Repository missing-folder not found"),
        (["write", "temperature/Paris"], "not sorted"),
        (["delete", "temp"], "Collection temp not found"),
        (["help", "nope"], "Unknown command 'nope'"),
        (["serve", "main memory://", "-w", "https://127.0.0.1:1"], "http://"),
        (["serve", "lonely"], 'must look like "NAME URI'),
    ],
)
def test_user_errors_are_one_line(demo: Path, lakota: Callable[..., str], args: list[str],
                                  message: str) -> None:
    stdin = "timestamp,value\n2020-06-22,1\n2020-06-21,2\n"
    assert message in lakota(*args, input=stdin, status=1)


def test_ambiguous_prefix(demo: Path, lakota: Callable[..., str]) -> None:
    lakota("create", "temporary", "x int*")
    assert "Collection temp is ambiguous: temperature, temporary" in lakota(
        "ls", "temp", status=1)
    assert lakota("ls", "tempe") == "series\nBrussels\nParis\n"


def test_errors_in_a_real_process(demo: Path) -> None:
    assert "Collection nope not found" in run(demo, "len", "nope", status=1)
    assert "Invalid date" in run(demo, "trim", "-b", "tomorrow", status=1)


def test_usage_errors_exit_with_2(demo: Path) -> None:
    assert "lakota read --help" in run(demo, "read", "temp/Bru", "-l", "many", status=2)
    assert "No such command 'frobnicate'" in run(demo, "frobnicate", status=2)


def test_broken_pipe_is_quiet(demo: Path) -> None:
    rows = "".join(f"2021-01-01T{h:02}:{m:02}:00,{m}\n" for h in range(24) for m in range(60))
    run(demo, "write", "temperature/Big", input="timestamp,value\n" + rows)
    proc = subprocess.Popen([sys.executable, "-m", "lakota", "read", "temperature/Big"],
                            cwd=demo, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"timestamp,value\n"
    proc.stdout.close()
    assert proc.wait(timeout=30) == 0
    assert proc.stderr.read() == b""
    proc.stderr.close()


def test_ctrl_c_is_quiet(demo: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "lakota", "write", "temperature/X"], cwd=demo,
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.5)  # importing or waiting for the CSV: both must stay quiet
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert b"Traceback" not in proc.stderr.read()
    proc.stdin.close()
    proc.stderr.close()


def test_colours_and_progress_only_on_a_terminal(demo: Path) -> None:
    """On a terminal, errors are red and push shows a progress bar (both on stderr)."""
    import pty

    def stderr_on_a_terminal(*args: str) -> tuple[int, bytes]:
        leader, follower = pty.openpty()
        env = {**os.environ, "TERM": "xterm-256color"}
        proc = subprocess.Popen([sys.executable, "-m", "lakota", *args], cwd=demo, env=env,
                                stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        chunks = []
        deadline = time.monotonic() + COMMAND_SECONDS
        while True:
            if not select.select([leader], [], [], max(0.0, deadline - time.monotonic()))[0]:
                proc.kill()
                raise TimeoutError(f"lakota {' '.join(args)} printed nothing more in time")
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        return proc.wait(timeout=COMMAND_SECONDS), b"".join(chunks)

    status, output = stderr_on_a_terminal("len", "nope")
    assert status == 1 and b"\x1b[31mError: Collection nope not found" in output
    status, output = stderr_on_a_terminal("push", "copy")
    assert status == 0 and b"Push" in output
    assert run(demo, "-r", "copy", "len", "temperature") == "7\n"


# Version control: tag, log, diff, changes, restore, trim/gc dry runs


def test_version_control_commands(demo: Path, lakota: Callable[..., str]) -> None:
    lakota("tag", "temp", "june", "-m", "June data")
    assert "june" in lakota("tag", "temp")
    lakota("write", "temp/Paris", input="timestamp,value\n2020-06-22,21.0\n2020-06-23,22.0\n")
    log = lakota("log", "temp/Paris")
    assert log.startswith("revision ") and "Paris: 2 row(s) over 2020-06-22" in log
    assert log.count("revision ") == 2 and "(tags: june)" in log
    assert lakota("log", "temp", "-n", "1").count("revision ") == 1
    assert lakota("diff", "temp", "june").splitlines()[1].split() == [
        "Paris", "modified", "2020-06-22T00:00:00", "2020-06-23T00:00:00", "1", "0", "1"]
    assert lakota("diff", "temp/Paris", "june", "--rows").splitlines() == [
        "change,series,timestamp,value",
        "+,Paris,2020-06-23T00:00:00,22.0",
        "~,Paris,2020-06-22T00:00:00,21.0",
    ]
    feed = lakota("changes", "temp").splitlines()
    assert feed[0] == "revision,series,start,stop,closed,rows" and len(feed) == 4
    last_handled = feed[2].split(",")[0]
    assert lakota("changes", "temp", "--since", last_handled).splitlines()[1:] == feed[3:]
    assert lakota("restore", "temp/Paris", "june") == "temp/Paris: restored\n"
    assert "Restore Paris to june" in lakota("log", "temp", "-n", "1")
    assert lakota("diff", "temp", "june").count("\n") == 1  # the header only
    assert "would be deleted" in lakota("trim", "temp", "-k", "1", "-n")
    assert lakota("trim", "temp", "-k", "1") == "temperature: 3 revision(s) deleted\n"
    assert "bytes" in lakota("gc", "--dry-run")
    lakota("tag", "/", "snap")
    assert "temperature" in lakota("tag", "/")
    lakota("tag", "/", "snap", "-d")
    lakota("tag", "temp", "june", "-d")
    assert "june" not in lakota("tag", "temp")
    assert "No tag or revision 'nope'" in lakota("tag", "temp", "x", "--at", "nope", status=1)


def test_version_control_errors(demo: Path, lakota: Callable[..., str]) -> None:
    assert "nope" in lakota("diff", "temp", "nope", status=1)
    assert "Invalid tag name" in lakota("tag", "temp", "a b", status=1)
    lakota("tag", "temp", "x")
    assert "already points" in lakota("tag", "temp", "x", status=1)
    lakota("tag", "temp", "x", "--force")
    assert lakota("restore", "temp", "2000-01-01") == "temp: restored\n"  # before it all
    assert lakota("ls", "temp") == "series\n"
