"""pytest glue for `autograder/`: the `submission` fixture, and a collector of points and messages.

Teachers can run one module by hand on a kept artifact folder:
`pytest autograder/test_02_keras_mlp.py --submission graded/alice-02-keras-mlp/out`.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from mnist_kit.grading.declare import Fail
from mnist_kit.grading.results import TestResult, outcome
from mnist_kit.grading.submission import Submission

__all__ = ["submission", "Collector", "run_pytest"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mnist-kit")
    group.addoption(
        "--submission", metavar="DIR", help="artifact folder the student's kernel wrote"
    )


@pytest.fixture(scope="session")
def submission(request: pytest.FixtureRequest) -> Submission:
    """The submission under test, loaded once per run from --submission DIR."""
    folder = request.config.getoption("--submission")
    if not folder:
        pytest.skip(
            "no --submission DIR given (an artifact folder kept by `mnist-kit grade --keep`)"
        )
    return Submission(folder)


class Collector:
    """Records each graded test's points and message as pytest reports it."""

    def __init__(self) -> None:
        self.results: dict[str, TestResult] = {}
        self.measurements: dict[str, float] = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = (yield).get_result()
        function = getattr(item, "function", None)
        info = getattr(function, "grading", None)
        if info is None:
            return
        submission = getattr(item, "funcargs", {}).get("submission")
        if isinstance(submission, Submission):
            self.measurements = submission.measurements
        if report.when == "call" or (report.when == "setup" and not report.passed):
            error = call.excinfo.value if call.excinfo is not None else None
            if report.skipped:
                error = Fail(f"not run: {getattr(error, 'msg', error)}")
            self.results[item.nodeid] = outcome(function, info, error)


def run_pytest(test_file: Path, artifacts: Path) -> tuple[list[TestResult], dict[str, float]]:
    """Run one autograder module in this process on an artifact folder; return results and measurements."""
    collector = Collector()
    folder = test_file.parent
    args = [
        str(test_file),
        f"--submission={artifacts}",
        "-q",
        "-p", "no:cacheprovider",
        "-p", "no:benchmark",  # pytest-benchmark, where installed, leaves .benchmarks/ in the cwd
        "--import-mode=importlib",
        "-c", str(folder / "pytest.ini"),
        "--rootdir", str(folder),
    ]  # fmt: skip
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        code = pytest.main(args, plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        tail = "\n".join(report.getvalue().strip().splitlines()[-15:])
        raise RuntimeError(f"pytest could not run {test_file.name} (exit {int(code)}):\n{tail}")
    return list(collector.results.values()), dict(collector.measurements)
