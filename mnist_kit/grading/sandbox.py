"""Kernel launchers that fence a submission in: bubblewrap namespaces plus resource limits.

Drop-in replacements for `kernel.LocalKernel` (see the `KernelLauncher` protocol there):

- `BubblewrapKernel`: no network, read-only system, only the scratch folder writable, limits.
- `LimitedKernel`: the same resource limits on a plain child process, where bubblewrap is
  missing (a teacher's Mac); it warns that network and file access are not blocked.
- `best_launcher()`: the first of these that works on this machine.

The kernel talks to the grader over Unix sockets (jupyter's "ipc" transport), so it needs no
network at all. Run as a script, this file is the small wrapper that sets the limits, drops
to an unprivileged user when the grader is root, and then replaces itself with the kernel.

Longer than the kit's ~400 lines because the launchers, the /proc helpers they share and the
wrapper that runs as this very file belong together; the /proc helpers could move out first.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

__all__ = [
    "BubblewrapKernel",
    "LimitedKernel",
    "best_launcher",
    "bubblewrap_problem",
    "exit_reason",
    "sandbox_processes",
    "WeakSandboxWarning",
]

log = logging.getLogger(__name__)

BWRAP = "/usr/bin/bwrap"
WRAPPER = Path(__file__).resolve()
PACKAGE_DIR = WRAPPER.parents[1]  # the mnist_kit folder: the kernel imports the kit's export code
SANDBOX_UID_BASE = 1_600_000_000  # root graders run each kernel as a fresh uid from here on
# Environment variables a kernel keeps; everything else (tokens, paths to private files) is dropped.
KEEP_ENV = frozenset(
    """PATH LANG LANGUAGE TZ HOME USER LOGNAME PYTHONHASHSEED PYTHONWARNINGS PYTHONPATH
    PYTHONDONTWRITEBYTECODE MPLBACKEND KERAS_BACKEND CUDA_VISIBLE_DEVICES MALLOC_ARENA_MAX
    MNIST_KIT_DATA MNIST_KIT_CACHE""".split()
)
KEEP_ENV_PREFIXES = ("LC_", "TF_", "OMP_", "MKL_", "OPENBLAS_", "TORCH_", "PYDEVD_", "JPY_")
MARKER_ENV = "MNIST_KIT_KERNEL_ID"  # set for each kernel; outside bubblewrap it finds leftovers
KERNEL_ARGS = ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
WRAPPER_CMD = [sys.executable, "-I", "-S", str(WRAPPER)]  # isolated, no site: starts in ~20 ms


class WeakSandboxWarning(UserWarning):
    """Submissions run with resource limits only: they can use the network and read files."""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one kernel and everything it starts; None means no limit."""

    memory_mb: int | None = 4096  # address space; TensorFlow alone maps ~1.5 GB
    max_processes: int | None = 256  # processes and threads; a torch/keras kernel uses ~40
    cpu_seconds: int | None = 3600  # a backstop: the engine's wall-clock limit comes first
    max_file_mb: int | None = 1024  # largest file the kernel may write

    def wrapper_args(self, process_baseline: int = 0) -> list[str]:
        """The NAME=VALUE settings the wrapper script applies before starting the kernel."""
        args = ["RLIMIT_CORE=0"]  # a crash must not dump gigabytes into the scratch folder
        if self.memory_mb:
            args.append(f"RLIMIT_AS={self.memory_mb * 2**20}")
        if self.max_processes:
            args.append(f"RLIMIT_NPROC={process_baseline + self.max_processes}")
        if self.cpu_seconds:
            # SIGXCPU at the limit, SIGKILL two seconds later
            args.append(f"RLIMIT_CPU={self.cpu_seconds}:{self.cpu_seconds + 2}")
        if self.max_file_mb:
            args.append(f"RLIMIT_FSIZE={self.max_file_mb * 2**20}")
        return args


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


