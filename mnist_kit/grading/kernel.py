"""Run a notebook in its own kernel process, with a wall-clock limit, then run grader code in it.

Starting the kernel is one replaceable step, `KernelLauncher.start`: `LocalKernel` starts an
ordinary child process; a sandboxed launcher (bubblewrap, resource limits) can take its
place without touching the rest of the pipeline.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import nbformat

__all__ = ["KernelLauncher", "LocalKernel", "RunLog", "run_notebook", "kernel_env"]

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


@dataclass
class RunLog:
    """What happened while the notebook ran."""

    seconds: float = 0.0
    timed_out: bool = False
    kernel_died: bool = False
    errors: list[str] = field(default_factory=list)  # "cell 4: NameError: name 'x' is not defined"
    finish_error: str | None = None  # the grader's own code after the notebook failed
    cell_seconds: dict[str, float] = field(default_factory=dict)  # "cell 7": 41.2, "after": 9.8


def _code_cell(source: str):
    return nbformat.v4.new_code_cell(source)


def _error_of(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
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

    The notebook's cells share `time_limit` seconds; when it runs out the kernel is
    interrupted, the remaining cells are skipped, and `after` still runs (with `after_limit`).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    launcher = launcher or LocalKernel()
    log = RunLog()
    started = time.monotonic()
    student = [
        (i + 1, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()
    ]
    steps = ([("before", _code_cell(before))] if before else []) + [
        (n, _code_cell(c.source)) for n, c in student
    ]
    steps += [("after", _code_cell(after))] if after else []
    runner_nb = nbformat.v4.new_notebook(cells=[cell for _, cell in steps])
    runner_nb.metadata = nb.metadata
    manager = launcher.start(workdir, env if env is not None else kernel_env())
    client = NotebookClient(
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
    deadline = started + time_limit
    try:
        with client.setup_kernel():
            for index, (number, cell) in enumerate(steps):
                if number == "after":
                    client.timeout = int(after_limit)
                else:
                    remaining = deadline - time.monotonic()
                    if remaining < 1:
                        log.timed_out = True
                        continue
                    client.timeout = max(1, math.ceil(remaining))
                cell_started = time.monotonic()
                client.execute_cell(cell, index)
                label = number if isinstance(number, str) else f"cell {number}"
                log.cell_seconds[label] = round(time.monotonic() - cell_started, 2)
                error = _error_of(cell)
                cell.outputs = []  # the grader needs none of them; keeps memory flat
                if number == "after":
                    log.finish_error = error
                elif (
                    time.monotonic() - cell_started >= client.timeout - 0.5
                ):  # stopped by the limit
                    log.timed_out = True
                    log.errors.append(
                        f"cell {number}: stopped when the notebook ran out of time ({time_limit:.0f} s)"
                    )
                elif error:
                    where = "grader set-up" if number == "before" else f"cell {number}"
                    log.errors.append(f"{where}: {error}")
    except DeadKernelError:
        log.kernel_died = True
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
        launcher.stop(manager)
        log.seconds = round(time.monotonic() - started, 2)
    return log
