"""What every sandboxed launcher shares: start a kernel through the limits wrapper, stop it with
everything it started, and say afterwards why it ended.

A subclass builds the kernel's command line (`SandboxLauncher._command`); the kernel talks to
the grader over Unix sockets (jupyter's "ipc" transport), so it needs no network at all.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mnist_kit.grading import processes
from mnist_kit.grading.sandbox import limits as wrapper
from mnist_kit.grading.sandbox.limits import (
    CPU_SECONDS,
    MAX_FILE_MB,
    MAX_PROCESSES,
    MEMORY_MB,
    Limits,
)

__all__ = [
    "SandboxState",
    "SandboxLauncher",
    "allowed_env",
    "exit_reason",
    "sandbox_processes",
    "KERNEL_ARGS",
    "WRAPPER",
    "WRAPPER_CMD",
]

log = logging.getLogger("mnist_kit.grading.sandbox")

WRAPPER = Path(
    wrapper.__file__
).resolve()  # run as a script: sets the limits, then execs the kernel
WRAPPER_CMD = [sys.executable, "-I", "-S", str(WRAPPER)]  # isolated, no site: starts in ~20 ms
KERNEL_ARGS = ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
# Environment variables a kernel keeps; everything else (tokens, paths to private files) is dropped.
KEEP_ENV = frozenset(
    """PATH LANG LANGUAGE TZ HOME USER LOGNAME PYTHONHASHSEED PYTHONWARNINGS PYTHONPATH
    PYTHONDONTWRITEBYTECODE MPLBACKEND KERAS_BACKEND CUDA_VISIBLE_DEVICES MALLOC_ARENA_MAX
    MNIST_KIT_DATA MNIST_KIT_CACHE""".split()
)
KEEP_ENV_PREFIXES = ("LC_", "TF_", "OMP_", "MKL_", "OPENBLAS_", "TORCH_", "PYDEVD_", "JPY_")
MARKER_ENV = "MNIST_KIT_KERNEL_ID"  # set for each kernel; outside bubblewrap it finds leftovers


@dataclass
class SandboxState:
    """What a launcher knows about one running kernel (kept on the manager as `.sandbox`)."""

    launcher: str
    limits: Limits
    runtime: Path  # connection file, sockets and the kernel's stderr log
    pid: int | None = None  # the process the grader started (bwrap, or the kernel itself)
    pid_namespace: int | None = None  # bubblewrap only: every process of the sandbox is in it
    returncode: int | None = None
    stderr_tail: str = ""
    extra: dict = field(default_factory=dict)


class SandboxLauncher:
    """Shared start/stop logic: an ipc-transport KernelManager whose command a subclass builds."""

    name = "limited"

    def __init__(
        self,
        memory_mb: int | None = MEMORY_MB,
        max_processes: int | None = MAX_PROCESSES,
        cpu_seconds: int | None = CPU_SECONDS,
        max_file_mb: int | None = MAX_FILE_MB,
    ):
        self.limits = Limits(memory_mb, max_processes, cpu_seconds, max_file_mb)

    def _command(self, workdir: Path, state: SandboxState, env: dict) -> tuple[list[str], dict]:
        """The kernel's command line and extra Popen arguments."""
        raise NotImplementedError

    def start(self, workdir: Path, env: dict[str, str]):
        """Start a kernel with `workdir` as its current folder; return its (async) KernelManager."""
        from jupyter_core.utils import run_sync

        workdir = Path(workdir).resolve()
        if not workdir.is_dir():
            raise ValueError(f"the kernel's working folder {workdir} does not exist")
        runtime = Path(tempfile.mkdtemp(prefix="mnist-kit-kernel-"))
        state = SandboxState(self.name, self.limits, runtime)
        env = allowed_env(env)
        # Inherited by everything the kernel starts: finds daemons that left its session.
        state.extra["marker"] = env[MARKER_ENV] = f"{os.getpid()}-{runtime.name}"
        if self.limits.memory_mb:  # glibc's per-thread arenas cost ~0.9 GB of address space
            env.setdefault("MALLOC_ARENA_MAX", "2")
        argv, popen = self._command(workdir, state, env)
        manager = _manager(argv, self.name, state)
        self._prepare_runtime(state)
        stderr = open(runtime / "kernel-stderr.log", "wb")  # noqa: SIM115 - the kernel keeps it open
        try:
            run_sync(manager.start_kernel)(
                cwd=str(workdir),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                extra_arguments=["--HistoryManager.hist_file=:memory:"],
                **popen,
            )
        except Exception:
            for key in ("info_fd", "info_write"):
                if key in state.extra:
                    os.close(state.extra.pop(key))
            shutil.rmtree(runtime, ignore_errors=True)
            raise
        finally:
            stderr.close()
        state.pid = manager.provisioner.pid
        self._after_start(state)
        return manager

    def _prepare_runtime(self, state: SandboxState) -> None:
        """Hook: make the runtime folder usable by the kernel's user."""

    def _after_start(self, state: SandboxState) -> None:
        """Hook: learn what the sandbox needs for a clean stop."""

    def stop(self, manager) -> None:
        """Stop the kernel and everything it started; record how it ended on `manager.sandbox`."""
        from jupyter_core.utils import run_sync

        state: SandboxState = manager.sandbox
        try:
            process = getattr(manager.provisioner, "process", None)
            state.returncode = process.poll() if process is not None else state.returncode
            # Sandbox first, so that bwrap reaps its own children and exits by itself.
            _kill_all(lambda: [p for p in sandbox_processes(manager) if p != state.pid])
            if run_sync(manager.is_alive)():
                run_sync(manager.shutdown_kernel)(now=True)
        finally:
            try:
                _kill_all(lambda: sandbox_processes(manager))
            finally:
                run_sync(manager.cleanup_resources)()
                state.stderr_tail = _tail(state.runtime / "kernel-stderr.log")
                shutil.rmtree(state.runtime, ignore_errors=True)