class _Launcher:
    """Shared start/stop logic: an ipc-transport KernelManager whose command a subclass builds."""

    name = "limited"

    def __init__(
        self,
        memory_mb: int | None = 4096,
        max_processes: int | None = 256,
        cpu_seconds: int | None = 3600,
        max_file_mb: int | None = 1024,
    ):
        self.limits = Limits(memory_mb, max_processes, cpu_seconds, max_file_mb)
        for label, value in vars(self.limits).items():
            if value is not None and value <= 0:
                raise ValueError(f"{label} must be positive, or None for no limit; got {value}")

    def _command(self, workdir: Path, state: SandboxState, env: dict) -> tuple[list[str], dict]:
        """The kernel's command line and extra Popen arguments."""
        raise NotImplementedError

    def start(self, workdir: Path, env: dict[str, str]):
        """Start a kernel with `workdir` as its current folder; return its (async) KernelManager."""
        from jupyter_client.kernelspec import KernelSpec
        from jupyter_core.utils import run_sync

        workdir = Path(workdir).resolve()
        if not workdir.is_dir():
            raise ValueError(f"the kernel's working folder {workdir} does not exist")
        runtime = Path(tempfile.mkdtemp(prefix="mnist-kit-kernel-"))
        state = SandboxState(self.name, self.limits, runtime)
        env = _kernel_env(env)
        # Inherited by everything the kernel starts: finds daemons that left its session.
        state.extra["marker"] = env[MARKER_ENV] = f"{os.getpid()}-{runtime.name}"
        if self.limits.memory_mb:  # glibc's per-thread arenas cost ~0.9 GB of address space
            env.setdefault("MALLOC_ARENA_MAX", "2")
        argv, popen = self._command(workdir, state, env)
        manager = _manager_class()(
            transport="ipc", ip=str(runtime / "ipc"), connection_file=str(runtime / "kernel.json")
        )
        # Interrupts go as messages: a signal to bwrap would not reach the kernel inside.
        manager.sandbox_spec = KernelSpec(
            argv=argv, display_name=f"Python 3 ({self.name})", interrupt_mode="message"
        )
        manager.sandbox = state
        manager.write_connection_file()
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
            _kill_and_wait(lambda: [p for p in sandbox_processes(manager) if p != state.pid])
            if run_sync(manager.is_alive)():
                run_sync(manager.shutdown_kernel)(now=True)
        finally:
            try:
                _kill_and_wait(lambda: sandbox_processes(manager))
            finally:
                run_sync(manager.cleanup_resources)()
                state.stderr_tail = _tail(state.runtime / "kernel-stderr.log")
                shutil.rmtree(state.runtime, ignore_errors=True)


class LimitedKernel(_Launcher):
    """The kernel as a child process with resource limits only (no namespaces).

    Weaker than `BubblewrapKernel`: the submission can use the network and read or write
    every file the grader's user can. The process cap does not apply when the grader is root.
    """

    name = "limited"

    def __init__(self, *args, warn: bool = True, **limits):
        super().__init__(*args, **limits)
        self.warn = warn

    def _command(self, workdir, state, env):
        if self.warn:
            message = (
                "Submissions run without a sandbox (resource limits only): they CAN use the network "
                "and read files outside their folder (hidden tests, other submissions). Install "
                "bubblewrap (Debian/Ubuntu: apt install bubblewrap) to isolate them."
            )
            if os.geteuid() == 0 and self.limits.max_processes:
                message += " The grader runs as root, so the process limit is not enforced either."
            warnings.warn(message, WeakSandboxWarning, stacklevel=3)
            log.warning(message)
            self.warn = False  # once per launcher is enough
        baseline = _tasks_of_user(os.getuid()) if self.limits.max_processes else 0
        wrapper = [*WRAPPER_CMD, *self.limits.wrapper_args(baseline), "--"]
        return [*wrapper, sys.executable, *KERNEL_ARGS], {"env": env}


