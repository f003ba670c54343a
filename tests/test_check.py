"""Integrity: data files are checked against their digests on read, `Repo.check()` and
``lakota check`` report what is wrong."""

from __future__ import annotations

import numpy
import pytest
from conftest import CORE_KINDS

from lakota import Schema
from lakota.changelog import phi
from lakota.cli import main
from lakota.errors import CorruptedDataError, MissingDataError
from lakota.schema import Codec
from lakota.utils import digest_path, hexdigest, hextime, settings

SCHEMA = Schema(ts="timestamp*", value="float", tag="str")
ROWS = 1500  # big enough for every column to get its own data file
CORE = pytest.mark.pod_kinds(*CORE_KINDS)


def frame(seed: int = 0) -> dict:
    rng = numpy.random.default_rng(seed)
    return {
        "ts": numpy.arange(ROWS).astype("M8[s]") + seed * ROWS,
        "value": rng.random(ROWS),
        "tag": [f"tag-{v}" for v in rng.integers(0, 10**9, ROWS)],
    }


@pytest.fixture(autouse=True)
def verify_always(monkeypatch):
    """These tests exercise the digest check itself, on local storage: every read checks.
    What the default mode checks is tested in tests/test_verify.py."""
    monkeypatch.setattr(settings, "verify_digests", "always")


@pytest.fixture
def srs(repo):
    srs = repo.create_collection(SCHEMA, "clct") / "s"
    srs.write(frame())
    return srs


def stored_path(srs, column: str) -> str:
    digest = srs.collection.commit().digest[column][0]
    assert digest not in srs.collection.commit().embedded
    return digest_path(digest)


CORRUPTIONS = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "flipped": lambda data: data[:-20] + bytes([data[-20] ^ 0xFF]) + data[-19:],
    "zeroed": lambda data: bytes(len(data)),
}


@CORE
@pytest.mark.parametrize("column", ["ts", "value", "tag"])
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_damaged_data_file_raises_naming_its_path(srs, repo, reopen, column, corruption):
    path = stored_path(srs, column)
    good = repo.pod.read(path)
    repo.pod.write(path, CORRUPTIONS[corruption](good), force=True)
    with pytest.raises(CorruptedDataError, match=path):
        srs.frame()
    with pytest.raises(CorruptedDataError, match=path):
        (reopen() / "clct" / "s").frame(select=column)
    repo.pod.write(path, good, force=True)
    assert srs.frame() == (reopen() / "clct" / "s").frame()


@CORE
@pytest.mark.parametrize("column", ["ts", "value", "tag"])
def test_valid_but_foreign_content_is_refused(srs, repo, column):
    """A file that decodes fine (another segment's bytes) still does not match its digest."""
    path = stored_path(srs, column)
    other = repo.create_collection(SCHEMA, "other") / "s"
    other.write(frame(seed=1))
    repo.pod.write(path, repo.pod.read(stored_path(other, column)), force=True)
    with pytest.raises(CorruptedDataError, match=f"{path} does not match its digest"):
        srs.frame()


@CORE
def test_verify_digests_setting_is_read_at_call_time(srs, repo, monkeypatch):
    path = stored_path(srs, "value")
    foreign = frame(seed=1)["value"]
    repo.pod.write(path, SCHEMA["value"].codec.encode(foreign), force=True)
    monkeypatch.setattr(settings, "verify_digests", "never")
    assert srs.frame()["value"].tolist() == foreign.tolist()
    repo.pod.write(path, b"garbage", force=True)
    with pytest.raises(CorruptedDataError, match=f"Unable to decode data file .*{path}"):
        srs.frame()  # undecodable bytes are refused even without verification
    monkeypatch.setattr(settings, "verify_digests", "always")
    repo.pod.write(path, SCHEMA["value"].codec.encode(foreign), force=True)
    with pytest.raises(CorruptedDataError, match="does not match"):
        srs.frame()


@CORE
def test_soft_deleted_files_are_verified_too(srs, repo):
    path = stored_path(srs, "value")
    soft = f"{path}.{hextime()}"
    repo.pod.mv(path, soft)
    assert len(srs.frame()) == ROWS
    repo.pod.write(soft, b"bad", force=True)
    with pytest.raises(CorruptedDataError, match=soft):
        srs.frame()


@CORE
def test_restored_while_reading_is_found(srs, repo, monkeypatch):
    """GC may restore a soft-deleted file between a reader's two lookups."""
    path = stored_path(srs, "value")
    soft = f"{path}.{hextime()}"
    repo.pod.mv(path, soft)
    pod_type = type(repo.pod)
    real_ls = pod_type.ls

    def ls_after_restore(pod, relpath=".", missing_ok=False):
        if pod.isfile(soft):
            pod.mv(soft, path)  # what gc does when the file is referenced again
        return real_ls(pod, relpath, missing_ok=missing_ok)

    monkeypatch.setattr(pod_type, "ls", ls_after_restore)
    assert srs.frame()["value"].tolist() == frame()["value"].tolist()


@CORE
def test_undecodable_revision_names_its_path(repo):
    clct = repo.create_collection(SCHEMA, "clct")
    payload = b"not a commit"
    name = f"{phi}.{hextime()}-{hexdigest(payload)}"
    clct.changelog.pod.write(name, payload)
    with pytest.raises(CorruptedDataError, match=f"{name}: Unable to decode commit"):
        (clct / "s").frame()


