"""Step 4, `drop_test_cells`: remove the notebook's test cells; the grader runs the tests itself.

The cells that stay keep their numbers as submitted (in their metadata), so that the notes
name the cells the student sees ("cell 8: ...").
"""

from __future__ import annotations

from mnist_kit.grading.job import Job, Settings
from mnist_kit.grading.kernel import CELL_NUMBER_KEY

__all__ = ["drop_test_cells", "drop_graded_tests"]


def drop_test_cells(job: Job, grader: Settings) -> None:
    """Drop nbgrader's graded test cells and bare check() cells from `job.notebook`."""
    job.notebook = drop_graded_tests(job.notebook)


def _only_checks(cell) -> bool:
    lines = [line.strip() for line in cell.get("source", "").splitlines()]
    code = [line for line in lines if line and not line.startswith("#")]
    return (
        cell.get("cell_type") == "code"
        and bool(code)
        and all(line.startswith("check(") for line in code)
    )


def drop_graded_tests(nb):
    """Remove nbgrader's graded test cells and other check() cells: the grader tests by itself.

    Call it on the notebook as submitted: each cell kept records its number there (1-based,
    every cell counted, as JupyterLab shows it) in its metadata under CELL_NUMBER_KEY, so that
    `run_notebook`'s notes name the student's own cell numbers.
    """
    kept = []
    for index, cell in enumerate(nb.cells):
        cell.setdefault("metadata", {})[CELL_NUMBER_KEY] = index + 1
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if (meta.get("grade") and not meta.get("solution")) or _only_checks(cell):
            continue
        kept.append(cell)
    nb.cells = kept
    return nb