class BubblewrapKernel(_Launcher):
    """The kernel inside bubblewrap: no network, read-only system, only `workdir` writable.

    Visible inside: /usr, /etc and the Python installation (read-only), the mnist_kit package
    and the grader's MNIST copy (read-only, as $MNIST_KIT_DATA), `extra_ro_binds`, a private /tmp, and read-write only the
    working folder and `extra_rw_binds`. Relative extra paths are taken from the working folder
    (e.g. "../out"); writable ones are created if missing. When the grader runs as root, the
    kernel runs as a fresh unprivileged uid so that the process limit applies.
    """

    name = "bubblewrap"

    def __init__(
        self,
        memory_mb: int | None = 4096,
        max_processes: int | None = 256,
        cpu_seconds: int | None = 3600,
        max_file_mb: int | None = 1024,
        extra_ro_binds: tuple[str | Path, ...] = (),
        extra_rw_binds: tuple[str | Path, ...] = (),
        tmp_mb: int = 512,  # the private /tmp lives in memory
        bwrap: str = BWRAP,
    ):
        super().__init__(memory_mb, max_processes, cpu_seconds, max_file_mb)
        if not Path(bwrap).is_file():
            raise ValueError(f"bubblewrap not found at {bwrap}; install it or use LimitedKernel")
        self.extra_ro_binds = tuple(extra_ro_binds)
        self.extra_rw_binds = tuple(extra_rw_binds)
        self.tmp_mb = tmp_mb
        self.bwrap = bwrap

    def _command(self, workdir, state, env):
        read, write = os.pipe()
        os.set_blocking(read, False)
        state.extra.update(info_fd=read, info_write=write)
        uid = _free_uid() if os.geteuid() == 0 else None
        writable = [workdir, *(_resolve(p, workdir) for p in self.extra_rw_binds)]
        for folder in writable[1:]:
            folder.mkdir(exist_ok=True)
        if uid is not None:
            for folder in writable:
                _chown_tree(folder, uid)
        state.extra["uid"] = uid
        baseline = 0 if uid is not None else _tasks_of_user(os.getuid())
        wrapper = [*WRAPPER_CMD, *self.limits.wrapper_args(baseline), f"cwd={workdir}"]
        if uid is not None:
            wrapper += [f"uid={uid}", f"gid={uid}"]
        env = {**env, "HOME": "/tmp", "TMPDIR": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib"}
        data = _mnist_copy(env)
        if data is not None:  # the one MNIST copy the grader would use, shown read-only
            env["MNIST_KIT_DATA"] = str(data)
        if uid is not None:
            env.update(USER="student", LOGNAME="student")  # the uid has no passwd entry
        bwrap = [self.bwrap, *self._bwrap_args(workdir, writable, state.runtime, env, uid, write)]
        argv = [*bwrap, *wrapper, "--", sys.executable, *KERNEL_ARGS]
        return argv, {"env": env, "pass_fds": (write,)}

    def _bwrap_args(self, workdir, writable, runtime, env, uid, info_fd) -> list[str]:
        args = ["--ro-bind", "/usr", "/usr"]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = Path("/", name)
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        args += ["--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev"]
        args += ["--perms", "1777", "--size", str(self.tmp_mb * 2**20), "--tmpfs", "/dev/shm"]
        args += ["--perms", "1777", "--size", str(self.tmp_mb * 2**20), "--tmpfs", "/tmp"]
        read_only = [*_python_dirs(), PACKAGE_DIR]
        if env.get("MNIST_KIT_DATA"):
            read_only.append(Path(env["MNIST_KIT_DATA"]))
        read_only += [_resolve(p, workdir) for p in self.extra_ro_binds]
        read_only = _outermost(read_only, skip=(Path("/usr"), Path("/etc")))
        for folder in _parents_to_make([*read_only, *writable, runtime]):
            args += ["--perms", "0755", "--dir", str(folder)]  # else bwrap copies e.g. /root's 0700
        for path in read_only:
            args += ["--ro-bind", str(path), str(path)]
        for path in [*writable, runtime]:
            args += ["--bind", str(path), str(path)]
        # The wrapper, not bwrap, enters workdir: it may be readable only by the kernel's uid.
        args += ["--remount-ro", "/", "--chdir", "/", "--new-session", "--die-with-parent"]
        args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--hostname", "sandbox"]
        args += ["--unsetenv", "JPY_PARENT_PID"]  # ipykernel would see pid 1 as its parent and quit
        if uid is None:
            args += ["--unshare-user", "--disable-userns"]
        else:  # privileged bwrap: keep only what the wrapper needs to switch to the sandbox uid
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        return [*args, "--info-fd", str(info_fd)]

    def _prepare_runtime(self, state):
        if state.extra.get("uid") is not None:
            _chown_tree(state.runtime, state.extra["uid"])

    def _after_start(self, state):
        """Read bwrap's --info-fd report to learn the sandbox's pid namespace."""
        os.close(state.extra.pop("info_write"))
        read = state.extra.pop("info_fd")
        text, deadline = b"", time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([read], [], [], 0.2)
                chunk = os.read(read, 4096) if ready else b""
                if ready and not chunk:
                    break  # EOF: bwrap exited (its stderr log says why)
                text += chunk
                try:
                    state.pid_namespace = int(json.loads(text)["pid-namespace"])
                    break
                except (ValueError, KeyError):
                    continue
        finally:
            os.close(read)


def best_launcher(**limits) -> BubblewrapKernel | LimitedKernel:
    """BubblewrapKernel when bubblewrap works here, else LimitedKernel (which warns)."""
    sandbox_only = {"extra_ro_binds", "extra_rw_binds", "tmp_mb", "bwrap"}
    problem = bubblewrap_problem(limits.get("bwrap", BWRAP))
    if problem is None:
        return BubblewrapKernel(**limits)
    log.warning("not using bubblewrap: %s", problem)
    return LimitedKernel(**{k: v for k, v in limits.items() if k not in sandbox_only})


@lru_cache(maxsize=4)
def bubblewrap_problem(bwrap: str = BWRAP) -> str | None:
    """None when bubblewrap can start a sandbox like the kernel's here, else what went wrong."""
    if not Path(bwrap).is_file():
        return f"{bwrap} does not exist (Debian/Ubuntu: apt install bubblewrap)"
    simple = [bwrap, "--ro-bind", "/", "/", "true"]
    try:
        done = subprocess.run(simple, capture_output=True, text=True, timeout=20)
        if done.returncode != 0:
            return f"'{' '.join(simple)}' failed: {done.stderr.strip()[:300]}"
        with tempfile.TemporaryDirectory(prefix="mnist-kit-probe-") as folder:
            launcher = BubblewrapKernel(bwrap=bwrap)
            state = SandboxState("probe", launcher.limits, Path(folder))
            argv, popen = launcher._command(Path(folder), state, _kernel_env(dict(os.environ)))
            wrapped = argv.index("--", argv.index(str(WRAPPER))) + 1
            argv = [*argv[:wrapped], sys.executable, "-I", "-S", "-c", "pass"]
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=20, **popen)
            finally:
                os.close(state.extra["info_write"])
                os.close(state.extra["info_fd"])
        if done.returncode != 0:
            return f"the kernel's sandbox does not start: {done.stderr.strip()[:300]}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"running bubblewrap failed: {exc}"
    return None


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


