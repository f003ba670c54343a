"""`Collection.to_dask` on every storage kind, and concurrent writers on a dask LocalCluster."""

from __future__ import annotations

import numpy
import pytest

from lakota import Repo, Schema
from lakota.daskio import PROFILER_OFF, local_cluster, write_series
from lakota.pod import FilePOD
from lakota.utils import digest_path

pandas = pytest.importorskip("pandas")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

SCHEMA = Schema(ts="timestamp*", value="float", name="str")
WAIT = 120  # seconds: a cluster task that takes longer has hung
DAY = numpy.timedelta64(1, "D")
ORIGIN = numpy.datetime64("2024-01-01", "s")


def days(first: int, count: int) -> numpy.ndarray:
    return ORIGIN + (numpy.arange(count) + first) * DAY


def data(first: int, count: int, factor: float = 1.0, name: str = "x") -> dict:
    return {
        "ts": days(first, count),
        "value": numpy.arange(count) * factor,
        "name": [f"{name}{i}" for i in range(count)],
    }


def expected(clct, labels, **kwargs) -> pandas.DataFrame:
    """What to_dask should give: the series frames, labelled and indexed by the first index."""
    parts = []
    for label in labels:
        df = clct.series(label).df(**kwargs).set_index(clct.schema.idx[0])
        df.insert(0, "label", label)
        parts.append(df)
    return pandas.concat(parts)


def same(found: pandas.DataFrame, wanted: pandas.DataFrame) -> None:
    pandas.testing.assert_frame_equal(found, wanted, check_dtype=False)
    assert found.index.dtype == wanted.index.dtype


@pytest.fixture
def weather(repo):
    return make_weather(repo)


def make_weather(repo):
    """Three overlapping series; "b" is made of two commits."""
    clct = repo.create_collection(SCHEMA, "weather")
    clct.series("a").write(data(0, 10, 1.0, "a"))
    clct.series("b").write(data(5, 10, 2.0, "b"))
    clct.series("b").write(data(15, 5, 3.0, "bb"))
    clct.series("c").write(data(3, 4, -1.0, "c"))
    return clct


def memory_collection(schema: Schema = SCHEMA):
    return Repo("memory://").create_collection(schema, "clct")


# --- reading -------------------------------------------------------------------------------


def test_to_dask_reads_every_series(weather):
    ddf = weather.to_dask()
    assert ddf.npartitions == 3
    assert not ddf.known_divisions  # the series overlap in time
    assert list(ddf.columns) == ["label", "value", "name"]
    same(ddf.compute(), expected(weather, ["a", "b", "c"]))


def test_filters_match_series_frames():
    weather = make_weather(Repo("memory://"))
    rev = weather.changelog.log()[-2]
    for kwargs in (
        {"start": ORIGIN + 4 * DAY, "stop": ORIGIN + 8 * DAY},
        {"start": "2024-01-05", "stop": "2024-01-09", "closed": "b"},
        {"stop": "2024-01-09", "closed": "n"},
        {"before": rev.epoch},
    ):
        same(weather.to_dask(**kwargs).compute(), expected(weather, ["a", "b", "c"], **kwargs))
    found = weather.to_dask(labels=["c", "a"], select="value").compute()
    same(found, expected(weather, ["c", "a"], select=["ts", "value"]))


def test_one_series_has_known_divisions():
    clct = memory_collection()
    clct.series("a").write(data(0, 10))
    ddf = clct.to_dask(start=ORIGIN + 2 * DAY)
    assert ddf.divisions == (pandas.Timestamp("2024-01-03"), pandas.Timestamp("2024-01-10"))
    assert ddf.loc["2024-01-04":"2024-01-05"].compute()["value"].tolist() == [3.0, 4.0]


def test_disjoint_series_are_sorted_by_range_with_divisions():
    clct = memory_collection()
    clct.series("late").write(data(20, 5, 1.0))
    clct.series("early").write(data(0, 5, 2.0))
    ddf = clct.to_dask()
    assert ddf.divisions == tuple(
        pandas.Timestamp(day) for day in ("2024-01-01", "2024-01-21", "2024-01-25")
    )
    same(ddf.compute(), expected(clct, ["early", "late"]))


