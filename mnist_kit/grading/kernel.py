"""Run a notebook in its own kernel process, with a wall-clock limit, then run grader code in it.

Starting the kernel is one replaceable step, `KernelLauncher.start`: `LocalKernel` starts an
ordinary child process; a sandboxed launcher (sandbox/: bubblewrap, resource limits) can take
its place without touching the rest of the pipeline. What the notebook prints is bounded as it
arrives (output_limits.py).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import nbformat

from mnist_kit.grading import processes
from mnist_kit.grading.output_limits import (
    OUTPUT_CAP_CODE,
    OUTPUT_LIMIT_MB,
    bound_messages,
    capped_client_class,
)

__all__ = [
    "KernelLauncher",
    "LocalKernel",
    "RunLog",
    "run_notebook",
    "kernel_env",
    "CELL_NUMBER_KEY",
    "cell_number",
]

# Cell metadata holding a cell's number in the notebook as the student submitted it (1-based,
# every cell counted, as JupyterLab shows them), set before the grader drops cells; notes
# name cells by it.
CELL_NUMBER_KEY = "mnist_kit_cell_number"

# Environment for the student's kernel: quiet frameworks, reproducible hashing, and OpenMP
# threads that sleep instead of spinning while they wait (on a busy machine PyTorch's spinning
# threads otherwise make training several times slower).
QUIET_ENV = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PYTHONHASHSEED": "0",
    "PYTHONWARNINGS": "ignore",
    "KERAS_BACKEND": "tensorflow",
}
_SILENT = logging.getLogger("mnist_kit.grading.kernel")
_SILENT.addHandler(logging.NullHandler())
_SILENT.propagate = False

# Variables the student's kernel must not see (where the hidden tests live).
PRIVATE_ENV = ("MNIST_KIT_AUTOGRADER",)


class KernelLauncher(Protocol):
    """Starts and stops the kernel a submission runs in."""

    name: str

    def start(self, workdir: Path, env: dict[str, str]):
        """Start a kernel with `workdir` as its current folder; return its KernelManager."""

    def stop(self, manager) -> None:
        """Stop the kernel and everything it started."""


class LocalKernel:
    """The kernel as a plain child process of the grader (no sandbox)."""

    name = "local"

    def __init__(self, kernel_name: str = "python3"):
        self.kernel_name = kernel_name

    def start(self, workdir: Path, env: dict[str, str]):
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        # An async manager: nbclient's time limits only work with the async client it hands out.
        manager = AsyncKernelManager(kernel_name=self.kernel_name)
        # The kernel process's own stdout/stderr (C-level library logs) go to a file next to the
        # scratch copy, not to the grader's terminal; cell outputs travel over Jupyter's channels.
        log = open(workdir.parent / "kernel.log", "ab")  # noqa: SIM115 - closed in stop()
        run_sync(manager.start_kernel)(
            cwd=str(workdir),
            env=env,
            stdout=log,
            stderr=log,
            extra_arguments=["--HistoryManager.hist_file=:memory:"],
        )
        manager._mnist_kit_log = log
        return manager

    def stop(self, manager) -> None:
        from jupyter_core.utils import run_sync

        try:
            if run_sync(manager.is_alive)():
                run_sync(manager.shutdown_kernel)(now=True)
        finally:
            run_sync(manager.cleanup_resources)()
            log = getattr(manager, "_mnist_kit_log", None)
            if log is not None:
                log.close()


def kernel_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The grader's environment, minus private variables, plus quiet and reproducible settings."""
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
    env.update(QUIET_ENV)
    env.update(extra or {})
    return env


KILL_GRACE = 15.0  # seconds a cell may ignore its interrupt before the kernel is killed