def _manager(argv: list[str], name: str, state: SandboxState):
    """An ipc-transport AsyncKernelManager that starts `argv`, its connection file written."""
    from jupyter_client.kernelspec import KernelSpec

    runtime = state.runtime
    manager = _manager_class()(
        transport="ipc", ip=str(runtime / "ipc"), connection_file=str(runtime / "kernel.json")
    )
    # Interrupts go as messages: a signal to bwrap would not reach the kernel inside.
    manager.sandbox_spec = KernelSpec(
        argv=argv, display_name=f"Python 3 ({name})", interrupt_mode="message"
    )
    manager.sandbox = state
    manager.write_connection_file()
    return manager


def _manager_class():
    # Async on purpose: with a blocking client nbclient waits on iopub with the event loop
    # blocked, so neither its cell timeout nor its dead-kernel check can ever fire.
    from jupyter_client.manager import AsyncKernelManager

    # Not a provisioner: jupyter_client 8 reads argv and interrupt_mode from the manager's own kernel_spec, and finds provisioners only by entry-point name.
    class SandboxKernelManager(AsyncKernelManager):
        """An AsyncKernelManager whose kernel spec (command, interrupt mode) comes from a launcher."""

        sandbox_spec = None
        sandbox: SandboxState | None = None

        @property
        def kernel_spec(self):
            return self.sandbox_spec

    return SandboxKernelManager


def allowed_env(env: dict[str, str]) -> dict[str, str]:
    """`env` without anything outside the allow-list (a kernel needs no tokens or private paths)."""
    kept = {k: v for k, v in env.items() if k in KEEP_ENV or k.startswith(KEEP_ENV_PREFIXES)}
    kept["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    return kept


def sandbox_processes(manager) -> list[int]:
    """Pids of processes still running for this kernel (zombies excluded)."""
    state: SandboxState | None = getattr(manager, "sandbox", None)
    if state is None or state.pid is None:
        return []
    found = []
    for pid in processes.live_pids():
        try:
            if state.pid_namespace is not None:
                if processes.pid_namespace(pid) == state.pid_namespace or pid == state.pid:
                    found.append(pid)
            elif (
                pid == state.pid
                or os.getsid(pid) == state.pid
                or os.getpgid(pid) == state.pid
                or processes.has_env(pid, MARKER_ENV, state.extra.get("marker"))
            ):
                found.append(pid)
        except OSError:
            continue
    return found


def _kill_all(find, seconds: float = 5.0) -> None:
    """SIGKILL what `find()` returns until nothing is left; warn about what outlives `seconds`."""
    left = processes.kill_until_gone(find, seconds)
    if left:
        log.warning("kernel processes %s did not stop within %.0f s", left, seconds)


def exit_reason(manager) -> str | None:
    """Why a stopped kernel ended, in words a teacher understands; None if it did not die by itself."""
    state: SandboxState | None = getattr(manager, "sandbox", None)
    if state is None or state.returncode is None:
        return None
    code, limits = state.returncode, state.limits
    failed = [line for line in state.stderr_tail.splitlines() if line.startswith("bwrap:")]
    if failed:
        return f"the sandbox could not start ({failed[-1]})"
    signum = -code if code < 0 else None  # a plain child killed by a signal
    if state.launcher == "bubblewrap" and code > 128:
        signum = code - 128  # bwrap exits with 128 + the signal that ended the kernel
    if signum is None:
        return f"the kernel exited with status {code} (sys.exit or os._exit in the notebook?)"
    if signum == signal.SIGXCPU:
        return f"the kernel was stopped at the CPU time limit ({limits.cpu_seconds} s of CPU time)"
    if signum == signal.SIGKILL:
        return (
            "the kernel was killed (SIGKILL): the notebook killed it, it passed the CPU time "
            f"limit ({limits.cpu_seconds} s), or the machine ran out of memory"
        )
    if signum == signal.SIGXFSZ:
        return f"the kernel wrote a file larger than the {limits.max_file_mb} MB limit"
    if signum == signal.SIGSEGV:
        return "the kernel crashed (segmentation fault)"
    if signum == signal.SIGABRT:
        return f"the kernel aborted (often a failed allocation under the {limits.memory_mb} MB cap)"
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return f"the kernel was ended by {name}"


def _tail(path: Path, size: int = 2000) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
