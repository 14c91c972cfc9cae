"""`LimitedKernel`: the kernel as a child process with resource limits only, where bubblewrap
is missing (a teacher's Mac); it warns that network and file access are not blocked."""

from __future__ import annotations

import logging
import os
import sys
import warnings

from mnist_kit.grading import processes
from mnist_kit.grading.sandbox.launcher import KERNEL_ARGS, WRAPPER_CMD, SandboxLauncher

__all__ = ["LimitedKernel", "WeakSandboxWarning"]

log = logging.getLogger("mnist_kit.grading.sandbox")


class WeakSandboxWarning(UserWarning):
    """Submissions run with resource limits only: they can use the network and read files."""


class LimitedKernel(SandboxLauncher):
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
        baseline = processes.threads_of_user(os.getuid()) if self.limits.max_processes else 0
        wrapper = [*WRAPPER_CMD, *self.limits.wrapper_args(baseline), "--"]
        return [*wrapper, sys.executable, *KERNEL_ARGS], {"env": env}