# --- Repo.check ---------------------------------------------------------------------------


def test_check_clean_repository(srs, repo):
    (srs.collection / "t").write(frame(seed=2))
    report = repo.check()
    assert report.ok and report.problems == []
    assert report.revisions == 3  # registry + 2 collection revisions
    assert report.files == 6
    assert report.summary() == "Checked 3 revisions and 6 data files: OK"


@CORE
def test_check_reports_missing_and_corrupted_files(srs, repo):
    missing, corrupted = stored_path(srs, "value"), stored_path(srs, "tag")
    repo.pod.rm(missing)
    repo.pod.write(corrupted, b"junk", force=True)
    report = repo.check()
    assert not report.ok
    found = {(p.kind, p.path) for p in report.problems}
    assert found == {("missing", missing), ("corrupted", corrupted)}
    text = str(report)
    assert missing in text and corrupted in text and "'clct'" in text
    assert "2 problem(s)" in text


@CORE
def test_check_reports_bad_revisions(srs, repo):
    rev = srs.collection.changelog.log()[-1]
    srs.collection.changelog.pod.write(rev.path, b"tampered", force=True)
    report = repo.check()
    assert [(p.kind, p.path) for p in report.problems] == [("revision", rev.location)]
    assert "does not match its digest" in report.problems[0].message


@CORE
def test_check_reports_bad_registry_rows(repo):
    series = repo.registry.series("collection")
    meta = numpy.empty(2, dtype=object)
    meta[:] = [{"path": "../../escape", "schema": SCHEMA.dumps()}, {"schema": "nonsense"}]
    series.write({"label": ["evil", "broken"], "meta": meta})
    report = repo.check()
    assert sorted(p.path for p in report.problems) == ["collection/broken", "collection/evil"]
    assert all(p.kind == "registry" for p in report.problems)
    assert repo.merge() == []  # the registry can still be merged (nothing to merge here)


@CORE
def test_check_notes_harmless_things(srs, repo, reopen):
    repo.registry.changelog.log()  # the next creation starts from the leaf of now
    other = reopen()
    hidden = other.create_collection(SCHEMA, "hidden")
    repo.create_collection(SCHEMA, "empty")  # forks the registry
    (hidden / "s").write(frame(seed=3))
    srs.collection.changelog.pod.write("stray.txt", b"hello")
    (srs.collection / "s").delete("1970-01-01", "1970-01-01T00:00:10")
    repo.delete("clct")
    report = repo.check()
    assert report.ok, report
    text = "\n".join(report.notes)
    assert "registry: 2 unmerged branches" in text
    assert "'empty' has no revision yet" in text
    assert "3 unreferenced data file(s)" in text
    assert report.files == 3  # the hidden collection is checked too


@CORE
def test_check_command(srs, repo, capsys, monkeypatch):
    if not hasattr(repo.pod.path, "is_dir"):
        pytest.skip("the command line test uses a local folder")
    monkeypatch.delenv("LAKOTA_REPO", raising=False)
    uri = str(repo.pod.path)
    assert main(["-r", uri, "check"]) == 0
    assert capsys.readouterr().out.strip().endswith("data files: OK")
    path = stored_path(srs, "ts")
    repo.pod.rm(path)
    assert main(["-r", uri, "check"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"missing: File {repo.pod.path / path} is missing!")
    assert err.strip() == "Error: 1 problem(s) found"


@pytest.mark.pod_kinds("file")
def test_check_runs_on_a_repository_opened_fresh(srs, reopen):
    """Missing files are reported by a new Repo object, as by another process."""
    srs.pod.rm(stored_path(srs, "ts"))
    with pytest.raises(MissingDataError):
        (reopen() / "clct" / "s").frame()
    assert [p.kind for p in reopen().check().problems] == ["missing"]


@CORE
def test_same_values_with_different_codecs_get_their_own_files(repo, monkeypatch):
    """Numeric digests hashed the values only: a column "int | zstd" and a column "int"
    holding the same values shared one data file, unreadable with the second codec."""
    monkeypatch.setattr(settings, "embed_max_size", 0)
    values = numpy.arange(100) * 7
    for label, definition in (("zstd", "int | zstd"), ("blosc", "int")):
        clct = repo.create_collection(Schema(ts="int*", v=definition), label)
        (clct / "s").write({"ts": numpy.arange(100), "v": values})
    for label in ("zstd", "blosc"):
        assert (repo / label / "s").frame()["v"].tolist() == values.tolist()
    assert repo.check().ok


def test_digests_written_by_lakota_0_7_1_still_verify():
    """Default chains keep upstream's digests; explicit chains accept them on read."""
    values = numpy.arange(10)
    raw = hexdigest(values.tobytes())
    default, explicit = Codec("int"), Codec("int", "zstd")
    assert default.digest(values, default.encode(values)) == raw
    data = explicit.encode(values)
    assert explicit.digest(values, data) != raw
    assert explicit.matches(explicit.decode(data), data, raw)
    assert not explicit.matches(explicit.decode(data), data, hexdigest(b"other"))
