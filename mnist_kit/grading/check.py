"""`check("q2_architecture")`: run one question's visible tests inside the notebook, right now.

The tests are the same functions the grader runs, on the same kind of files: models are
saved and loaded back, functions are called on grader-made inputs. So the messages a
student sees here are the messages in their feedback. `check` prints a short report and
returns the points earned, which nbgrader reads as the cell's partial credit.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mnist_kit.grading.assignments import (
    assignment_for_question,
    collect_tests,
    find_autograder,
    load_module,
    suite_module,
)
from mnist_kit.grading.in_kernel import count_optimizer_steps, export_named, probe_named
from mnist_kit.grading.questions import HIDDEN_POINTS, question_title
from mnist_kit.grading.results import TestResult, run_tests
from mnist_kit.grading.submission import Submission

__all__ = ["check", "Points"]

count_optimizer_steps()  # a notebook that imported torch before the kit: count its training


class Points(float):
    """Points earned: nbgrader reads the plain number (text/plain) as the cell's partial credit;
    JupyterLab shows the student the HTML line instead of a bare "3.0"."""

    def __repr__(self) -> str:
        return repr(float(self))

    def _repr_html_(self) -> str:
        return f"<code>{float(self):g} points</code>"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No stderr at all while checking: nbgrader gives 0 to a graded cell that writes to stderr."""
    from mnist_kit.device import quiet_stderr

    with quiet_stderr(), contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def live_submission(namespace: dict, folder: Path) -> Submission:
    """A Submission whose files are made on demand from the objects in `namespace`."""

    def produce(section: str, item: Any) -> dict:
        if section == "models":
            return export_named(item, namespace, folder)
        return probe_named(item.kind, item.settings(), item.arrays(), namespace, folder, item.key)

    return Submission(folder, produce=produce)


def _caller_namespace() -> dict:
    frame = sys._getframe(2)
    return frame.f_globals


def _print_report(question: str, results: list[TestResult], hidden_points: float) -> None:
    """What the student reads: the question as the notebook titles it, then each test once."""
    earned = sum(r.points for r in results if not r.hidden)
    total = sum(r.max_points for r in results if not r.hidden)
    title = question_title(question)
    head = f"{title} ({question}): {earned:g}/{total:g} points from the visible tests"
    if hidden_points:
        head += f"; {hidden_points:g} more from hidden tests when your teacher grades"
    print(head)
    said: set[str] = set()
    for result in results:
        if result.hidden:
            continue
        mark = "PASS" if result.passed else "FAIL"
        bonus = " extra credit" if result.extra_credit else ""
        print(
            f"  [{mark}] {result.description} ({result.max_points:g} pt{'s' if result.max_points != 1 else ''}{bonus})"
        )
        if not result.passed:
            print(
                "         (same reason as above)"
                if result.message in said
                else f"         {result.message}"
            )
            said.add(result.message)


def _print_hidden(question: str, results: list[TestResult]) -> None:
    hidden = [r for r in results if r.hidden]
    passed = sum(r.passed for r in hidden)
    earned = sum(r.points for r in hidden)
    total = sum(r.max_points for r in hidden)
    print(
        f"{question_title(question)} ({question}): hidden tests {passed}/{len(hidden)} passed "
        f"({earned:g}/{total:g} points)"
    )


def check(question: str, *, hidden: bool = False) -> Points:
    """Run the visible tests of `question` (e.g. "q2_architecture") on this notebook's objects.

    Returns the points earned. With `hidden=True` (only in the teacher's copy, which nbgrader
    grades) it runs the question's visible and hidden tests together from the autograder
    folder and returns all their points, whatever ran before in this kernel.
    """
    assignment = assignment_for_question(question)
    namespace = _caller_namespace()
    module = (
        load_module(find_autograder() / assignment.autograder_file)
        if hidden
        else suite_module(assignment)
    )
    tests = [(f, i) for f, i in collect_tests(module) if i.question == question]
    if hidden:
        hidden_points = sum(i.points for _, i in tests if i.hidden)
    else:
        hidden_points = HIDDEN_POINTS.get(question, 0.0)
    if not tests or (hidden and not any(i.hidden for _, i in tests)):
        raise ValueError(
            f"assignment {assignment.name} has no {'hidden ' if hidden else ''}tests for {question!r}"
        )
    with tempfile.TemporaryDirectory(prefix="mnist-kit-check-") as folder, _quiet():
        results = run_tests(tests, live_submission(namespace, Path(folder)))
    if hidden:
        _print_hidden(question, results)
    else:
        _print_report(question, results, hidden_points)
    return Points(sum(r.points for r in results if not r.extra_credit))
