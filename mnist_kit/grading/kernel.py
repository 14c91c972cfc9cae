"""Run a notebook in its own kernel process, with a wall-clock limit, then run grader code in it.

Starting the kernel is one replaceable step, `KernelLauncher.start`: `LocalKernel` starts an
ordinary child process; a sandboxed launcher (bubblewrap, resource limits) can take its
place without touching the rest of the pipeline.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import nbformat

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


OUTPUT_LIMIT_MB = 20  # printed/displayed output kept per notebook; the rest is dropped unread
MESSAGE_LIMIT_MB = 32  # larger kernel messages are refused by zmq before they reach the grader
QUEUE_MESSAGES = 32  # messages zmq may queue for the grader (with the size limit: bounded memory)
CUT_MARK = "[mnist-kit: output cut at"
# Run in the kernel first: stdout/stderr stop forwarding after OUTPUT_LIMIT_MB and say so once.
# (A courtesy for the ordinary flood of prints; the zmq limits above bound the grader regardless.)
OUTPUT_CAP_CODE = f"""
def _mnist_kit_cap_output(limit={OUTPUT_LIMIT_MB} * 2**20):
    import sys
    for stream in (sys.stdout, sys.stderr):
        write, sent = stream.write, [0]
        def capped(text, write=write, sent=sent, stream=stream):
            sent[0] += len(text)
            if sent[0] <= limit:
                return write(text)
            if sent[0] - len(text) <= limit:
                stream.flush()
                write("\\n{CUT_MARK} {OUTPUT_LIMIT_MB} MB]\\n")
                stream.flush()
            return len(text)
        stream.write = capped
_mnist_kit_cap_output()
del _mnist_kit_cap_output
"""
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


def _client_class():
    """A NotebookClient that keeps at most OUTPUT_LIMIT_MB of outputs, so a flood of prints
    cannot fill the grader's memory (errors are always kept: the grader reports them)."""
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        output_limit = OUTPUT_LIMIT_MB * 2**20
        output_bytes = 0
        output_cut = False

        def output(self, outs, msg, display_id, cell_index):
            if msg["msg_type"] != "error":
                if msg["msg_type"] == "stream" and CUT_MARK in msg["content"].get("text", ""):
                    self.output_cut = True
                self.output_bytes += _message_size(msg["content"])
                if self.output_bytes > self.output_limit:
                    self.output_cut = True
                    return None
            return super().output(outs, msg, display_id, cell_index)

    return CappedClient


def _message_size(content) -> int:
    """Bytes of text in one output message (stream text, or the values of a display's data)."""
    if isinstance(content, str):
        return len(content)
    if isinstance(content, dict):
        return sum(_message_size(v) for v in content.values())
    if isinstance(content, (list, tuple)):
        return sum(_message_size(v) for v in content)
    return 8


def _bounded_clients(manager) -> None:
    """Make the clients of `manager` refuse huge messages and queue few (zmq's own limits)."""
    import zmq

    make_client = manager.client

    def client(**kwargs):
        kc = make_client(**kwargs)
        kc.context.setsockopt(zmq.MAXMSGSIZE, MESSAGE_LIMIT_MB * 2**20)  # default for its sockets
        kc.context.setsockopt(zmq.RCVHWM, QUEUE_MESSAGES)
        return kc

    manager.client = client


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
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


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
    log = RunLog()
    started = time.monotonic()
    student = [
        (cell_number(c, i), c)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and c.source.strip()
    ]
    before = OUTPUT_CAP_CODE + before
    steps = [("before", _code_cell(before))] + [(n, _code_cell(c.source)) for n, c in student]
    steps += [("after", _code_cell(after))] if after else []
    runner_nb = nbformat.v4.new_notebook(cells=[cell for _, cell in steps])
    runner_nb.metadata = nb.metadata
    manager = launcher.start(workdir, env if env is not None else kernel_env())
    _bounded_clients(manager)
    client = _client_class()(
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
    killed: list[bool] = []  # the watchdog appends when it kills the kernel

    def kill() -> None:
        killed.append(True)
        _kill_kernel(manager)

    try:
        with client.setup_kernel():
            deadline = time.monotonic() + time_limit  # starting the kernel is not student time
            for index, (number, cell) in enumerate(steps):
                if number == "after" and log.timed_out and not _responds(client, index):
                    kill()  # the interrupt was ignored: the kernel cannot run the grader's code
                    log.kernel_died = log.killed_after_timeout = True
                    break
                if number in ("before", "after"):
                    client.timeout = int(after_limit)
                else:
                    remaining = deadline - time.monotonic()
                    if remaining < 1:
                        log.timed_out = True
                        continue
                    client.timeout = max(1, math.ceil(remaining))
                cell_started = time.monotonic()
                # A backstop for a cell that ignores the interrupt nbclient sends at its time-out.
                watchdog = threading.Timer(client.timeout + KILL_GRACE, kill)
                watchdog.daemon = True
                watchdog.start()
                try:
                    client.execute_cell(cell, index)
                finally:
                    watchdog.cancel()
                if number == "before":
                    deadline = time.monotonic() + time_limit  # the student's time starts now
                label = number if isinstance(number, str) else f"cell {number}"
                log.cell_seconds[label] = round(time.monotonic() - cell_started, 2)
                error = _error_of(cell)
                cell.outputs = []  # the grader needs none of them; keeps memory flat
                if number == "after":
                    log.finish_error = error
                    log.finished = True
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
        if killed:
            log.killed_after_timeout = log.timed_out = True
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
        launcher.stop(manager)
        log.seconds = round(time.monotonic() - started, 2)
    if log.kernel_died and not log.killed_after_timeout:
        from mnist_kit.grading.sandbox import exit_reason

        log.exit_reason = exit_reason(manager)
    if client.output_cut:
        log.output_cut_mb = OUTPUT_LIMIT_MB
    return log