@dataclass
class RunLog:
    """What happened while the notebook ran."""

    seconds: float = 0.0
    timed_out: bool = False
    kernel_died: bool = False
    errors: list[str] = field(default_factory=list)  # "cell 4: NameError: name 'x' is not defined"
    finish_error: str | None = None  # the grader's own code after the notebook failed
    cell_seconds: dict[str, float] = field(default_factory=dict)  # "cell 7": 41.2, "after": 9.8
    exit_reason: str | None = None  # why the kernel died, from the launcher (sandbox.exit_reason)
    output_cut_mb: float | None = None  # set when the notebook printed more than this
    finished: bool = False  # the grader's code after the notebook ran to its end
    killed_after_timeout: bool = False  # a cell ignored its interrupt; the kernel was killed


def _responds(client, index: int) -> bool:
    """Does the kernel run a trivial cell within KILL_GRACE seconds (after an interrupt)?"""
    cell = _code_cell("pass")
    client.timeout = int(KILL_GRACE)
    started = time.monotonic()
    client.execute_cell(cell, index)
    return time.monotonic() - started < KILL_GRACE - 0.5


def _kill_kernel(manager) -> None:
    """SIGKILL the process the launcher started (the kernel, or bwrap, which takes it along)."""
    pid = getattr(getattr(manager, "provisioner", None), "pid", None)
    if pid:
        processes.kill(pid)


def cell_number(cell, index: int) -> int:
    """The number notes give `cell`, found at `index` (0-based) of the notebook that runs:
    its CELL_NUMBER_KEY when the grader set one, else its position there, 1-based."""
    number = cell.get("metadata", {}).get(CELL_NUMBER_KEY)
    if isinstance(number, int) and not isinstance(number, bool) and number > 0:
        return number
    return index + 1


def _code_cell(source: str):
    return nbformat.v4.new_code_cell(source)


def _error_of(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            if output.get("ename") == "SystemExit":
                return "SystemExit: the notebook called sys.exit() or raised SystemExit (ignored by Jupyter; the notebook went on)"
            value = str(output.get("evalue", "")).strip().splitlines()
            text = f"{output.get('ename', 'Error')}: {value[0] if value else ''}".strip()
            return text if len(text) <= 300 else text[:297] + "..."
    return None


def run_notebook(
    nb,
    workdir: Path,
    *,
    time_limit: float,
    before: str = "",
    after: str = "",
    after_limit: float = 300.0,
    launcher: KernelLauncher | None = None,
    env: dict[str, str] | None = None,
) -> RunLog:
    """Run `before`, the notebook's code cells and then `after` in one kernel; never raises for cell errors.

    The notebook's cells share `time_limit` seconds, counted from when the kernel is ready and
    `before` has run (start-up is not the student's time); when it runs out the kernel is
    interrupted, the remaining cells are skipped, and `after` still runs (with `after_limit`).
    A cell that ignores the interrupt for KILL_GRACE seconds has its kernel killed. Outputs
    beyond OUTPUT_LIMIT_MB are dropped as they arrive. Errors name cells by `cell_number`: the
    student's own numbers when `drop_graded_tests` recorded them, else positions in `nb`.
    """
    from nbclient.exceptions import DeadKernelError

    launcher = launcher or LocalKernel()
    started = time.monotonic()
    steps = _steps(nb, before, after)
    manager = launcher.start(workdir, env if env is not None else kernel_env())
    run = _Run(_client(steps, nb.metadata, manager), manager, time_limit, after_limit)
    try:
        with run.client.setup_kernel():
            run.cells(steps)
    except DeadKernelError:
        run.kernel_died()
    finally:
        if run.client.kc is not None:
            run.client.kc.stop_channels()
        launcher.stop(manager)
        run.log.seconds = round(time.monotonic() - started, 2)
    return run.finish()


def _steps(nb, before: str, after: str) -> list[tuple[int | str, Any]]:
    """("before", cell), then (its number, cell) for each code cell of `nb`, then ("after", cell)."""
    student = [
        (cell_number(c, i), c)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and c.source.strip()
    ]
    steps = [("before", _code_cell(OUTPUT_CAP_CODE + before))]
    steps += [(number, _code_cell(cell.source)) for number, cell in student]
    return steps + ([("after", _code_cell(after))] if after else [])


def _client(steps: list[tuple[int | str, Any]], metadata, manager):
    """The notebook client that runs `steps` on `manager`'s kernel, with bounded messages."""
    runner_nb = nbformat.v4.new_notebook(cells=[cell for _, cell in steps])
    runner_nb.metadata = metadata
    bound_messages(manager)
    return capped_client_class()(
        runner_nb,
        km=manager,
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": "TimeoutError",
            "evalue": "the notebook ran out of time",
            "traceback": [],
        },
        record_timing=False,
        log=_SILENT,  # time-outs are reported in RunLog, not as log lines on the grader's stderr
    )