def test_a_shared_bound_keeps_divisions_only_if_one_side_excludes_it():
    clct = memory_collection()
    clct.series("a").write(data(0, 3), stop=ORIGIN + 3 * DAY, closed="l")
    clct.series("b").write(data(3, 3))
    assert clct.to_dask().known_divisions
    clct.series("a").write(data(1, 3), start=ORIGIN + DAY, stop=ORIGIN + 3 * DAY, closed="b")
    assert not clct.to_dask().known_divisions


def test_long_series_are_split_along_their_segments():
    clct = memory_collection()
    srs = clct.series("s")
    for chunk in range(4):
        srs.write(data(chunk * 10, 10, float(chunk)))
    assert clct.to_dask().npartitions == 1
    ddf = clct.to_dask(partition_size=20)
    assert ddf.npartitions == 2
    assert ddf.divisions == (ORIGIN, ORIGIN + 20 * DAY, ORIGIN + 39 * DAY)
    same(ddf.compute(), expected(clct, ["s"]))
    assert clct.to_dask(partition_size=1).npartitions == 4


def test_multi_column_index():
    clct = memory_collection(Schema(day="date*", city="str*", value="float"))
    clct.series("s").write(
        {
            "day": ["2024-01-01", "2024-01-01", "2024-01-02"],
            "city": ["a", "b", "a"],
            "value": [1, 2, 3],
        }
    )
    ddf = clct.to_dask(start=("2024-01-01", "b"))
    assert ddf.known_divisions
    found = ddf.compute()
    assert found["city"].tolist() == ["b", "a"]
    assert found.index.tolist() == [pandas.Timestamp("2024-01-01"), pandas.Timestamp("2024-01-02")]


def test_other_dtypes_and_a_renamed_label_column():
    clct = memory_collection(Schema(key="int*", label="str", obj="O"))
    clct.series("s").write({"key": [1, 2], "label": ["x", "y"], "obj": [{"a": 1}, [2]]})
    with pytest.raises(ValueError, match="column named 'label'"):
        clct.to_dask()
    found = clct.to_dask(label_column="series").compute()
    assert found.columns.tolist() == ["series", "label", "obj"]
    assert found["obj"].tolist() == [{"a": 1}, [2]]
    assert found.index.tolist() == [1, 2]


def test_empty_results_keep_the_columns():
    clct = memory_collection()
    assert list(clct.to_dask().compute().columns) == ["label", "value", "name"]
    clct.series("a").write(data(0, 3))
    empty = clct.to_dask(start="2030-01-01").compute()
    assert empty.empty and list(empty.columns) == ["label", "value", "name"]


def test_bad_arguments_raise():
    clct = memory_collection()
    clct.series("a").write(data(0, 3))
    with pytest.raises(KeyError, match="Series not found: 'nope'"):
        clct.to_dask(labels=["a", "nope"])
    with pytest.raises(TypeError, match="labels must be a list"):
        clct.to_dask(labels="a")
    with pytest.raises(KeyError, match="Unknown column"):
        clct.to_dask(select=["nope"])
    with pytest.raises(ValueError, match="partition_size"):
        clct.to_dask(partition_size=0)


def test_building_the_graph_reads_no_data(tmp_path, monkeypatch):
    """Only the changelog and commit are read until compute; projections read less."""
    clct = Repo(str(tmp_path / "repo")).create_collection(SCHEMA, "clct")
    rng = numpy.random.default_rng(1)
    for label in ("a", "b"):
        clct.series(label).write(
            {"ts": days(0, 500), "value": rng.random(500), "name": rng.random(500).astype(str)}
        )
    commit = clct.commit()
    by_column = {
        name: {digest_path(d) for d in commit.digest[name].tolist()} - _embedded(commit)
        for name in SCHEMA
    }
    assert len(by_column["value"]) == len(by_column["name"]) == 2  # stored, not embedded
    reads: list[str] = []
    original = FilePOD._read

    def counting(pod, parts):
        reads.append("/".join(parts))
        return original(pod, parts)

    monkeypatch.setattr(FilePOD, "_read", counting)
    data_paths = set().union(*by_column.values())
    ddf = clct.to_dask()
    assert not data_paths & set(reads)
    ddf[["value"]].compute()
    assert by_column["value"] <= set(reads)
    assert not by_column["name"] & set(reads)
    ddf.compute()
    assert by_column["name"] <= set(reads)


