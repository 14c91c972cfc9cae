"""Graded exercises: `check()` for students, `Grader` for teachers.

Importing this package loads no framework. See docs/teachers.md for the course set-up and
`mnist-kit grade --help` for the command line.
"""

from mnist_kit.grading.assignments import ASSIGNMENTS, Assignment, find_assignment
from mnist_kit.grading.check import check
from mnist_kit.grading.declare import Call, EvalRun, Fail, TrainRun, Value, expect, graded
from mnist_kit.grading.results import GradeResult, TestResult

__all__ = [
    "check",
    "Grader",
    "GradeResult",
    "TestResult",
    "ASSIGNMENTS",
    "Assignment",
    "find_assignment",
    "graded",
    "Fail",
    "expect",
    "Call",
    "Value",
    "TrainRun",
    "EvalRun",
]


def __getattr__(name: str):
    """The engine (which needs nbclient and pytest) is imported only when asked for."""
    if name == "Grader":
        from mnist_kit.grading import engine

        return engine.Grader
    raise AttributeError(f"module 'mnist_kit.grading' has no attribute {name!r}")
