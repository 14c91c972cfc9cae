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
from mnist_kit.grading.export import export_named, probe_named
from mnist_kit.grading.results import TestResult, run_tests
from mnist_kit.grading.submission import Submission

__all__ = ["check", "Points"]

_VISIBLE_POINTS: dict[str, float] = {}  # the last visible result per question, for hidden=True


class Points(float):
    """Points earned; shown as a plain number so nbgrader can read it as partial credit."""

    def __repr__(self) -> str:
        return repr(float(self))


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


def _print_report(question: str, results: list[TestResult], hidden: bool) -> None:
    earned = sum(r.points for r in results)
    total = sum(r.max_points for r in results)
    if hidden:
        passed = sum(r.passed for r in results)
        print(
            f"{question}: hidden tests {passed}/{len(results)} passed ({earned:g}/{total:g} points)"
        )
        return
    print(f"{question}: {earned:g}/{total:g} points")
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        bonus = " extra credit" if result.extra_credit else ""
        print(
            f"  [{mark}] {result.description} ({result.max_points:g} pt{'s' if result.max_points != 1 else ''}{bonus})"
        )
        if not result.passed:
            print(f"         {result.message}")


def check(question: str, *, hidden: bool = False) -> Points:
    """Run the visible tests of `question` (e.g. "q2_architecture") on this notebook's objects.

    Returns the points earned. With `hidden=True` (only in the teacher's copy) it runs the
    question's hidden tests from the autograder folder and returns visible + hidden points.
    """
    assignment = assignment_for_question(question)
    namespace = _caller_namespace()
    if hidden:
        module = load_module(find_autograder() / assignment.autograder_file)
        tests = [(f, i) for f, i in collect_tests(module) if i.question == question and i.hidden]
    else:
        tests = [
            (f, i) for f, i in collect_tests(suite_module(assignment)) if i.question == question
        ]
    if not tests:
        raise ValueError(
            f"assignment {assignment.name} has no {'hidden ' if hidden else ''}tests for {question!r}"
        )
    with tempfile.TemporaryDirectory(prefix="mnist-kit-check-") as folder, _quiet():
        results = run_tests(tests, live_submission(namespace, Path(folder)))
    _print_report(question, results, hidden)
    earned = sum(r.points for r in results if not r.extra_credit)
    if hidden:
        return Points(earned + _VISIBLE_POINTS.pop(question, 0.0))
    _VISIBLE_POINTS[question] = earned
    return Points(earned)
