"""Long-lived background threads that run the playground's jobs one after another.

Training always happens on the same thread: a fresh thread per run made glibc give each
run's thread its own memory arena, and resident memory climbed for ~15 runs (470 -> 700 MB
for a 4x512 MLP in PyTorch) before levelling off; one reused thread stays flat after 3 runs.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Worker", "Job", "trainer", "painter"]


class Job:
    """One submitted call: wait on it with `wait()`, then read `.result` or `.error`."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    @property
    def finished(self) -> bool:
        return self.done.is_set()


class Worker:
    """A daemon thread that runs submitted jobs in order (a daemon, so it never delays exit)."""

    def __init__(self, name: str) -> None:
        self._queue: queue.Queue[Job] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> Job:
        job = Job(fn)
        self._queue.put(job)
        return job

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                job.result = job.fn()
            except BaseException as err:  # noqa: BLE001 - kept on the job; the thread lives on
                job.error = err
            finally:
                job.done.set()


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
