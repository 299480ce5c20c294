"""Work done ahead in helper threads (``morphing.threads``): results in order, bounded look-ahead."""

from __future__ import annotations

import threading

from morphing.threads import map_ahead


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