def sandbox_processes(manager) -> list[int]:
    """Pids of processes still running for this kernel (zombies excluded)."""
    state: SandboxState | None = getattr(manager, "sandbox", None)
    if state is None or state.pid is None:
        return []
    found = []
    for pid in _all_pids():
        try:
            if _is_zombie(pid):
                continue
            if state.pid_namespace is not None:
                if os.stat(f"/proc/{pid}/ns/pid").st_ino == state.pid_namespace or pid == state.pid:
                    found.append(pid)
            elif (
                pid == state.pid
                or os.getsid(pid) == state.pid
                or os.getpgid(pid) == state.pid
                or _has_marker(pid, state.extra.get("marker"))
            ):
                found.append(pid)
        except OSError:
            continue
    return found


def _has_marker(pid: int, marker: str | None) -> bool:
    """Does process `pid` carry this kernel's MARKER_ENV value in its environment?"""
    if not marker:
        return False
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{MARKER_ENV}={marker}".encode() in environ.split(b"\0")


def _kill_and_wait(find, seconds: float = 5.0) -> None:
    """SIGKILL what `find()` returns until nothing is left or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while (pids := find()) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    if pids:
        log.warning("kernel processes %s did not stop within %.0f s", pids, seconds)


def _manager_class():
    # Async on purpose: with a blocking client nbclient waits on iopub with the event loop
    # blocked, so neither its cell timeout nor its dead-kernel check can ever fire.
    from jupyter_client.manager import AsyncKernelManager

    class SandboxKernelManager(AsyncKernelManager):
        """An AsyncKernelManager whose kernel spec (command, interrupt mode) comes from a launcher."""

        sandbox_spec = None
        sandbox: SandboxState | None = None

        @property
        def kernel_spec(self):
            return self.sandbox_spec

    return SandboxKernelManager


def _kernel_env(env: dict[str, str]) -> dict[str, str]:
    """`env` without anything outside the allow-list (a kernel needs no tokens or private paths)."""
    kept = {k: v for k, v in env.items() if k in KEEP_ENV or k.startswith(KEEP_ENV_PREFIXES)}
    kept["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    return kept


def _python_dirs() -> list[Path]:
    """The Python installation the kernel runs on: prefixes and site-packages folders."""
    import site

    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    candidates.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    candidates.update([user_site] if user_site else [])
    candidates.add(str(Path(sys.executable).resolve().parent))
    return [Path(p).resolve() for p in candidates if Path(p).is_dir()]


def _outermost(paths, skip=()) -> list[Path]:
    """The paths that are not inside another one of them or inside a `skip` folder."""
    unique = sorted(set(paths), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in unique:
        if not any(path.is_relative_to(outer) for outer in (*kept, *skip)):
            kept.append(path)
    return kept


def _mnist_copy(env: dict[str, str]) -> Path | None:
    """Where the grader's MNIST is ($MNIST_KIT_DATA, Keras' or the kit's cache), or None."""
    from mnist_kit.data import MnistDataError, find_mnist

    try:
        source = find_mnist(env.get("MNIST_KIT_DATA") or None)
    except MnistDataError:
        return None
    return source.path.resolve() if source.kind != "download" and source.path else None


