"""Step 7, `run_tests`: the autograder's tests run in this process on what the kernel saved.

pytest runs the assignment's autograder module (visible and hidden tests) with the kit's
plugin (pytest_plugin.py); models are loaded in safe modes and measured here.
"""

from __future__ import annotations

import sys

from mnist_kit.grading.job import Job, Settings
from mnist_kit.grading.results import TestResult, not_run

__all__ = ["run_tests"]


def run_tests(job: Job, grader: Settings) -> None:
    """Grade `job.out` with the autograder module; the results, in its order, end the job."""
    from mnist_kit.grading.pytest_plugin import run_pytest

    results, measurements = run_pytest(grader.test_file, job.out)
    _release_models()
    job.finish(_in_order(results, grader.tests), measurements=measurements)


def _release_models() -> None:
    """Free the models the checks loaded (Keras keeps every model ever built otherwise)."""
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session()


def _in_order(results: list[TestResult], tests) -> list[TestResult]:
    """Results in the module's test order; a test pytest did not report counts as not run."""
    by_name = {r.name: r for r in results}
    ordered = []
    for function, info in tests:
        ordered.append(
            by_name.get(function.__name__)
            or not_run([(function, info)], "this test did not run")[0]
        )
    return ordered
