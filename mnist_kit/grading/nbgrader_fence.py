"""`FencedExecute`: nbgrader's autograde step, graded by the kit's `Grader` instead of run in
the student's kernel.

nbgrader's own `Execute` step runs the notebook, hidden tests included, in an ordinary kernel:
student code can redefine `check`, patch the tests or read the hidden ones. This step takes
its place in `Autograde.autograde_preprocessors` (see nbgrader_config.py). It writes the
notebook nbgrader hands it (test cells already restored by `OverwriteCells`) to a scratch file
and grades it as `mnist-kit grade` does: the student's code in a sandboxed kernel, the tests
in this process. Then it gives each graded test cell outputs that nbgrader's `SaveAutoGrades`
reads as exactly the kit's points for that question (`nbgrader.utils.determine_grade`: the
first `execute_result` holding a number is the partial credit, an `error` output is 0), with
the kit's messages printed above it for nbgrader's feedback. Other cells keep the student's
code with their outputs cleared (nbgrader's `ClearOutput` already cleared them; the run's own
outputs stay in the sandbox).

`ReleasedChecksumFilter` drops the checksum warning nbgrader logs for every test cell that
lost its hidden tests when the assignment was released.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution
from traitlets import Float, Integer, Unicode

from mnist_kit.grading.results import GradeResult, TestResult
from mnist_kit.grading.sandbox.limits import MEMORY_MB

if TYPE_CHECKING:
    from mnist_kit.grading.engine import Grader  # imported when grading: it needs nbclient

__all__ = ["FencedExecute", "ReleasedChecksumFilter", "graded_cell_outputs"]

# The warning nbgrader's OverwriteCells.report_change logs when a restored cell differs.
CHANGED_WARNING = "Attribute '%s' for cell %s has changed! (should be: %s, got: %s)"
NOT_GRADED = "NotGraded"  # the `ename` of the error output a test cell gets when there is no grade

_GRADERS: dict[tuple, Grader] = {}  # one Grader per set of options, reused for every student


def _grader(assignment: str, options: dict) -> Grader:
    """The kit's Grader for `assignment` with `options`, built once per nbgrader run."""
    from mnist_kit.grading.engine import Grader

    key = (assignment, *sorted(options.items()))
    if key not in _GRADERS:
        _GRADERS[key] = Grader(assignment, **options)
    return _GRADERS[key]


def _error(reason: str) -> NotebookNode:
    return nbformat.v4.new_output("error", ename=NOT_GRADED, evalue=reason, traceback=[reason])


def _question_text(tests: list[TestResult], points: float, max_points: float) -> list[str]:
    """What the kit's feedback says about one question: every visible test, then the hidden
    ones as counts and what each failed one checks (never a hidden test's message)."""
    from mnist_kit.grading.questions import question_title
    from mnist_kit.grading.report import _hidden_summary, _visible_row

    question = tests[0].question
    lines = [
        f"{question_title(question)} ({question}): {points:g} / {max_points:g} points, "
        "graded by mnist-kit outside the notebook's kernel"
    ]
    for test in (t for t in tests if not t.hidden):
        mark, name, earned, what = _visible_row(test)
        lines.append(f"  {mark}  {name} ({earned})")
        if what:
            lines.append(f"        {' '.join(what.split())}")
    hidden = _hidden_summary(tests)
    if hidden:
        summary, failed = hidden
        lines += [summary] + [f"  - {line}" for line in failed]
    return lines


def graded_cell_outputs(
    result: GradeResult, question: str, max_points: float
) -> list[NotebookNode]:
    """The outputs that make nbgrader give `question`'s graded cell the kit's points.

    An error output (0 points) with the reason when the submission was not graded or the kit
    has no test for `question`; else the kit's messages on stdout, then an execute_result whose
    text/plain is the points earned (extra credit left out, as nbgrader has no automatic extra
    credit), at most `max_points`.
    """
    if result.error:
        return [_error(result.error)]
    tests = [t for t in result.tests if t.question == question]
    if not tests:
        return [
            _error(
                f"mnist-kit has no tests for the graded cell {question!r} of {result.assignment}; "
                "grade this cell by hand"
            )
        ]
    points = min(round(sum(t.points for t in tests if not t.extra_credit), 4), max_points)
    text = "\n".join(_question_text(tests, points, max_points)) + "\n"
    return [
        nbformat.v4.new_output("stream", name="stdout", text=text),
        nbformat.v4.new_output(
            "execute_result",
            data={
                "text/plain": repr(float(points)),
                "text/html": f"<code>{points:g} points</code>",
            },
            execution_count=None,
        ),
    ]


