"""`Job`: one submission on its way through the grading steps (engine.STEPS).

Each step reads what the steps before it left on the job and adds its own; the step that
decides the grade (or that the notebook cannot be graded) sets `result`, and no step runs
after that.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mnist_kit.grading.results import GradeResult, TestResult, not_run

if TYPE_CHECKING:
    from mnist_kit.grading.assignments import Assignment
    from mnist_kit.grading.declare import Probe, TestInfo
    from mnist_kit.grading.kernel import KernelLauncher, RunLog

__all__ = ["Job", "Settings", "kept_name"]


class Settings(Protocol):
    """What the steps read of the Grader (engine.py): the assignment, its tests and probes,
    and how its kernels run."""

    assignment: Assignment
    tests: list[tuple[Callable, TestInfo]]  # the autograder module's, in its order
    probes: list[Probe]
    test_file: Path  # the autograder module pytest runs
    launcher: KernelLauncher
    time_limit: float  # seconds for the notebook's cells
    expected_cells: dict[str, set[str]]  # grade id -> accepted checksums of graded test cells
    known_ids: dict[str, frozenset[str]]  # assignment -> its reference grade ids
    memory_limit_mb: int | None  # the kernel's memory cap, for notes


@dataclass
class Job:
    """One submission being graded: what each step found, for the steps after it."""

    path: Path
    assignment: str  # the assignment's name, for the result
    started: float = field(default_factory=time.monotonic)
    notebook: Any = None  # read_notebook: the notebook as nbformat v4
    changed: list[str] = field(default_factory=list)  # grade ids of edited graded test cells
    identity: list[str] = field(default_factory=list)  # check_assignment's notes
    scratch: Path | None = None  # write_plan: holds work/, plan/ and out/
    log: RunLog | None = None  # run_kernel: what happened while the notebook ran
    notes: list[str] = field(
        default_factory=list
    )  # what a teacher should know, most important first
    result: GradeResult | None = None  # set by the step that ends the job

    @property
    def work(self) -> Path:
        """The kernel's working folder (its current folder, writable)."""
        return self._in_scratch("work")

    @property
    def plan(self) -> Path:
        """The grading plan: models to save, probes and their inputs (read-only to the kernel)."""
        return self._in_scratch("plan")

    @property
    def out(self) -> Path:
        """Where the kernel saves models and probe outputs for the tests (writable)."""
        return self._in_scratch("out")

    def _in_scratch(self, name: str) -> Path:
        if self.scratch is None:
            raise RuntimeError("the job has no scratch folder yet (write_plan makes it)")
        return self.scratch / name

    def finish(
        self,
        tests: list[TestResult],
        error: str | None = None,
        measurements: dict[str, float] | None = None,
    ) -> None:
        """End the job with these test results (and the notes so far, when it was graded)."""
        notes = None if error else self.notes
        self.result = GradeResult.build(
            str(self.path), self.assignment, tests, time.monotonic() - self.started, error,
            notes, measurements,
        )  # fmt: skip

    def refuse(self, tests: list[tuple[Callable, TestInfo]], reason: str) -> None:
        """End the job ungraded: every test not run, for `reason`."""
        self.finish(not_run(tests, reason), reason)

    def keep_and_clean(self, keep: Path | None) -> None:
        """Copy the scratch folder to `keep` (when given), then delete it."""
        if self.scratch is None or not self.scratch.exists():
            return
        if keep is not None:
            target = keep / kept_name(self.path)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(self.scratch, target, symlinks=True)
        shutil.rmtree(self.scratch, ignore_errors=True)


def kept_name(path: Path) -> str:
    """The folder a kept submission's scratch copy gets under `keep`: its last path parts."""
    parts = [p for p in path.with_suffix("").parts[-3:] if p not in ("/", "..", ".")]
    return "-".join(parts).replace(" ", "_")
