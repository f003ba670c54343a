"""Push and pull: data lands before revisions, so an interrupted pull is harmless."""

import numpy
import pytest

from lakota import MemPOD, Repo, Schema

SCHEMA = Schema(k="int*", v="float")


class FlakyPOD(MemPOD):
    """A memory POD whose reads fail after a given number of them."""

    def __init__(self, *args, reads_left: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reads_left = [reads_left]

    def _cd(self, parts):
        sub = super()._cd(parts)
        sub.__class__ = FlakyPOD  # MemPOD builds plain MemPODs for sub-folders
        sub.reads_left = self.reads_left
        return sub

    def _read(self, parts):
        if self.reads_left[0] <= 0:
            raise ConnectionError("link down")
        self.reads_left[0] -= 1
        return super()._read(parts)


def remote_with_data(reads_left: int) -> Repo:
    remote = Repo(pod=FlakyPOD(".", reads_left=10**9))
    collection = remote.create_collection(SCHEMA, "c")
    rng = numpy.random.default_rng(0)
    for k in range(5):  # random values: each series gets data files of its own
        (collection / f"s{k}").write({"k": numpy.arange(2000), "v": rng.normal(size=2000)})
    remote.pod.reads_left[0] = reads_left
    return remote


def readable_state(repo: Repo) -> dict:
    """Every series of a fresh Repo object on the same storage, read completely."""
    fresh = Repo(pod=repo.pod)
    return {
        (clct.label, label): (clct / label).frame()["v"].tolist()
        for clct in fresh
        for label in clct.ls()
    }


def reads_of_a_full_pull() -> int:
    remote = remote_with_data(10**9)
    Repo().pull(remote)
    return 10**9 - remote.pod.reads_left[0]


@pytest.mark.parametrize("share", [0, 0.2, 0.4, 0.6, 0.8, 0.95])
def test_interrupted_pull_leaves_a_readable_repo_and_a_rerun_completes(share):
    remote = remote_with_data(int(reads_of_a_full_pull() * share))
    local = Repo()
    with pytest.raises(ConnectionError):
        local.pull(remote)
    readable_state(local)  # never a revision that points to missing data
    remote.pod.reads_left[0] = 10**9
    local.pull(remote)
    assert readable_state(local) == readable_state(remote)


def test_pulling_twice_changes_nothing():
    remote = remote_with_data(10**9)
    local = Repo()
    local.pull(remote)
    files = sorted(local.pod.walk())
    local.pull(remote)
    assert sorted(local.pod.walk()) == files
    assert readable_state(local) == readable_state(remote)


def test_pull_into_a_collection_of_another_schema_is_refused():
    remote = remote_with_data(10**9)
    local = Repo()
    local.create_collection(Schema(k="int*", v="int"), "c")
    with pytest.raises(ValueError, match="Unable to sync collection 'c'"):
        local.pull(remote)
    assert (local / "c").schema == Schema(k="int*", v="int")


def test_pull_from_something_that_is_not_a_repo():
    with pytest.raises(TypeError, match="needs a Repo"):
        Repo().pull("memory://")