def _embedded(commit) -> set[str]:
    return {digest_path(d) for d in commit.embedded}


# --- a cluster of worker processes -----------------------------------------------------------


@pytest.fixture(scope="module")
def client(s3_server, tmp_path_factory):
    """Two worker processes, started once the S3 test settings are in the environment."""
    cluster = local_cluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        local_directory=str(tmp_path_factory.mktemp("dask")),
    )
    with cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


def test_workers_read_partitions_from_a_folder(client, tmp_path):
    clct = Repo(str(tmp_path / "repo")).create_collection(SCHEMA, "clct")
    for n, label in enumerate("abcd"):
        clct.series(label).write(data(n, 6, float(n), label))
    ddf = clct.to_dask()
    found = client.compute(ddf).result(timeout=WAIT)
    same(found, expected(clct, list("abcd")))
    assert client.compute(ddf.value.sum()).result(timeout=WAIT) == sum(15.0 * n for n in range(4))


@pytest.mark.parametrize("storage", ["file", "s3"])
def test_concurrent_writers_then_merge(client, storage, tmp_path, s3_server, s3_bucket):
    uri = s3_server.uri(s3_bucket) if storage == "s3" else str(tmp_path / "repo")
    clct = Repo(uri).create_collection(SCHEMA, "clct")
    clct.series("seed").write(data(0, 2))
    labels = [f"s{n}" for n in range(8)]
    payloads = [data(n, 20, float(n), label) for n, label in enumerate(labels)]
    futures = client.map(write_series, [uri] * 8, ["clct"] * 8, labels, payloads)
    distributed.wait(futures, timeout=WAIT)
    assert client.gather(futures) == [20] * 8
    clct.merge()
    clct.refresh()
    assert len(clct.changelog.heads()) == 1
    reopened = Repo(uri).collection("clct")
    assert reopened.ls() == sorted(["seed", *labels])
    for label, payload in zip(labels, payloads):
        frame = reopened.series(label).frame()
        assert frame["value"].tolist() == payload["value"].tolist()
        assert frame["name"].tolist() == payload["name"]
    found = reopened.to_dask().compute(scheduler="threads")
    assert found.groupby("label").size().to_dict() == {"seed": 2, **dict.fromkeys(labels, 20)}


def test_workers_read_partitions_from_s3(client, s3_server, s3_bucket):
    clct = Repo(s3_server.uri(s3_bucket)).create_collection(SCHEMA, "clct")
    clct.series("a").write(data(0, 6))
    same(client.compute(clct.to_dask()).result(timeout=WAIT), expected(clct, ["a"]))


def _profiling(dask_worker) -> bool:
    """Whether a worker samples its threads' stacks (the Python 3.11 deadlock risk)."""
    return "profile" in dask_worker.periodic_callbacks


def test_worker_processes_run_without_the_profiler(client):
    assert set(client.run(_profiling, wait=True).values()) == {False}


def test_local_cluster_threads_run_without_the_profiler():
    import dask

    with dask.config.set({"distributed.worker.profile.enabled": True}):
        with local_cluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
            workers = list(cluster.workers.values())
            assert [_profiling(worker) for worker in workers] == [False]
        with distributed.LocalCluster(
            n_workers=1, processes=False, dashboard_address=None
        ) as plain:  # the control: the configuration alone turns the profiler on
            assert [_profiling(worker) for worker in plain.workers.values()] == [True]
    assert PROFILER_OFF == {"distributed.worker.profile.enabled": False}


def test_the_test_session_turns_the_profiler_off():
    """conftest.py: every cluster a test starts, by any route, runs without the profiler."""
    import dask

    assert dask.config.get("distributed.worker.profile.enabled") is False
