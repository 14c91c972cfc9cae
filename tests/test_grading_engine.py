"""Does the grading pipeline survive notebooks that run too long or kill their kernel?

Each test grades a small assignment-1 notebook in a real kernel (a few seconds each).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mnist_kit.grading.engine import Grader, drop_graded_tests

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "01-data" / "01-data.ipynb"


def _solution_with(tmp_path: Path, extra: str, at_end: bool = True) -> Path:
    """The assignment-1 solution with one more code cell, at the end or at the start."""
    nb = nbformat.read(str(SOLUTION), as_version=4)
    cell = nbformat.v4.new_code_cell(extra)
    nb.cells = [*nb.cells, cell] if at_end else [cell, *nb.cells]
    path = tmp_path / "submission.ipynb"
    nbformat.write(nb, str(path))
    return path


def test_time_limit_stops_the_notebook_and_grades_what_finished(tmp_path):
    """Is a notebook that sleeps forever stopped at the limit, noted, and still graded on its functions?"""
    result = Grader("01-data", time_limit=20).grade(
        _solution_with(tmp_path, "import time\ntime.sleep(10**6)")
    )
    assert result.error is None
    assert result.notes[0].startswith("timed out after 20 s")
    assert result.score == result.max_score
    assert result.seconds < 120


def test_a_kernel_that_exits_gives_a_reason_not_a_crash(tmp_path):
    """Does os._exit() in the first cell end with zero points and a note saying the kernel died?"""
    result = Grader("01-data").grade(
        _solution_with(tmp_path, "import os\nos._exit(3)", at_end=False)
    )
    assert result.error is None and result.score == 0
    assert "kernel died" in result.notes[0]
    assert all("kernel died" in t.message for t in result.tests)


def test_graded_test_cells_are_not_run_by_the_grader():
    """Are nbgrader test cells and bare check() cells dropped before the notebook runs?"""
    nb = nbformat.read(str(SOLUTION), as_version=4)
    kept = drop_graded_tests(nb)
    assert not any("check(" in cell.source for cell in kept.cells if cell.cell_type == "code")
    assert any("def split_train_val" in cell.source for cell in kept.cells)


def test_sandbox_choices_pick_the_launcher(monkeypatch):
    """Do sandbox="none"/"limited"/"bubblewrap" give those launchers, and is a missing bubblewrap explained?"""
    from mnist_kit.grading import sandbox
    from mnist_kit.grading.kernel import LocalKernel
    from mnist_kit.grading.sandbox import make_launcher

    assert isinstance(make_launcher("none"), LocalKernel)
    limited = make_launcher("limited", memory_mb=2048)
    assert isinstance(limited, sandbox.LimitedKernel) and limited.limits.memory_mb == 2048
    grader = Grader("01-data", launcher=LocalKernel(), sandbox="bubblewrap")
    assert isinstance(grader.launcher, LocalKernel)  # an explicit launcher wins
    with pytest.raises(ValueError, match="sandbox must be one of"):
        make_launcher("docker")
    monkeypatch.setattr(sandbox, "bubblewrap_problem", lambda *a: "/usr/bin/bwrap does not exist")
    with pytest.raises(RuntimeError, match="apt install bubblewrap"):
        make_launcher("bubblewrap")


def test_the_default_grader_sandboxes_with_the_scratch_binds():
    """Does Grader() use bubblewrap (where it works) with only plan/ read-only and out/ writable?"""
    from mnist_kit.grading import sandbox

    grader = Grader("01-data", memory_mb=3000)
    if sandbox.bubblewrap_problem() is not None:
        pytest.skip(f"bubblewrap cannot be used here: {sandbox.bubblewrap_problem()}")
    assert isinstance(grader.launcher, sandbox.BubblewrapKernel)
    assert grader.launcher.extra_ro_binds == ("../plan",)
    assert grader.launcher.extra_rw_binds == ("../out",)
    assert grader.launcher.limits.memory_mb == 3000 == grader.memory_limit_mb
