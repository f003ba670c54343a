"""The shared thread pools: maps, background storage calls and deferred computing."""

from __future__ import annotations

import threading
import time

import pytest
from limits import THREAD_SECONDS, join

from lakota.utils import Background, compute_later, pooled_imap, pooled_map, settings


def current_thread_name(_: object = None) -> str:
    return threading.current_thread().name


def test_pooled_map_keeps_the_order_of_items():
    def slow_square(value: int) -> int:
        time.sleep(0.01 * (5 - value))
        return value * value

    assert pooled_map(slow_square, range(5)) == [0, 1, 4, 9, 16]
    assert pooled_map(slow_square, range(5), cpu=True) == [0, 1, 4, 9, 16]


@pytest.mark.parametrize("cpu, prefix", [(False, "lakota-io"), (True, "lakota-cpu")])
def test_each_kind_of_work_has_its_pool(cpu, prefix):
    names = pooled_map(current_thread_name, range(4), cpu=cpu)
    assert all(name.startswith(prefix) for name in names)


def test_threaded_false_runs_in_the_calling_thread():
    here = threading.current_thread().name
    assert pooled_map(current_thread_name, range(4), threaded=False) == [here] * 4
    assert list(pooled_imap(current_thread_name, range(4), threaded=False)) == [here] * 4


def test_the_threaded_setting_is_read_at_call_time(monkeypatch):
    monkeypatch.setattr(settings, "threaded", False)
    here = threading.current_thread().name
    assert pooled_map(current_thread_name, range(3), cpu=True) == [here] * 3
    assert compute_later(current_thread_name).result(THREAD_SECONDS) == here


def test_a_map_inside_a_worker_runs_inline():
    def nested(_: object) -> list[str]:
        outer = threading.current_thread().name
        inner = pooled_map(current_thread_name, range(3))
        return [name == outer for name in inner]

    assert pooled_map(nested, range(2), cpu=True) == [[True] * 3] * 2


def test_the_first_error_of_a_map_is_raised():
    def fails_on_three(value: int) -> int:
        if value == 3:
            raise KeyError("three")
        return value

    with pytest.raises(KeyError, match="three"):
        pooled_map(fails_on_three, range(6))


def test_background_calls_run_while_the_caller_goes_on_and_wait_joins_them():
    done: list[int] = []
    started = threading.Event()
    release = threading.Event()

    def blocking(value: int) -> None:
        started.set()
        release.wait(5)
        done.append(value)

    background = Background()
    background.submit(blocking, 1)
    assert started.wait(5)
    assert done == []  # submit returned while the call still runs
    release.set()
    background.wait()
    assert done == [1]


def test_background_waits_for_the_oldest_beyond_its_limit():
    running = []
    lock = threading.Lock()
    peak = [0]

    def tracked(_: int) -> None:
        with lock:
            running.append(1)
            peak[0] = max(peak[0], len(running))
        time.sleep(0.02)
        with lock:
            running.pop()

    background = Background(limit=2)
    for number in range(8):
        background.submit(tracked, number)
    background.wait()
    assert peak[0] <= 2


def test_background_raises_the_first_error_after_every_call_ended():
    ended = []

    def call(value: int) -> None:
        time.sleep(0.01 * value)
        ended.append(value)
        if value == 0:
            raise OSError("disk full")

    background = Background()
    for value in range(4):
        background.submit(call, value)
    with pytest.raises(OSError, match="disk full"):
        background.wait()
    assert sorted(ended) == [0, 1, 2, 3]


def test_background_accepts_calls_from_several_threads():
    results = []
    background = Background(limit=3)

    def producer(base: int) -> None:
        for offset in range(20):
            background.submit(results.append, base + offset)

    threads = [threading.Thread(target=producer, args=(base,)) for base in (0, 100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        join(thread)
    background.wait()
    assert sorted(results) == sorted(b + o for b in (0, 100, 200) for o in range(20))


def test_compute_later_runs_on_the_cores_and_keeps_errors():
    assert compute_later(current_thread_name).result(THREAD_SECONDS).startswith("lakota-cpu")
    future = compute_later(int, "not a number")
    with pytest.raises(ValueError):
        future.result(THREAD_SECONDS)


def test_max_threads_is_read_when_the_pool_is_used(monkeypatch):
    def thread_count(_: object) -> str:
        time.sleep(0.05)
        return threading.current_thread().name

    monkeypatch.setattr(settings, "max_threads", 3)
    assert len(set(pooled_map(thread_count, range(12)))) == 3
    monkeypatch.setattr(settings, "max_threads", 5)
    assert len(set(pooled_map(thread_count, range(20)))) == 5
