"""Grading results: one `TestResult` per test, one `GradeResult` per submission."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from mnist_kit.grading.declare import Fail, TestInfo

__all__ = ["TestResult", "GradeResult", "outcome", "run_tests", "not_run"]


@dataclass
class TestResult:
    """One test's outcome: points earned out of max_points, and what to change if it failed."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    question: str
    points: float
    max_points: float
    passed: bool
    message: str
    hidden: bool = False
    extra_credit: bool = False
    description: str = ""
    about: str = ""  # a hidden test's public description (TestInfo.about); "" for visible tests


@dataclass
class GradeResult:
    """One submission's grade. `error` says why it could not be graded (None when it was)."""

    submission: str
    assignment: str
    score: float
    max_score: float
    tests: list[TestResult]
    seconds: float
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # e.g. cells that raised, a time-out
    measurements: dict[str, float] = field(
        default_factory=dict
    )  # e.g. {"model.test_accuracy": 0.978}

    @classmethod
    def build(cls, submission: str, assignment: str, tests: list[TestResult], seconds: float,
              error: str | None = None, notes: list[str] | None = None,
              measurements: dict[str, float] | None = None) -> GradeResult:  # fmt: skip
        """Sum the points: extra-credit tests add to the score but not to the maximum."""
        score = sum(t.points for t in tests)
        max_score = sum(t.max_points for t in tests if not t.extra_credit)
        return cls(submission, assignment, round(score, 4), round(max_score, 4), tests, round(seconds, 2),
                   error, list(notes or []), dict(measurements or {}))  # fmt: skip

    @property
    def extra_credit(self) -> float:
        return sum(t.points for t in self.tests if t.extra_credit)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["extra_credit"] = self.extra_credit
        return data


def _describe(function: Callable) -> str:
    doc = inspect.getdoc(function) or ""
    return doc.splitlines()[0] if doc else function.__name__


def outcome(function: Callable, info: TestInfo, error: BaseException | None) -> TestResult:
    """The result of one test, given the exception it raised (None if it passed)."""
    if error is None:
        passed, message = True, "passed"
    elif isinstance(error, AssertionError):
        passed, message = False, str(error).strip() or f"{function.__name__} failed"
    else:
        passed = False
        message = f"the check could not run: {type(error).__name__}: {str(error).strip()[:300]}"
    return TestResult(
        name=function.__name__,
        question=info.question,
        points=info.points if passed else 0.0,
        max_points=info.points,
        passed=passed,
        message=message,
        hidden=info.hidden,
        extra_credit=info.extra_credit,
        description=_describe(function),
        about=info.about,
    )


def run_tests(tests: Iterable[tuple[Callable, TestInfo]], submission: Any) -> list[TestResult]:
    """Call each test with the submission (as `check()` does inside a notebook)."""
    results = []
    for function, info in tests:
        try:
            function(submission)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            results.append(outcome(function, info, exc))
        else:
            results.append(outcome(function, info, None))
    return results


def not_run(tests: Iterable[tuple[Callable, TestInfo]], reason: str) -> list[TestResult]:
    """Zero-point results for tests that never ran, each carrying the reason."""
    return [outcome(function, info, Fail(reason)) for function, info in tests]
