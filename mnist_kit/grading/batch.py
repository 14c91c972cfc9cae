"""Grade a whole class: resumable, in parallel worker processes, and in shards across machines.

The pieces `mnist-kit grade` (cli.py) puts together:

- `collect`: the submissions, de-duplicated, each with the sha256 of its bytes.
- `in_shard`: which of N shards a submission belongs to (a stable hash of its path).
- `already_graded`: what an existing gradebook holds for the same path *and* content.
- `grade_stream`: grade submissions in N worker processes and yield each result as it
  finishes. Only the caller (the main process) writes files.
- `merge_gradebooks`: combine the shards' gradebooks, refusing conflicting duplicates.

A worker process never outlives the grader by more than about a second: on Linux it asks
the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG), and a watchdog thread checks
its parent as well; either way it kills everything it started (the student's kernel included)
before exiting. It is also a "child subreaper", so a process a notebook leaves behind after
its kernel is stopped stays the worker's descendant and is killed after each submission.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

from mnist_kit.grading import processes
from mnist_kit.grading.report import read_gradebook
from mnist_kit.grading.results import GradeResult

__all__ = [
    "QueuedFile",
    "GraderFailure",
    "MergeConflict",
    "collect",
    "file_sha256",
    "in_shard",
    "already_graded",
    "grade_stream",
    "merge_gradebooks",
]

WORKER_ATTEMPTS = 2  # a submission whose worker process dies is tried once more in a fresh one


@dataclass(frozen=True)
class QueuedFile:
    """One notebook file queued for grading: `key` is its path as given (normalised), the
    gradebook's `submission` column."""

    key: str
    path: Path
    sha256: str  # "" when the file cannot be read (it then gets a "no such file" error row)


class GraderFailure(RuntimeError):
    """The grader itself failed (not a submission): the run stops with a non-zero exit code."""


class MergeConflict(ValueError):
    """The same submission appears in two gradebooks with different content or points."""