def _parents_to_make(paths) -> list[Path]:
    """Folders above the mount points that bwrap would create, outermost first."""
    premade = {Path(p) for p in ("/", "/tmp", "/dev", "/dev/shm", "/proc", "/usr", "/etc")}
    parents = {parent for path in paths for parent in path.parents if parent not in premade}
    return sorted(parents, key=lambda p: len(p.parts))


def _resolve(path: str | Path, workdir: Path) -> Path:
    return (workdir / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()


def _chown_tree(folder: Path, uid: int) -> None:
    os.chown(folder, uid, uid, follow_symlinks=False)
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


def _all_pids() -> list[int]:
    if Path("/proc/self").is_dir():
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    listing = subprocess.run(["ps", "-A", "-o", "pid="], capture_output=True, text=True).stdout
    return [int(word) for word in listing.split()]


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


def _tasks_of_user(uid: int) -> int:
    """How many processes and threads `uid` runs now (RLIMIT_NPROC counts them all)."""
    if not Path("/proc/self").is_dir():
        listing = subprocess.run(["ps", "-U", str(uid), "-o", "pid="], capture_output=True)
        return len(listing.stdout.split())
    total = 0
    for pid in _all_pids():
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in lines if ":" in line)
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            total += int(fields.get("Threads", "1").strip())
    return total


_next_uid = [0]


def _free_uid() -> int:
    """A uid no running process uses, so RLIMIT_NPROC counts only this kernel's processes."""
    used = set()
    for pid in _all_pids():
        try:
            used.add(os.stat(f"/proc/{pid}").st_uid)
        except OSError:
            continue
    while True:
        _next_uid[0] += 1
        uid = SANDBOX_UID_BASE + (os.getpid() % 100_000) * 1000 + _next_uid[0] % 1000
        if uid not in used:
            return uid


def _tail(path: Path, size: int = 2000) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _exec_with_limits(args: list[str]) -> None:
    """Wrapper main: apply NAME=VALUE limits (and uid=/gid=), then exec the command after `--`."""
    import resource

    split = args.index("--")
    settings = dict(arg.split("=", 1) for arg in args[:split])
    command = args[split + 1 :]
    for key, value in settings.items():
        if key.startswith("RLIMIT_"):
            soft, _, hard = value.partition(":")
            try:
                resource.setrlimit(getattr(resource, key), (int(soft), int(hard or soft)))
            except (AttributeError, ValueError, OSError) as exc:
                print(f"mnist-kit sandbox: could not set {key}: {exc}", file=sys.stderr)
    if "uid" in settings:
        os.setgroups([])
        os.setgid(int(settings["gid"]))
        os.setuid(int(settings["uid"]))
    if "cwd" in settings:
        os.chdir(settings["cwd"])
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: no setuid binaries from here
    os.execv(command[0], command)


if __name__ == "__main__":
    _exec_with_limits(sys.argv[1:])
