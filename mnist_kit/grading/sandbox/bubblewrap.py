"""`BubblewrapKernel`: the kernel inside bubblewrap namespaces, plus the resource limits.

No network, a read-only system, and only the scratch folder writable; `bubblewrap_problem`
says whether (and why not) bubblewrap can start such a sandbox on this machine.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from mnist_kit.grading import processes
from mnist_kit.grading.sandbox.launcher import (
    KERNEL_ARGS,
    WRAPPER,
    WRAPPER_CMD,
    SandboxLauncher,
    SandboxState,
    allowed_env,
)
from mnist_kit.grading.sandbox.limits import TMP_MB

__all__ = ["BubblewrapKernel", "bubblewrap_problem", "BWRAP", "PACKAGE_DIR"]

BWRAP = "/usr/bin/bwrap"
PACKAGE_DIR = (
    Path(__file__).resolve().parents[2]
)  # the mnist_kit folder: the kernel imports the kit
SANDBOX_UID_BASE = 1_600_000_000  # root graders run each kernel as a fresh uid from here on


class BubblewrapKernel(SandboxLauncher):
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
        *args,
        extra_ro_binds: tuple[str | Path, ...] = (),
        extra_rw_binds: tuple[str | Path, ...] = (),
        tmp_mb: int = TMP_MB,  # the private /tmp lives in memory
        bwrap: str = BWRAP,
        **limits,
    ):
        """The resource limits are `SandboxLauncher`'s (memory_mb, max_processes, ...)."""
        super().__init__(*args, **limits)
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
        baseline = 0 if uid is not None else processes.threads_of_user(os.getuid())
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
                chunk = os.read(read, 1 << 16) if ready else b""
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
            argv, popen = launcher._command(Path(folder), state, allowed_env(dict(os.environ)))
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


_next_uid = [0]


def _free_uid() -> int:
    """A uid no running process uses, so RLIMIT_NPROC counts only this kernel's processes."""
    used = processes.uids_in_use()
    while True:
        _next_uid[0] += 1
        uid = SANDBOX_UID_BASE + (os.getpid() % 100_000) * 1000 + _next_uid[0] % 1000
        if uid not in used:
            return uid
