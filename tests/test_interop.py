"""On-disk interoperability with upstream lakota 0.7.1, in both directions.

Upstream runs in its own virtual environment (`build/interop-venv`, built once by
`interop.venv`). Both implementations run the same `interop/scenario.py` steps on
local folder repositories and dump a JSON manifest of everything they can read back
(schemas, frames, lengths, revisions, time travel, decoded commits), so each test
compares what the two libraries see in one repository. Then `interop/compat.py` runs
snippets of user code written for 0.7.1 on both sides and compares what they return,
or the class of what they raise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy
import pytest
from interop import compat, scenario
from interop.venv import VenvError, clean_env, ensure_venv
from numcodecs import Blosc

from lakota import Repo

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "build" / "interop-venv"
SCRIPT = Path(scenario.__file__).resolve()
COLLECTIONS = ["daily", "forked", "kv", "kvmeta", "multi_idx", "numbers", "timeseries"]


@pytest.fixture(scope="session")
def upstream_python() -> Path:
    """Interpreter with upstream lakota 0.7.1 (fails in CI, skips elsewhere, if unbuildable)."""
    try:
        return ensure_venv(VENV)
    except VenvError as exc:
        message = f"Upstream lakota 0.7.1 is not available: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def run_upstream(python: Path, command: str, folder: Path | str, cwd: Path | None = None) -> dict:
    """Run a scenario command with upstream lakota and return its manifest.

    `folder` is a repository folder, or the URI of one (`cwd` is then required).
    """
    result = subprocess.run(
        [str(python), str(SCRIPT), command, str(folder)],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=cwd or Path(folder).parent,
        timeout=300,
    )
    if result.returncode:
        pytest.fail(f"upstream lakota failed on {command!r}:\n{result.stderr[-4000:]}")
    manifest = json.loads(result.stdout)
    assert Path(manifest["lakota"]).resolve().is_relative_to(VENV)
    return manifest


def run_ours(command: str, folder: Path) -> dict:
    """Run a scenario command in-process with our lakota and return its manifest."""
    step = scenario.COMMANDS[command]
    if step is not None:
        step(Repo(str(folder)))
    manifest = json.loads(json.dumps(scenario.dump(Repo(str(folder)))))
    assert Path(manifest["lakota"]).resolve().is_relative_to(ROOT / "lakota")
    return manifest


def assert_same(ours: dict, theirs: dict) -> None:
    """Equal manifests, compared part by part for a readable failure."""
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        assert ours[key] == theirs[key], f"{key} differs"


def same_view(ours: dict, theirs: dict) -> None:
    """Both libraries read the same things (only the path of the library differs)."""
    drop = {"lakota"}
    assert_same(
        {k: v for k, v in ours.items() if k not in drop},
        {k: v for k, v in theirs.items() if k not in drop},
    )


@pytest.fixture(scope="session")
def upstream_written(upstream_python: Path, tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("interop") / "upstream-repo"
    return folder, run_upstream(upstream_python, "write", folder)


@pytest.fixture(scope="session")
def ours_written(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("interop") / "our-repo"
    return folder, run_ours("write", folder)


def copy_repo(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / f"{folder.name}-copy"
    shutil.copytree(folder, target)
    return target


# Expected content, from the scenario's own inputs


def values(manifest: dict, collection: str, series: str, column: str) -> list:
    return manifest[f"collection {collection}"]["frames"][series]["frame"][column]["values"]


def iso(stamps: numpy.ndarray) -> list[str]:
    return [str(v) for v in numpy.datetime_as_string(stamps)]


def hexes(floats: Iterable[float]) -> list[str]:
    return [float(v).hex() for v in floats]


def check_written(manifest: dict) -> None:
    """The state `scenario.write_all` leaves, whoever wrote it."""
    assert manifest["collections"] == COLLECTIONS
    clct = manifest["collection timeseries"]
    assert clct["series"] == ["bergen", "big", "paris", "rome"]
    assert clct["schema"]["columns"]["extra"] == {
        "dt": "object",
        "codecs": ["msgpack2", "zstd"],
        "idx": False,
    }
    paris = iso(scenario.days(0, 13))
    assert values(manifest, "timeseries", "paris", "ts") == [
        paris[i] for i in (0, 3, 4, 5, 7, 9, 10, 11, 12)
    ]
    day7 = scenario.rich_frame(scenario.days(7, 1), 3)
    assert values(manifest, "timeseries", "paris", "value")[4] == hexes(day7["value"])[0]
    assert values(manifest, "timeseries", "paris", "extra")[4] == day7["extra"][0]
    assert values(manifest, "timeseries", "paris", "flag")[4] == bool(day7["flag"][0])
    assert values(manifest, "timeseries", "paris", "name")[4] == day7["name"][0]
    assert values(manifest, "timeseries", "bergen", "ts") == iso(scenario.days(1, 3))[::2]
    assert clct["frames"]["big"]["len"] == 1500
    assert values(manifest, "kv", "main", "key") == ["a", "b", "c", "d"]
    assert values(manifest, "kv", "main", "value") == [10, 20, 3, 4]
    assert values(manifest, "kvmeta", "ns", "label") == ["a", "c", "e"]
    assert values(manifest, "kvmeta", "ns", "meta") == [scenario.OBJECTS[i] for i in (0, 2, 5)]
    assert values(manifest, "multi_idx", "grid", "site") == ["a", "a", "a", "c", "c", "c", "c"]
    assert values(manifest, "multi_idx", "grid", "value") == hexes([0, 4.5, 7, 8, 13.5, 15, 16.5])
    keys = [k for k in range(-50, 50, 3) if not -20 <= k <= 2] + [1, 1, 2]
    assert values(manifest, "numbers", "n", "key") == sorted(keys)
    assert values(manifest, "daily", "a", "value")[13:17] == hexes([0.1, 0.2, 0.3, 0.4])
    assert values(manifest, "forked", "s", "value") == hexes(range(6))  # the newest branch
    assert values(manifest, "forked", "other", "value") == hexes([10, 11])


def check_extended(manifest: dict, before: dict) -> None:
    """The state after `scenario.extend` ran on top of `before`."""
    assert manifest["collections"] == sorted({*COLLECTIONS, "late", "nums"} - {"numbers"})
    for label in ("timeseries", "kv", "forked"):
        old = before[f"collection {label}"]["revisions"]
        assert set(old) < set(manifest[f"collection {label}"]["revisions"])
    assert values(manifest, "timeseries", "paris", "ts")[-3:] == iso(scenario.days(20, 3))
    assert values(manifest, "kv", "main", "value") == [10, 20, 30, 4, 5]
    assert values(manifest, "kvmeta", "ns", "label") == ["c", "e"]
    assert values(manifest, "forked", "s", "value") == hexes([0, 1, -2, -3, 4, 5])
    assert values(manifest, "forked", "other", "value") == hexes([10, 11])
    assert values(manifest, "late", "x", "value") == hexes([1, 2, 3])
    assert values(manifest, "nums", "n", "key") == values(before, "numbers", "n", "key")
    assert len(manifest["collection daily"]["revisions"]) == 1  # trimmed
    assert values(manifest, "daily", "a", "day")[19:22] == [
        "2021-01-20",
        "2021-01-22",
        "2021-01-26",
    ]
    assert values(manifest, "daily", "a", "value")[20] == (42.0).hex()


def check_collected(folder: Path, before: Path) -> None:
    """Garbage collection soft-deleted the one data file no revision refers to."""
    old, new = data_files(before), data_files(folder)
    renamed = sorted(set(new) - set(old))
    assert len(renamed) == 1 and renamed[0][:-12] in old and renamed[0][-12] == "."
    assert set(new) - set(renamed) == set(old) - {renamed[0][:-12]}


# Tests


def test_we_read_upstream_repository(upstream_written: tuple[Path, dict]) -> None:
    folder, theirs = upstream_written
    check_written(theirs)
    same_view(run_ours("dump", folder), theirs)


def test_upstream_reads_our_repository(
    upstream_python: Path, ours_written: tuple[Path, dict]
) -> None:
    folder, ours = ours_written
    check_written(ours)
    clct = ours["collection timeseries"]
    before_second = clct["before"][clct["revisions"][1]]  # we never reuse a millisecond
    assert before_second["paris"]["ts"]["values"] == iso(scenario.days(0, 10))
    same_view(ours, run_upstream(upstream_python, "dump", folder))


def without_names(manifest: dict) -> dict:
    """What two runs of one scenario share: not the times or the random collection folders.

    Time travel is left out too: which revisions share a millisecond depends on timing.
    """
    found = {}
    for key, value in manifest.items():
        if key.startswith("collection "):
            value = dict(value)
            value["revisions"] = [path[-40:] for path in value["revisions"]]
            value.pop("before")
            found[key] = value
    found["collections"] = manifest["collections"]
    return found


def test_same_writes_make_same_commits(
    upstream_written: tuple[Path, dict], ours_written: tuple[Path, dict]
) -> None:
    """Same overlay results, byte-identical commit payloads (same child digests) and data."""
    assert_same(without_names(ours_written[1]), without_names(upstream_written[1]))
    ours, theirs = data_files(ours_written[0]), data_files(upstream_written[0])
    assert sorted(ours) == sorted(theirs)
    assert {path: decoded(data) for path, data in ours.items()} == {
        path: decoded(data) for path, data in theirs.items()
    }
    assert sum(ours[path] != theirs[path] for path in ours) > 0  # compressed at another level


def decoded(data: bytes) -> bytes:
    """The bytes a blosc1 chunk stands for; other encodings as they are (text columns are
    named by the digest of their encoded bytes, so those must match as they are)."""
    return Blosc().decode(data) if data[:2] == b"\x02\x01" else data


def data_files(folder: Path) -> dict[str, bytes]:
    """Data files (``ab/cd/<36 hex>``) by path; collection folders are one level deeper."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in folder.glob("??/??/*")
        if path.is_file()
    }


def revision_files(folder: Path, manifest: dict, label: str) -> list[bytes]:
    path = manifest["registry"]["frames"]["collection"]["frame"]["meta"]["values"][0]["path"]
    return [
        (folder / path / rev).read_bytes() for rev in manifest[f"collection {label}"]["revisions"]
    ]


def test_simple_collection_commit_bytes(upstream_python: Path, tmp_path: Path) -> None:
    """Upstream decodes our commits as its own, and both encode the same bytes."""
    theirs_folder, ours_folder = tmp_path / "upstream", tmp_path / "ours"
    theirs = run_upstream(upstream_python, "simple", theirs_folder)
    run_ours("simple", ours_folder)
    ours_seen_by_upstream = run_upstream(upstream_python, "dump", ours_folder)
    theirs_clct = theirs["collection simple"]
    ours_clct = ours_seen_by_upstream["collection simple"]
    assert len(theirs_clct["commits"]) == 6
    assert ours_clct["commits"] == theirs_clct["commits"]
    assert ours_clct["frames"] == theirs_clct["frames"]
    assert ours_clct["frames"]["s"]["frame"]["value"]["values"] == hexes(
        [0, 0.5, -1, -2, -3, 2.5, 4, 4.5, 1, 2]
    )
    assert revision_files(ours_folder, ours_seen_by_upstream, "simple") == revision_files(
        theirs_folder, theirs, "simple"
    )
    assert [p[-40:] for p in ours_clct["revisions"]] == [p[-40:] for p in theirs_clct["revisions"]]
    ours_data, theirs_data = data_files(ours_folder), data_files(theirs_folder)
    assert len(theirs_data) == 1  # the 1200 random floats
    assert ours_data.keys() == theirs_data.keys()
    assert [decoded(d) for d in ours_data.values()] == [decoded(d) for d in theirs_data.values()]


def test_mixed_history_upstream_then_ours(
    upstream_python: Path, upstream_written: tuple[Path, dict], tmp_path: Path
) -> None:
    folder = copy_repo(upstream_written[0], tmp_path)
    ours = run_ours("extend", folder)
    check_extended(ours, upstream_written[1])
    check_collected(folder, upstream_written[0])
    same_view(ours, run_upstream(upstream_python, "dump", folder))


def test_mixed_history_ours_then_upstream(
    upstream_python: Path, ours_written: tuple[Path, dict], tmp_path: Path
) -> None:
    folder = copy_repo(ours_written[0], tmp_path)
    theirs = run_upstream(upstream_python, "extend", folder)
    check_extended(theirs, ours_written[1])
    check_collected(folder, ours_written[0])
    same_view(run_ours("dump", folder), theirs)


# Code written for lakota 0.7.1 (issue 15): same snippet, same outcome on both sides


@pytest.fixture(scope="session")
def compat_contexts(s3_server) -> Iterator[tuple[dict, dict]]:
    """What the snippets need from outside, for upstream and for us: a fresh bucket each."""
    buckets = [s3_server.create_bucket() for _ in range(2)]
    yield tuple({"s3": s3_server.uri(bucket)} for bucket in buckets)
    for bucket in buckets:
        s3_server.drop_bucket(bucket)


@pytest.fixture(scope="session")
def upstream_compat(upstream_python: Path, compat_contexts: tuple[dict, dict]) -> dict:
    """Every snippet of `interop/compat.py`, run once by upstream lakota."""
    result = subprocess.run(
        [
            str(upstream_python),
            str(Path(compat.__file__).resolve()),
            json.dumps(compat_contexts[0]),
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=ROOT / "build",
        timeout=300,
    )
    if result.returncode:
        pytest.fail(f"upstream lakota failed on the compat snippets:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout)


def comparable(outcome: dict) -> dict:
    """An outcome without the message of an error (both name the class)."""
    return {key: value for key, value in outcome.items() if key != "message"}


@pytest.mark.parametrize("name", list(compat.SNIPPETS))
def test_code_written_for_upstream_runs_the_same(
    name: str, upstream_compat: dict, compat_contexts: tuple[dict, dict]
) -> None:
    theirs = upstream_compat[name]
    ours = compat.outcome(name, compat_contexts[1])
    assert "value" in theirs, f"the snippet fails on upstream lakota: {theirs}"
    assert comparable(ours) == comparable(theirs), f"ours: {ours}\ntheirs: {theirs}"


def test_upstream_client_through_our_server(upstream_python: Path, tmp_path: Path) -> None:
    """lakota 0.7.1's HttpPOD writes through `lakota serve --allow-anonymous-writes` and
    reads through a default (read-only) server, which refuses its writes."""
    pytest.importorskip("uvicorn")
    from conftest import lakota_server

    folder = tmp_path / "served"
    with lakota_server(f"repo {folder}", "--allow-anonymous-writes") as url:
        theirs = run_upstream(upstream_python, "write", f"{url}/repo", cwd=tmp_path)
    check_written(theirs)
    same_view(run_ours("dump", folder), theirs)
    with lakota_server(f"repo {folder}") as url:
        same_view(run_upstream(upstream_python, "dump", f"{url}/repo", cwd=tmp_path), theirs)
        refused = subprocess.run(
            [str(upstream_python), str(SCRIPT), "extend", f"{url}/repo"],
            capture_output=True, text=True, env=clean_env(), cwd=tmp_path, timeout=300,
        )
    assert refused.returncode != 0 and "403" in refused.stderr
    same_view(run_ours("dump", folder), theirs)


# Messages, metadata and tags (written by us only): upstream reads, writes, merges and
# pulls such repositories, and they keep working for us afterwards


def frames_of(manifest: dict) -> dict:
    return {
        key: value["frames"] for key, value in manifest.items() if key.startswith("collection ")
    }


@pytest.fixture
def decorated(upstream_written: tuple[Path, dict], tmp_path: Path) -> tuple[Path, dict, dict]:
    """A copy of upstream's repository with our messages and tags, and what they name."""
    folder = copy_repo(upstream_written[0], tmp_path)
    manifest = run_ours("decorate", folder)
    repo = Repo(str(folder))
    clct = repo / "timeseries"
    expected = {
        "tagged": scenario.dump_frame((clct / "paris").frame(at="as-written")),
        "big": scenario.dump_frame((clct / "big").frame(at="as-written")),
        "snapshot": scenario.dump_frame((clct / "paris").frame(at="snapshot")),
        "messages": {rev.path: rev.info for rev in clct.changelog.log()},
    }
    frames = upstream_written[1]["collection timeseries"]["frames"]
    assert expected["tagged"] == frames["paris"]["frame"]
    assert expected["big"] == frames["big"]["frame"]
    assert expected["big"] != scenario.dump_frame((clct / "big").frame())
    assert {info["message"] for info in expected["messages"].values()} >= {
        "late days",
        "batch of two",
    }
    return folder, manifest, expected


def check_decorations(folder: Path, expected: dict) -> None:
    repo = Repo(str(folder))
    clct = repo / "timeseries"
    paris = clct / "paris"
    assert scenario.dump_frame(paris.frame(at="as-written")) == expected["tagged"]
    assert scenario.dump_frame((clct / "big").frame(at="as-written")) == expected["big"]
    assert scenario.dump_frame(paris.frame(at="snapshot")) == expected["snapshot"]
    assert [tag.name for tag in clct.tags()] == ["as-written", "snapshot"]
    assert [tag.name for tag in repo.tags()] == ["snapshot"]
    infos = {rev.path: rev.info for rev in clct.changelog.log()}
    for path, info in expected["messages"].items():
        if path in infos:
            assert infos[path] == info
    assert not repo.check().problems


def test_upstream_reads_our_messages_and_tags(
    upstream_python: Path, decorated: tuple[Path, dict, dict]
) -> None:
    folder, ours, expected = decorated
    same_view(ours, run_upstream(upstream_python, "dump", folder))
    check_decorations(folder, expected)


def test_upstream_writes_merges_and_collects_a_repository_with_tags(
    upstream_python: Path, decorated: tuple[Path, dict, dict]
) -> None:
    folder, _, expected = decorated
    theirs = run_upstream(upstream_python, "extend", folder)  # writes, merge, defrag, gc...
    assert values(theirs, "forked", "s", "value")[-2:] == hexes([8.0, 9.0])  # merged
    assert values(theirs, "late", "x", "value") == hexes([1, 2, 3])
    check_decorations(folder, expected)
    same_view(run_ours("dump", folder), theirs)


def test_tags_survive_upstream_trim_and_gc(
    upstream_python: Path, decorated: tuple[Path, dict, dict]
) -> None:
    """Upstream trims every revision but the last and collects garbage (with no grace
    period): the tagged states stay readable, from the tag archive and its data."""
    folder, ours, expected = decorated
    theirs = run_upstream(upstream_python, "prune", folder)
    key = "collection timeseries"
    assert len(theirs[key]["revisions"]) < len(ours[key]["revisions"]) - 5
    assert not (set(ours[key]["revisions"][:5]) & set(theirs[key]["revisions"]))
    check_decorations(folder, expected)


def test_upstream_pulls_a_repository_with_tags(
    upstream_python: Path, decorated: tuple[Path, dict, dict], tmp_path: Path, monkeypatch
) -> None:
    folder, ours, expected = decorated
    monkeypatch.setenv("SCENARIO_SOURCE", str(folder))
    pulled = tmp_path / "pulled-by-upstream"
    theirs = run_upstream(upstream_python, "pull", pulled)
    assert frames_of(theirs) == frames_of(ours)
    assert frames_of(run_ours("dump", pulled)) == frames_of(ours)
    Repo(str(pulled)).pull(Repo(str(folder)))  # we then bring the tags along
    check_decorations(pulled, expected)


def test_we_pull_and_upstream_reads_tags_and_messages(
    upstream_python: Path, decorated: tuple[Path, dict, dict], tmp_path: Path, monkeypatch
) -> None:
    folder, ours, expected = decorated
    monkeypatch.setenv("SCENARIO_SOURCE", str(folder))
    pulled = tmp_path / "pulled-by-us"
    mine = run_ours("pull", pulled)
    check_decorations(pulled, expected)
    assert frames_of(run_upstream(upstream_python, "dump", pulled)) == frames_of(mine)
    assert frames_of(mine) == frames_of(ours)
