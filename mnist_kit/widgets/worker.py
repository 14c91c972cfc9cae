"""Long-lived background threads that run the playground's jobs one after another.

Training always happens on the same thread: a fresh thread per run made glibc give each
run's thread its own memory arena, and resident memory climbed for ~15 runs (470 -> 700 MB
for a 4x512 MLP in PyTorch) before levelling off; one reused thread stays flat after 3 runs.
Each job is a `concurrent.futures.Future`: `done()`, `result()`, `exception()`, `wait()`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

__all__ = ["Worker", "trainer", "painter"]


class Worker:
    """A daemon thread that runs submitted jobs in order (a daemon, so it never delays exit).

    Not a `ThreadPoolExecutor(max_workers=1)`: Python joins an executor's thread at exit,
    so a kernel shut down mid-training would wait for the whole run to end.
    """

    def __init__(self, name: str) -> None:
        self._queue: queue.Queue[tuple[Future, Callable[[], Any]]] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future:
        """Queue `fn()` to run after the jobs before it; its Future holds the result or error."""
        future: Future = Future()
        self._queue.put((future, fn))
        return future

    def _loop(self) -> None:
        while True:
            future, fn = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            try:
                future.set_result(fn())
            except BaseException as err:  # noqa: BLE001 - kept on the future; the thread lives on
                future.set_exception(err)


_LOCK = threading.Lock()
_WORKERS: dict[str, Worker] = {}


def _shared(name: str) -> Worker:
    with _LOCK:
        if name not in _WORKERS:
            _WORKERS[name] = Worker(name)
        return _WORKERS[name]


def trainer() -> Worker:
    """The process's one training thread (data loading, training, estimates)."""
    return _shared("mnist-kit-train")


def painter() -> Worker:
    """The process's one display thread (progress, curves, result panels)."""
    return _shared("mnist-kit-display")
