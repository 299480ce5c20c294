"""Work done ahead: in helper threads, results in order (what the OpenCV render and the GIF writer
share), or in a helper process.

OpenCV's kernels and Pillow's quantiser release the GIL, so a frame can be
computed while the previous one is consumed. Work made of many small numpy
operations does not gain from a thread while another thread runs Python (an
import): each operation waits for the GIL. ``SpawnedWork`` runs such work in
a fresh process instead. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import atexit
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

__all__ = ["SpawnedWork", "map_ahead"]

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


class SpawnedWork(Generic[Result]):
    """``work(*arguments)`` in a fresh Python process, from now on; ``result`` waits for it.

    ``work`` must be a module-level function; it and its arguments are
    pickled to the process's standard input by a helper thread, so that
    starting costs this thread a few milliseconds whatever their size. The
    process runs in a session of its own, so a terminal's Ctrl-C (sent to
    the foreground process group) reaches only this process, which decides;
    the helper is killed when no one waits for its result any more, and it
    says nothing (its standard error is discarded: what goes wrong there
    shows as ``RuntimeError`` here, and the caller can do the work itself).
    """

    def __init__(self, work: Callable[..., Result], *arguments: Any) -> None:
        separate = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt" else {
            "start_new_session": True}
        self._process = subprocess.Popen(
            [sys.executable, "-c", _HELPER_CODE, str(Path(__file__).resolve().parent.parent)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, **separate,
        )
        self._reply: list[bytes] = []
        self._threads = [
            threading.Thread(target=_write_quietly, args=(self._process.stdin, (work, arguments)),
                             name="send to helper", daemon=True),
            threading.Thread(target=lambda: self._reply.append(self._process.stdout.read()),
                             name="read from helper", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        atexit.register(self.close)  # a run that ends early (an error, Ctrl-C) does not wait for the helper

    @property
    def pid(self) -> int:
        """The helper process's id."""
        return self._process.pid

    @property
    def finished(self) -> bool:
        """Whether the helper process has ended (with its result, or killed)."""
        return self._process.poll() is not None

    def result(self, check: Callable[[], None] | None = None, poll_seconds: float = 0.1) -> Result:
        """The work's result, or its exception raised here (``RuntimeError`` when the process gave
        none); ``check`` is called every ``poll_seconds`` while waiting, and when it raises, the
        process is killed and that is raised."""
        reading = self._threads[1]
        try:
            while reading.is_alive():
                reading.join(poll_seconds)
                if check is not None and reading.is_alive():
                    check()
        finally:
            self.close()
        try:
            succeeded, outcome = pickle.loads(self._reply[0])
        except Exception:  # noqa: BLE001 - nothing, or not a whole reply: the helper failed
            raise RuntimeError(f"the helper process ended without a result (exit status {self._process.returncode})"
                               ) from None
        if not succeeded:
            raise outcome
        return outcome

    def close(self) -> None:
        """Stop the process if it still runs (again: nothing)."""
        atexit.unregister(self.close)
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()


_HELPER_CODE = "import sys; sys.path.insert(0, sys.argv[1]); from morphing.runtime.concurrency import _serve; _serve()"
"""What the helper process runs: ``morphing`` importable from where this one's is, then ``_serve``."""


def _write_quietly(stream: IO[bytes], message: object) -> None:
    """Pickle ``message`` to ``stream`` and close it; nothing if the other end has gone."""
    try:
        with stream:
            stream.write(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        pass


def _serve() -> None:
    """In the helper process: ``(work, arguments)`` from standard input; ``(True, result)`` or
    ``(False, exception)`` to standard output; silent if the parent has gone."""
    work, arguments = pickle.load(sys.stdin.buffer)
    replies = sys.stdout.buffer
    sys.stdout = sys.stderr  # anything the work prints must not mix with the reply
    try:
        message = (True, work(*arguments))
    except Exception as error:  # noqa: BLE001 - sent to the parent, raised there
        message = (False, error)
    try:
        reply = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:  # noqa: BLE001 - an outcome that does not pickle
        reply = pickle.dumps((False, RuntimeError(f"the helper's outcome could not be sent back: {error}")))
    try:
        replies.write(reply)
        replies.flush()
    except OSError:
        pass
