"""Grade submitted notebooks: a pipeline of small steps, each named for what it does.

For each submission, in order (`STEPS` below runs them in this order; the order matters: the
test cells are compared and the assignment identified before they are dropped, the plan must
exist before the kernel runs, and the tests read only what the kernel wrote):

1. `read_notebook`           - parse the notebook; a broken file becomes an error row, not a crash
2. `note_changed_test_cells` - note graded test cells edited or deleted (nbgrader checksums)
3. `check_assignment`        - compare its nbgrader grade ids with each assignment's
                               (identify.py): another assignment's notebook becomes an error
                               row naming the right one, before any kernel starts; a partial
                               match, a note
4. `drop_test_cells`         - remove nbgrader test cells: the grader runs the tests itself; the
                               cells that stay keep their numbers as submitted, for the notes
5. `write_plan`              - models to save and probes to run, with grader-made inputs as .npz
6. `run_kernel`              - a scratch copy runs in its own sandboxed kernel (`make_launcher`)
                               with a wall-clock limit, then the grader's code saves models and
                               probe outputs (kernel.py, in_kernel/)
7. `run_tests`               - the autograder's tests run in this process on those files

Each step is one module of steps/, a function `step(job, grader)` that reads and adds to the
`Job` (job.py); the step that decides the grade, or that there is none, ends the job.

Notes name cells as JupyterLab numbers them in the notebook as submitted ("cell 8: ..."):
1-based, markdown cells and the dropped test cells counted.

The scratch folder holds work/ (the kernel's working folder), plan/ (read-only to the kernel)
and out/ (writable); the sandbox shows the kernel nothing else of this machine's files.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from mnist_kit.grading.assignments import (
    KIT_ROOT,
    Assignment,
    collect_probes,
    collect_tests,
    find_assignment,
    find_autograder,
    load_module,
    reference_notebooks,
    suite_module,
)
from mnist_kit.grading.identify import reference_ids
from mnist_kit.grading.job import Job
from mnist_kit.grading.kernel import KernelLauncher
from mnist_kit.grading.results import GradeResult
from mnist_kit.grading.sandbox import MEMORY_MB, make_launcher
from mnist_kit.grading.steps import (
    check_assignment,
    drop_test_cells,
    note_changed_test_cells,
    read_notebook,
    run_kernel,
    run_tests,
    write_plan,
)
from mnist_kit.grading.steps.drop_test_cells import drop_graded_tests
from mnist_kit.grading.steps.note_changed_test_cells import reference_checksums
from mnist_kit.grading.steps.read_notebook import SubmissionError, read_submission
from mnist_kit.grading.steps.run_kernel import kernel_preamble

__all__ = [
    "Grader",
    "STEPS",
    # what the steps offer on their own, importable from here as before
    "read_submission",
    "SubmissionError",
    "reference_checksums",
    "drop_graded_tests",
    "kernel_preamble",
]

STEPS = (
    read_notebook,
    note_changed_test_cells,
    check_assignment,  # before drop_test_cells: it reads the grade ids of the test cells
    drop_test_cells,
    write_plan,  # makes the scratch folder the kernel runs in
    run_kernel,
    run_tests,  # reads only what run_kernel's grader code wrote
)
# From write_plan on, the notebook has been read and checked: an exception there is the
# grader's failure, before it a notebook whose structure is broken.
GRADER_STEPS = (write_plan, run_kernel, run_tests)


class Grader:
    """Grades submissions of one assignment with one autograder module."""

    def __init__(
        self,
        assignment: str | Assignment,
        *,
        autograder: str | Path | None = None,
        launcher: KernelLauncher | None = None,
        time_limit: float | None = None,
        keep: str | Path | None = None,
        sandbox: str = "auto",
        memory_mb: int | None = MEMORY_MB,
    ):
        """`sandbox` picks how the student's kernel is fenced in (see `make_launcher`):
        "auto" (bubblewrap when it works here, else resource limits with a warning),
        "bubblewrap", "limited" or "none". An explicit `launcher` wins over it. `memory_mb` caps
        the kernel's address space (None: no cap). Every argument is a plain value, so a worker
        process can build its own Grader from the same keyword arguments.
        """
        # OpenMP threads that sleep while waiting: PyTorch inference here stays fast on a busy machine.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.assignment = (
            assignment if isinstance(assignment, Assignment) else find_assignment(assignment)
        )
        self.test_file = find_autograder(autograder) / self.assignment.autograder_file
        if not self.test_file.is_file():
            raise FileNotFoundError(f"no autograder module {self.test_file}")
        module = load_module(self.test_file)
        self.tests = collect_tests(module)
        self.probes = collect_probes(module, suite_module(self.assignment))
        self.launcher = launcher if launcher is not None else make_launcher(sandbox, memory_mb)
        self.time_limit = time_limit or self.assignment.time_limit
        self.keep = Path(keep) if keep else None

    def reference_roots(self) -> list[Path]:
        """Folders with exercises/ and solutions/: the autograder's course, then the kit."""
        return [self.test_file.parent.parent, KIT_ROOT]

    def references(self) -> list[Path]:
        """Notebooks whose graded cells a submission should still hold unchanged."""
        return reference_notebooks(self.assignment, self.reference_roots())

    @functools.cached_property
    def expected_cells(self) -> dict[str, set[str]]:
        """grade_id -> the accepted checksums of each graded test cell, for step 2."""
        return reference_checksums(self.references())

    @functools.cached_property
    def known_ids(self) -> dict[str, frozenset[str]]:
        """Every assignment's reference grade ids, for `check_assignment`."""
        return reference_ids(self.reference_roots())

    @property
    def memory_limit_mb(self) -> int | None:
        """The memory cap of the launcher's kernels (None: none, or a launcher without limits)."""
        limits = getattr(self.launcher, "limits", None)
        return getattr(limits, "memory_mb", None)

    def grade(self, path: str | Path) -> GradeResult:
        """Grade one notebook; any failure ends in a GradeResult with `error` set."""
        job = Job(Path(path), self.assignment.name)
        try:
            for step in STEPS:
                try:
                    step(job, self)
                except Exception as exc:  # noqa: BLE001 - one broken submission never stops the others
                    job.refuse(self.tests, _failure(step, exc))
                if job.result is not None:
                    break
        finally:
            job.keep_and_clean(self.keep)
        if job.result is None:
            raise RuntimeError(f"no grading step ended the job for {path}")
        return job.result


def _failure(step, exc: Exception) -> str:
    """The error row's reason when `step` raised `exc`: the notebook's fault or the grader's."""
    if step in GRADER_STEPS:
        return (
            f"not graded: the grader failed on it ({type(exc).__name__}: {str(exc).strip()[:300]})"
        )
    return (
        f"not graded: the notebook's structure is broken ({type(exc).__name__}: {str(exc)[:200]})"
    )
