"""Work done ahead (``morphing.runtime.concurrency``): in helper threads, results in order, bounded look-ahead; in a
helper process, its result, its error, its end and its signals."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from morphing.runtime.concurrency import SpawnedWork, map_ahead


def test_results_come_in_order_whatever_finishes_first() -> None:
    first_may_finish = threading.Event()

    def work(item: int) -> int:
        if item == 0:
            first_may_finish.wait(10)  # item 0 finishes last
        else:
            first_may_finish.set()
        return item * item

    assert list(map_ahead(work, range(5), ahead=2)) == [0, 1, 4, 9, 16]


def test_at_most_ahead_items_are_taken_before_the_first_result() -> None:
    taken = []

    def items():
        for item in range(10):
            taken.append(item)
            yield item

    results = map_ahead(lambda item: item, items(), ahead=3, workers=1)
    assert next(results) == 0 and taken == [0, 1, 2]
    results.close()  # stopping early cancels what has not started


def test_an_error_in_the_work_reaches_the_consumer() -> None:
    def work(item: int) -> int:
        if item == 2:
            raise ValueError("bad item")
        return item

    results = map_ahead(work, range(4), ahead=2)
    assert [next(results), next(results)] == [0, 1]
    try:
        next(results)
    except ValueError as error:
        assert str(error) == "bad item"
    else:
        raise AssertionError("the error was lost")


# The helper process's work: module-level functions, so that they reach it by name.
def weighted_total(values: np.ndarray, weight: float) -> float:
    return float(values.sum() * weight)


def refuse(reason: str) -> None:
    raise ValueError(reason)


def end_abruptly() -> None:
    os._exit(3)


def session() -> int:
    return os.getsid(0)


def unpicklable() -> object:
    return lambda: None


def pause(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


class TestSpawnedWork:
    def test_returns_the_works_result_from_another_process(self) -> None:
        values = np.arange(1000, dtype=np.float64)
        work = SpawnedWork(weighted_total, values, 0.5)
        assert work.result() == values.sum() * 0.5
        assert work.finished  # ended
        assert work.pid != os.getpid()

    def test_the_works_error_is_raised_here(self) -> None:
        with pytest.raises(ValueError, match="no thanks"):
            SpawnedWork(refuse, "no thanks").result()

    def test_a_process_that_ends_without_a_result_is_an_error(self) -> None:
        with pytest.raises(RuntimeError, match="without a result"):
            SpawnedWork(end_abruptly).result()

    def test_a_stop_while_waiting_kills_the_process(self) -> None:
        work = SpawnedWork(pause, 30.0)

        def stop() -> None:
            raise KeyboardInterrupt

        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            work.result(stop, poll_seconds=0.05)
        assert time.monotonic() - started < 10
        assert work.finished  # killed

    @pytest.mark.skipif(not hasattr(os, "getsid"), reason="no POSIX sessions on this platform")
    def test_the_process_runs_in_a_session_of_its_own(self) -> None:
        # A terminal's Ctrl-C goes to the foreground process group: not to the helper.
        assert SpawnedWork(session).result() != os.getsid(0)

    def test_an_outcome_that_does_not_pickle_is_an_error(self) -> None:
        with pytest.raises(RuntimeError, match="could not be sent back"):
            SpawnedWork(unpicklable).result()


def chatty(value: int) -> int:
    print("a library that prints")
    return value + 1


def test_what_the_work_prints_does_not_spoil_the_result() -> None:
    assert SpawnedWork(chatty, 41).result() == 42
