"""Work done ahead in helper threads, results in order: what the OpenCV render and the GIF writer share.

OpenCV's kernels and Pillow's quantiser release the GIL, so a frame can be
computed while the previous one is consumed. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["map_ahead"]

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_ahead(
    work: Callable[[Item], Result], items: Iterable[Item], ahead: int, workers: int | None = None
) -> Iterator[Result]:
    """``work(item)`` for each item, in order, with up to ``ahead`` of them submitted before the
    first is waited for, on ``workers`` threads (default ``ahead``). Unstarted work is cancelled
    when the consumer stops early."""
    with ThreadPoolExecutor(max_workers=workers or ahead) as pool:
        pending: list[Future[Result]] = []
        try:
            for item in items:
                pending.append(pool.submit(work, item))
                if len(pending) >= ahead:
                    yield pending.pop(0).result()
            while pending:
                yield pending.pop(0).result()
        finally:
            for future in pending:
                future.cancel()
