"""A FilePOD never follows a symbolic link out of its root: not to read, write, list,
walk, move or delete, and neither does `lakota serve` on top of it."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy
import pytest
from conftest import lakota_server

from lakota import POD, Repo, Schema
from lakota.errors import UnsafePathError
from lakota.pod.file import FilePOD

SECRET = b"outside secret"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """``root/evil -> outside/``, ``root/leak.txt -> outside/secret.txt`` and a link
    that stays inside, ``root/alias -> root/inner``."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "inner").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (root / "inner" / "file.txt").write_bytes(b"inside")
    (root / "evil").symlink_to(outside, target_is_directory=True)
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "alias").symlink_to(root / "inner", target_is_directory=True)
    return root, outside


@pytest.mark.parametrize("path", ["evil/secret.txt", "leak.txt"])
def test_reads_through_an_outside_link_are_refused(layout, path):
    pod = FilePOD(layout[0])
    with pytest.raises(UnsafePathError, match="symbolic link"):
        pod.read(path)
    with pytest.raises(UnsafePathError):
        pod.cd("evil").read("secret.txt")


def test_writes_and_deletes_through_an_outside_link_are_refused(layout):
    root, outside = layout
    pod = FilePOD(root)
    with pytest.raises(UnsafePathError):
        pod.write("evil/planted.txt", b"x")
    with pytest.raises(UnsafePathError):
        pod.write("leak.txt", b"x", force=True)
    with pytest.raises(UnsafePathError):
        pod.rm("evil/secret.txt")
    with pytest.raises(UnsafePathError):
        pod.rm("evil", recursive=True)
    with pytest.raises(UnsafePathError):
        pod.mv("evil/secret.txt", "stolen.txt")
    with pytest.raises(UnsafePathError):
        pod.mv("inner/file.txt", "evil/file.txt")
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == SECRET
    assert (root / "inner" / "file.txt").read_bytes() == b"inside"


def test_listings_skip_outside_links_and_do_not_enter_them(layout):
    pod = FilePOD(layout[0])
    assert sorted(pod.ls()) == ["alias", "inner"]
    with pytest.raises(UnsafePathError):
        pod.ls("evil")
    assert sorted(pod.walk()) == ["alias/file.txt", "inner/file.txt"]
    assert not pod.isfile("inner/missing")
    with pytest.raises(UnsafePathError):
        pod.isfile("evil/secret.txt")
    with pytest.raises(UnsafePathError):
        pod.isdir("evil")


def test_links_that_stay_inside_the_root_still_work(layout):
    root, _ = layout
    pod = FilePOD(root)
    assert pod.read("alias/file.txt") == b"inside"
    assert pod.write("alias/new.txt", b"new") == 3
    assert (root / "inner" / "new.txt").read_bytes() == b"new"


def test_a_root_reached_through_a_link_is_fine(layout, tmp_path):
    link = tmp_path / "root-link"
    link.symlink_to(layout[0], target_is_directory=True)
    pod = POD.from_uri(str(link))
    assert pod.read("inner/file.txt") == b"inside"
    with pytest.raises(UnsafePathError):
        pod.read("evil/secret.txt")


def test_a_repository_with_an_outside_link_cannot_be_made_to_write_there(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = Repo(str(tmp_path / "repo"))
    coll = repo.create_collection(Schema(idx="int*", v="float"), "c")
    values = numpy.random.default_rng(1).normal(size=1000)  # too large to be embedded
    coll.series("s").write({"idx": list(range(1000)), "v": values})
    # a hostile peer replaces the folder of the collection's revisions by a link out
    revisions = [path for path in repo.pod.walk() if path.count("/") == 3]
    folder = tmp_path / "repo" / sorted(revisions)[-1].split("/")[0]  # not "00", the registry
    os.rename(folder, tmp_path / "moved")
    folder.symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        coll.series("s").write({"idx": list(range(1000)), "v": values * 2})
    assert os.listdir(outside) == []


@pytest.mark.parametrize("options", [(), ("--read-only",)])
def test_the_server_does_not_serve_files_outside_its_root(layout, options):
    root, _ = layout
    with lakota_server(f"repo {root}", *options) as url:
        for action in ("raw", "read"):
            for path in ("evil/secret.txt", "leak.txt"):
                request = f"{url}/repo/{action}?path={path}"
                with pytest.raises(urllib.error.HTTPError) as failure:
                    urllib.request.urlopen(request, timeout=10)
                assert failure.value.code == 400
                body = failure.value.read()
                assert SECRET not in body and b"symbolic link" in body
        with urllib.request.urlopen(f"{url}/repo/raw?path=alias/file.txt", timeout=10) as answer:
            assert answer.read() == b"inside"