def file_sha256(path: Path) -> str:
    """The sha256 of the file's bytes, or "" if it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def collect(paths: Iterable[str | Path]) -> list[QueuedFile]:
    """The submissions in the order given, each file once (the first spelling of it is kept).

    They are graded in this order; the gradebook is sorted by path whatever the order.
    """
    seen: set[str] = set()
    keys: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw)
        key = str(path)
        same = os.path.realpath(path)
        if key in seen or same in seen:
            continue
        seen.update((key, same))
        keys.append((key, path))
    return [QueuedFile(key, path, file_sha256(path)) for key, path in keys]


def in_shard(key: str, index: int, count: int) -> bool:
    """Whether submission `key` belongs to shard `index` of `count` (1-based).

    The shard is a stable hash (sha256) of the path as given, not a position in the list: adding
    or removing a late submission never moves any other submission to another shard, so shards
    that already finished only have to grade what is new. Every shard must be given the same
    paths, spelled the same way (the same glob from the same folder).
    """
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count == index - 1


def already_graded(
    submissions: list[QueuedFile], existing: dict[str, list[dict]], assignment: str = ""
) -> tuple[list[QueuedFile], list[QueuedFile]]:
    """Split into (graded before, to grade): graded before means the same path, sha256 and
    (when given) assignment: a gradebook reused for another assignment grades everything."""
    done, todo = [], []
    for submission in submissions:
        rows = existing.get(submission.key)
        if rows and all(
            row.get("sha256") == submission.sha256
            and (not assignment or row.get("assignment") == assignment)
            for row in rows
        ):
            done.append(submission)
        else:
            todo.append(submission)
    return done, todo


# ---------------------------------------------------------------------------------- grading


def grade_stream(
    submissions: list[QueuedFile],
    grader_options: dict,
    jobs: int = 1,
    on_failure: Callable[[QueuedFile, str], None] | None = None,
) -> Iterator[tuple[QueuedFile, GradeResult]]:
    """Grade `submissions` in `jobs` worker processes, yielding (file, result) as each finishes.

    `grader_options` are `Grader`'s keyword arguments, `assignment` included; each worker
    builds its own Grader from them. (To grade in this process, call `Grader.grade`.) A
    submission whose worker process dies twice is not yielded: `on_failure` is told why.
    Raises GraderFailure when a worker cannot even build its Grader.
    """
    if not submissions:
        return
    pool = _Pool(grader_options, min(jobs, len(submissions)))
    try:
        yield from pool.run(submissions, on_failure)
    finally:
        pool.close()


class _Worker:
    def __init__(self, context, options: dict):
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(
            target=_worker_main, args=(child, options, os.getpid()), daemon=True
        )
        self.process.start()
        child.close()
        self.ready = False
        self.job: QueuedFile | None = None

    def stop(self, seconds: float = 5.0) -> None:
        if self.process.is_alive():
            self.process.terminate()  # SIGTERM: the worker kills its kernel and exits
            self.process.join(seconds)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(seconds)
        self.conn.close()


class _Pool:
    def __init__(self, options: dict, size: int):
        self.context = multiprocessing.get_context("spawn")
        self.options = options
        self.size = size
        self.workers: list[_Worker] = []
        self.deaths_at_start = 0

    def _spawn(self) -> None:
        self.workers.append(_Worker(self.context, self.options))

    def run(self, submissions, on_failure) -> Iterator[tuple[QueuedFile, GradeResult]]:
        pending = deque(submissions)
        attempts: dict[str, int] = {}
        for _ in range(self.size):
            self._spawn()
        while pending or any(w.job for w in self.workers):
            for worker in self.workers:
                if worker.ready and worker.job is None and pending:
                    worker.job = pending.popleft()
                    worker.conn.send((worker.job.key, str(worker.job.path)))
            waiting = [w.conn for w in self.workers] + [w.process.sentinel for w in self.workers]
            wait(waiting, timeout=5)
            for worker in list(self.workers):
                message = None
                try:
                    if worker.conn.poll():
                        message = worker.conn.recv()
                except (EOFError, OSError):
                    message = None
                if message is not None:
                    kind = message[0]
                    if kind == "ready":
                        worker.ready = True
                    elif kind == "failed":
                        raise GraderFailure(message[1])
                    elif kind == "result":
                        submission, worker.job = worker.job, None
                        yield submission, message[1]
                    continue
                if worker.process.is_alive():
                    continue
                # The worker died without a word: retry what it held, in a fresh worker.
                code = worker.process.exitcode
                worker.stop(0)
                self.workers.remove(worker)
                job = worker.job
                if job is None:
                    self.deaths_at_start += 1
                    if self.deaths_at_start > 2 * self.size:
                        raise GraderFailure(
                            f"grading worker processes keep dying (exit code {code})"
                        )
                else:
                    attempts[job.key] = attempts.get(job.key, 0) + 1
                    if attempts[job.key] < WORKER_ATTEMPTS:
                        pending.appendleft(job)
                    elif on_failure is not None:
                        on_failure(job, f"the grading process died twice (exit code {code})")
                if pending and len(self.workers) < self.size:
                    self._spawn()

    def close(self) -> None:
        for worker in self.workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 3
        for worker in self.workers:
            if worker.job is None:
                worker.process.join(max(0.0, deadline - time.monotonic()))
            worker.stop()
        self.workers = []


# ------------------------------------------------------------------------ the worker process

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _worker_main(conn, options: dict, parent: int) -> None:
    """A worker: build a Grader, then grade what the main process sends until told to stop."""
    _guard(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    try:
        from mnist_kit.grading.engine import Grader

        options = dict(options)
        grader = Grader(options.pop("assignment"), **options)
    except Exception as exc:  # noqa: BLE001 - reported to the main process as one line
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready",))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            break
        if job is None:
            break
        _key, path = job
        result = grader.grade(path)
        processes.kill_descendants()  # nothing of this submission may run on while the next is graded
        conn.send(("result", result))
    processes.kill_descendants()


def _guard(parent: int) -> None:
    """Make this worker (and all it started) end soon after the main process does."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
            libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    signal.signal(signal.SIGTERM, lambda *_: _die())
    if os.getppid() != parent:  # the parent died before the line above took effect
        _die()

    def watchdog() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                _die()

    threading.Thread(target=watchdog, name="mnist-kit-watchdog", daemon=True).start()


def _die() -> None:
    processes.kill_descendants()
    os._exit(1)


# ------------------------------------------------------------------------------- merging


def merge_gradebooks(paths: Iterable[str | Path]) -> dict[str, list[dict]]:
    """The rows of several gradebooks by submission; identical duplicates are kept once.

    Raises MergeConflict naming the submission when two gradebooks hold it with a different
    sha256 or different points, and FileNotFoundError for a gradebook that does not exist.
    """
    merged: dict[str, list[dict]] = {}
    source: dict[str, str] = {}
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no such gradebook: {path}")
        for key, rows in read_gradebook(path).items():
            if key not in merged:
                merged[key], source[key] = rows, str(path)
                continue
            if _fingerprint(merged[key]) != _fingerprint(rows):
                raise MergeConflict(
                    f"{key} is in {source[key]} and {path} with different "
                    + (
                        "contents (sha256)"
                        if {r["sha256"] for r in merged[key]} != {r["sha256"] for r in rows}
                        else "points"
                    )
                )
    return merged


def _fingerprint(rows: list[dict]) -> tuple:
    return tuple(
        (r["sha256"], r["assignment"], r["test"], r["points"], r["max_points"]) for r in rows
    )