class _Run:
    """One notebook running cell by cell in one kernel: its clock, its watchdog and its log."""

    def __init__(self, client, manager, time_limit: float, after_limit: float):
        self.client, self.manager = client, manager
        self.time_limit, self.after_limit = time_limit, after_limit
        self.log = RunLog()
        self.deadline = math.inf  # set once, when `before` has run: the student's time starts then
        self.killed = False  # the watchdog (or an ignored interrupt) killed the kernel

    def cells(self, steps: list[tuple[int | str, Any]]) -> None:
        """Run each step in turn; skip the student's cells once their time is up."""
        for index, (number, cell) in enumerate(steps):
            if number == "after" and self.log.timed_out and not _responds(self.client, index):
                self.kill()  # the interrupt was ignored: the kernel cannot run the grader's code
                self.log.kernel_died = self.log.killed_after_timeout = True
                return
            if number in ("before", "after"):
                self.client.timeout = int(self.after_limit)
            else:
                remaining = self.deadline - time.monotonic()
                if remaining < 1:
                    self.log.timed_out = True
                    continue
                self.client.timeout = max(1, math.ceil(remaining))
            self.cell(index, number, cell)

    def cell(self, index: int, number: int | str, cell) -> None:
        """Run one cell, with a watchdog for a cell that ignores the interrupt at its time-out."""
        started = time.monotonic()
        watchdog = threading.Timer(self.client.timeout + KILL_GRACE, self.kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            self.client.execute_cell(cell, index)
        finally:
            watchdog.cancel()
        if number == "before":
            self.deadline = time.monotonic() + self.time_limit
        self.record(number, cell, started)

    def record(self, number: int | str, cell, started: float) -> None:
        """Note the cell's time and how it ended; drop its outputs (keeps memory flat)."""
        log = self.log
        label = number if isinstance(number, str) else f"cell {number}"
        log.cell_seconds[label] = round(time.monotonic() - started, 2)
        error = _error_of(cell)
        cell.outputs = []  # the grader needs none of them
        if number == "after":
            log.finish_error = error
            log.finished = True
        elif time.monotonic() - started >= self.client.timeout - 0.5:  # stopped by the limit
            log.timed_out = True
            log.errors.append(
                f"cell {number}: stopped when the notebook ran out of time ({self.time_limit:.0f} s)"
            )
        elif error:
            where = "grader set-up" if number == "before" else f"cell {number}"
            log.errors.append(f"{where}: {error}")

    def kill(self) -> None:
        self.killed = True
        _kill_kernel(self.manager)

    def kernel_died(self) -> None:
        self.log.kernel_died = True
        if self.killed:
            self.log.killed_after_timeout = self.log.timed_out = True

    def finish(self) -> RunLog:
        """The log, with why the kernel died (from the launcher) and whether output was cut."""
        if self.log.kernel_died and not self.log.killed_after_timeout:
            from mnist_kit.grading.sandbox.launcher import exit_reason

            self.log.exit_reason = exit_reason(self.manager)
        if self.client.output_cut:
            self.log.output_cut_mb = OUTPUT_LIMIT_MB
        return self.log
