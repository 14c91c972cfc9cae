"""Kernel launchers that fence a submission in: bubblewrap namespaces plus resource limits.

Drop-in replacements for `kernel.LocalKernel` (see the `KernelLauncher` protocol there):

- `BubblewrapKernel` (bubblewrap.py): no network, read-only system, only the scratch folder
  writable, limits.
- `LimitedKernel` (limited.py): the same resource limits on a plain child process, where
  bubblewrap is missing (a teacher's Mac); it warns that network and file access are not blocked.
- `best_launcher()`: the first of these that works on this machine; `make_launcher(choice)`:
  the launcher for a `--sandbox` choice.

Both start the kernel through the wrapper in limits.py, which also holds the limits' defaults;
launcher.py holds what they share (start, stop, `exit_reason`, `sandbox_processes`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mnist_kit.grading.sandbox.bubblewrap import (
    BWRAP,
    PACKAGE_DIR,
    BubblewrapKernel,
    bubblewrap_problem,
)
from mnist_kit.grading.sandbox.launcher import exit_reason, sandbox_processes
from mnist_kit.grading.sandbox.limited import LimitedKernel, WeakSandboxWarning
from mnist_kit.grading.sandbox.limits import MEMORY_MB, Limits

if TYPE_CHECKING:
    from mnist_kit.grading.kernel import KernelLauncher

__all__ = [
    "BubblewrapKernel",
    "LimitedKernel",
    "best_launcher",
    "make_launcher",
    "bubblewrap_problem",
    "exit_reason",
    "sandbox_processes",
    "WeakSandboxWarning",
    "Limits",
    "MEMORY_MB",
    "PACKAGE_DIR",
    "SANDBOX_CHOICES",
]

log = logging.getLogger(__name__)

SANDBOX_CHOICES = ("auto", "bubblewrap", "limited", "none")
# Seen by the kernel besides its working folder: the plan (read-only) and out/ (writable).
# Nothing else of the scratch folder (job.py), and never the autograder, solutions/ or other
# submissions.
SANDBOX_BINDS = {"extra_ro_binds": ("../plan",), "extra_rw_binds": ("../out",)}


def best_launcher(**limits) -> BubblewrapKernel | LimitedKernel:
    """BubblewrapKernel when bubblewrap works here, else LimitedKernel (which warns)."""
    sandbox_only = {"extra_ro_binds", "extra_rw_binds", "tmp_mb", "bwrap"}
    problem = bubblewrap_problem(limits.get("bwrap", BWRAP))
    if problem is None:
        return BubblewrapKernel(**limits)
    log.warning("not using bubblewrap: %s", problem)
    return LimitedKernel(**{k: v for k, v in limits.items() if k not in sandbox_only})


def make_launcher(sandbox: str = "auto", memory_mb: int | None = MEMORY_MB) -> KernelLauncher:
    """The kernel launcher for a `sandbox` choice: "auto", "bubblewrap", "limited" or "none"."""
    from mnist_kit.grading.kernel import LocalKernel

    if sandbox == "none":
        return LocalKernel()
    if sandbox == "auto":
        return best_launcher(memory_mb=memory_mb, **SANDBOX_BINDS)
    if sandbox == "bubblewrap":
        problem = bubblewrap_problem()
        if problem is not None:
            raise RuntimeError(
                f"sandbox='bubblewrap' but bubblewrap does not work here: {problem}. Install it "
                "(Debian/Ubuntu: apt install bubblewrap; Fedora: dnf install bubblewrap), or "
                "choose sandbox='limited' (resource limits only)."
            )
        return BubblewrapKernel(memory_mb=memory_mb, **SANDBOX_BINDS)
    if sandbox == "limited":
        return LimitedKernel(memory_mb=memory_mb)
    raise ValueError(f"sandbox must be one of {', '.join(SANDBOX_CHOICES)}; got {sandbox!r}")
