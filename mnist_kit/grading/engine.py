"""Grade submitted notebooks: a pipeline of small steps, each named for what it does.

For each submission, in order (the order matters: the plan must exist before the kernel
runs, and the checks read only what the kernel wrote):

1. `read_submission`   - parse the notebook; a broken file becomes an error row, not a crash
2. `drop_graded_tests` - remove nbgrader test cells: the grader runs the tests itself
3. `write_plan`        - models to save and probes to run, with grader-made inputs as .npz
4. `run_notebook`      - a scratch copy runs in its own kernel with a wall-clock limit,
                         then the export code saves models and probe outputs (kernel.py)
5. `run_pytest`        - the autograder's tests run in this process on those files
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from mnist_kit.grading.assignments import (
    Assignment,
    collect_probes,
    collect_tests,
    find_assignment,
    find_autograder,
    load_module,
    suite_module,
)
from mnist_kit.grading.kernel import KernelLauncher, kernel_env, run_notebook
from mnist_kit.grading.results import GradeResult, TestResult, not_run
from mnist_kit.grading.spec import Probe

__all__ = [
    "grade_notebook",
    "grade_many",
    "read_submission",
    "drop_graded_tests",
    "write_plan",
    "Grader",
]

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024  # larger files are refused before parsing


class SubmissionError(ValueError):
    """The submission cannot be graded at all; the message says why."""


def read_submission(path: Path):
    """The notebook at `path` as nbformat v4, or SubmissionError saying what is wrong with it."""
    import nbformat

    if not path.is_file():
        raise SubmissionError(f"no such file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise SubmissionError("the file is empty")
    if size > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(
            f"the file is {size / 1e6:.0f} MB; notebooks over {MAX_NOTEBOOK_BYTES // 10**6} MB are not graded"
        )
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the student's file, not the grader
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SubmissionError(f"not a readable Jupyter notebook ({first[:200]})") from None
    if not isinstance(nb.get("cells"), list):
        raise SubmissionError("the notebook has no list of cells")
    return nb


def _only_checks(cell) -> bool:
    lines = [line.strip() for line in cell.get("source", "").splitlines()]
    code = [line for line in lines if line and not line.startswith("#")]
    return (
        cell.get("cell_type") == "code"
        and bool(code)
        and all(line.startswith("check(") for line in code)
    )


def drop_graded_tests(nb):
    """Remove nbgrader's graded test cells and other check() cells: the grader tests by itself."""
    kept = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if (meta.get("grade") and not meta.get("solution")) or _only_checks(cell):
            continue
        kept.append(cell)
    nb.cells = kept
    return nb


def write_plan(folder: Path, models: Iterable[str], probes: Iterable[Probe]) -> None:
    """Write plan.json and one `<key>.in.npz` per probe for the kernel to read."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for probe in probes:
        np.savez(folder / f"{probe.key}.in.npz", **probe.arrays())
        entries.append({"key": probe.key, "kind": probe.kind, "settings": probe.settings()})
    (folder / "plan.json").write_text(
        json.dumps({"models": list(models), "probes": entries}, indent=1)
    )


def kernel_preamble(assignment: Assignment) -> str:
    """Code run before the notebook: seed what training uses, so a grade is reproducible."""
    lines = ["import random as _r, numpy as _np", "_r.seed(0); _np.random.seed(0)"]
    if "keras" in assignment.seed_frameworks:
        lines += ["import keras as _k", "_k.utils.set_random_seed(0)"]
    if "torch" in assignment.seed_frameworks:
        lines += ["import torch as _t", "_t.manual_seed(0)"]
    lines.append(
        "del " + ", ".join(n for n in ("_r", "_np", "_k", "_t") if f"as {n}" in "\n".join(lines))
    )
    return "\n".join(lines)


def export_code(plan: Path, out: Path) -> str:
    """Code run after the notebook: save models and run probes (see export.py)."""
    return (
        "from mnist_kit.grading.export import run_plan as _mnist_kit_run_plan\n"
        f"_mnist_kit_run_plan({str(plan)!r}, {str(out)!r}, globals())"
    )


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
    ):
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
        self.launcher = launcher
        self.time_limit = time_limit or self.assignment.time_limit
        self.keep = Path(keep) if keep else None

    def grade(self, path: str | Path) -> GradeResult:
        """Grade one notebook; any failure ends in a GradeResult with `error` set."""
        from mnist_kit.grading.pytest_plugin import run_pytest

        path = Path(path)
        started = time.monotonic()
        name = self.assignment.name
        try:
            nb = drop_graded_tests(read_submission(path))
        except SubmissionError as exc:
            reason = f"not graded: {exc}"
            return GradeResult.build(
                str(path), name, not_run(self.tests, reason), time.monotonic() - started, reason
            )
        scratch = Path(tempfile.mkdtemp(prefix="mnist-kit-grade-"))
        try:
            work, plan, out = scratch / "work", scratch / "plan", scratch / "out"
            work.mkdir()
            write_plan(plan, self.assignment.models, self.probes)
            log = run_notebook(
                nb,
                work,
                time_limit=self.time_limit,
                before=kernel_preamble(self.assignment),
                after=export_code(plan, out),
                launcher=self.launcher,
                env=kernel_env(),
            )
            (scratch / "run.json").write_text(json.dumps(dataclasses.asdict(log), indent=1))
            notes = list(log.errors)
            if log.timed_out:
                notes.insert(0, f"timed out after {self.time_limit:.0f} s; graded on what finished")
            if log.kernel_died:
                notes.insert(
                    0, "the kernel died (the notebook exited or crashed); graded on what finished"
                )
            if log.finish_error:
                notes.append(f"saving the work for grading failed: {log.finish_error}")
            if not (out / "manifest.json").is_file():
                reason = notes[0] if notes else "the notebook produced nothing to grade"
                tests = not_run(self.tests, f"nothing to grade: {reason}")
                return GradeResult.build(
                    str(path), name, tests, time.monotonic() - started, None, notes
                )
            results, measurements = run_pytest(self.test_file, out)
            _release_models()
            tests = _in_order(results, self.tests)
            return GradeResult.build(
                str(path), name, tests, time.monotonic() - started, None, notes, measurements
            )
        except Exception as exc:  # noqa: BLE001 - one broken submission never stops the others
            reason = f"grading failed: {type(exc).__name__}: {str(exc).strip()[:300]}"
            return GradeResult.build(
                str(path), name, not_run(self.tests, reason), time.monotonic() - started, reason
            )
        finally:
            if self.keep is not None and scratch.exists():
                target = self.keep / _slug(path)
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(scratch, target)
            shutil.rmtree(scratch, ignore_errors=True)


def _release_models() -> None:
    """Free the models the checks loaded (Keras keeps every model ever built otherwise)."""
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session()


def _slug(path: Path) -> str:
    parts = [p for p in path.with_suffix("").parts[-3:] if p not in ("/", "..", ".")]
    return "-".join(parts).replace(" ", "_")


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


def grade_notebook(path: str | Path, assignment: str, **options) -> GradeResult:
    """Grade one submitted notebook for `assignment` (see `Grader` for the options)."""
    return Grader(assignment, **options).grade(path)


def grade_many(
    paths: Iterable[str | Path],
    assignment: str,
    *,
    on_result: Callable[[GradeResult], None] | None = None,
    **options,
) -> list[GradeResult]:
    """Grade several submissions one after another; `on_result` sees each as it finishes."""
    grader = Grader(assignment, **options)
    results = []
    for path in paths:
        result = grader.grade(path)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