@contextlib.contextmanager
def _without_env(name: str) -> Iterator[None]:
    """`name` unset in os.environ for the block, as it is when `mnist-kit grade` runs."""
    saved = os.environ.pop(name, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[name] = saved


class FencedExecute(NbGraderPreprocessor):
    """Grades the notebook with the kit's Grader and writes each test cell's points as outputs."""

    autograder = Unicode(
        "", help="The folder with the hidden tests (default: found as `mnist-kit grade` finds it)."
    ).tag(config=True)
    sandbox = Unicode(
        "auto", help='How the kernel is fenced in: "auto", "bubblewrap", "limited" or "none".'
    ).tag(config=True)
    memory_mb = Integer(
        MEMORY_MB, allow_none=True, help="The kernel's memory cap (None: no cap)."
    ).tag(config=True)
    time_limit = Float(
        0.0, help="Wall-clock seconds per notebook; 0 for the assignment's own."
    ).tag(config=True)

    def _assignment(self, resources: dict) -> str:
        """The kit's assignment for this notebook: nbgrader's assignment id, else the notebook's name."""
        from mnist_kit.grading.assignments import find_assignment

        info = resources.get("nbgrader", {})
        tried = [info.get("assignment"), info.get("notebook")]
        for name in (n for n in tried if n):
            try:
                return find_assignment(name).name
            except ValueError:
                continue
        raise ValueError(
            f"mnist-kit has no assignment called {' or '.join(map(repr, filter(None, tried)))}; "
            "remove FencedExecute from Autograde.autograde_preprocessors to grade it with nbgrader's Execute"
        )

    def grade(self, nb: NotebookNode, assignment: str) -> GradeResult:
        """The kit's GradeResult for `nb`, graded from a scratch copy."""
        options = {
            "autograder": self.autograder or None,
            "sandbox": self.sandbox,
            "memory_mb": self.memory_mb,
            "time_limit": self.time_limit or None,
        }
        grader = _grader(assignment, options)
        with tempfile.TemporaryDirectory(prefix="mnist-kit-nbgrader-") as folder:
            path = Path(folder) / grader.assignment.notebook
            nbformat.write(nb, str(path))
            # nbgrader sets NBGRADER_EXECUTION=autograde; `mnist-kit grade` does not, so neither
            # may the kernel see it: a notebook must not be able to tell the two apart.
            with _without_env("NBGRADER_EXECUTION"):
                return grader.grade(path)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        assignment = self._assignment(resources)
        result = self.grade(nb, assignment)
        student = resources.get("nbgrader", {}).get("student", "?")
        if result.error:
            self.log.warning(
                "mnist-kit could not grade %s's %s: %s", student, assignment, result.error
            )
        else:
            self.log.info(
                "mnist-kit graded %s's %s: %g / %g points", student, assignment, result.score,
                result.max_score,
            )  # fmt: skip
        _write_outputs(nb.cells, result)
        return nb, resources


def _write_outputs(cells: Iterable[NotebookNode], result: GradeResult) -> None:
    """Give every graded test cell its question's outputs; the first also gets the grader's notes."""
    from mnist_kit.grading.report import _grader_lines

    notes = [] if result.error else _grader_lines(result)
    for cell in cells:
        if cell.cell_type != "code" or not is_grade(cell) or is_solution(cell):
            continue
        meta = cell.metadata.nbgrader
        cell.outputs = graded_cell_outputs(
            result, str(meta.get("grade_id", "")), float(meta["points"])
        )
        cell.execution_count = None
        if notes:
            text = "About the whole notebook:\n" + "".join(f"  {line}\n" for line in notes)
            cell.outputs.insert(0, nbformat.v4.new_output("stream", name="stdout", text=text))
            notes = []


class ReleasedChecksumFilter(logging.Filter):
    """Drops nbgrader's "checksum has changed" warning for a test cell handed in as released.

    generate_assignment strips the hidden tests from the kit's test cells, so every student's
    copy differs from solutions/ by design and OverwriteCells warns for each. The warning is
    kept when the student's cell differs from the released one too: that is a real edit.
    """

    def __init__(self, release_folder: str | Path):
        super().__init__()
        self.release_folder = Path(release_folder)
        self._released: dict[str, set[str]] | None = None

    def released(self) -> dict[str, set[str]]:
        """grade_id -> nbgrader checksums of the released notebooks' test cells (read once)."""
        from mnist_kit.grading.engine import reference_checksums

        if self._released is None:
            self._released = reference_checksums(sorted(self.release_folder.glob("*/*.ipynb")))
        return self._released

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg != CHANGED_WARNING or not isinstance(args, tuple) or len(args) != 4:
            return True
        attribute, grade_id, _, got = args
        return attribute != "checksum" or got not in self.released().get(str(grade_id), set())
