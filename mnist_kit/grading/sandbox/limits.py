"""The resource limits of a student's kernel: their defaults, defined here once, and the small
wrapper that applies them.

Run as a script (`python -I -S limits.py NAME=VALUE... -- COMMAND...`), this file sets the
limits, drops to an unprivileged user when asked (uid=, gid=), enters cwd= and then replaces
itself with the kernel. It runs isolated and without site-packages, so it imports only the
standard library.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

__all__ = ["Limits", "MEMORY_MB", "MAX_PROCESSES", "CPU_SECONDS", "MAX_FILE_MB", "TMP_MB"]

MEMORY_MB = 4096  # address space; TensorFlow alone maps ~1.5 GB
MAX_PROCESSES = 256  # processes and threads; a torch/keras kernel uses ~40
CPU_SECONDS = 3600  # a backstop: the engine's wall-clock limit comes first
MAX_FILE_MB = 1024  # largest file the kernel may write
TMP_MB = 512  # bubblewrap's private /tmp (and /dev/shm), which lives in memory


@dataclass(frozen=True)
class Limits:
    """Resource limits for one kernel and everything it starts; None means no limit."""

    memory_mb: int | None = MEMORY_MB
    max_processes: int | None = MAX_PROCESSES
    cpu_seconds: int | None = CPU_SECONDS
    max_file_mb: int | None = MAX_FILE_MB

    def __post_init__(self) -> None:
        for label, value in vars(self).items():
            if value is not None and value <= 0:
                raise ValueError(f"{label} must be positive, or None for no limit; got {value}")

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


def exec_with_limits(args: list[str]) -> None:
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
    exec_with_limits(sys.argv[1:])
