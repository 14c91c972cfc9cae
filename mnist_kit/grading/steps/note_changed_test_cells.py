"""Step 2, `note_changed_test_cells`: which graded test cells the student edited or deleted.

A cell is unchanged when its nbgrader checksum matches the same cell (by grade id) in a
reference notebook: the student version in exercises/ or the teacher's source in solutions/.
The grader runs its own tests either way; the change becomes a note.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mnist_kit.grading.job import Job, Settings

__all__ = ["note_changed_test_cells", "graded_cells_changed", "reference_checksums"]


def note_changed_test_cells(job: Job, grader: Settings) -> None:
    """Record in `job.changed` the grade ids of the test cells that differ from the references."""
    job.changed = graded_cells_changed(job.notebook, grader.expected_cells)


def _graded_checksums(nb) -> dict[str, list[str]]:
    """grade_id -> nbgrader checksums of the notebook's graded (test) cells."""
    from nbgrader.utils import compute_checksum, is_grade, is_solution

    found: dict[str, list[str]] = {}
    for cell in nb.cells:
        try:
            if is_grade(cell) and not is_solution(cell):
                grade_id = cell.metadata.nbgrader.get("grade_id", "")
                found.setdefault(str(grade_id), []).append(compute_checksum(cell))
        except Exception:  # noqa: BLE001 - malformed metadata counts as a changed cell
            found.setdefault("?", []).append("")
    return found


def reference_checksums(references: Iterable[Path]) -> dict[str, set[str]]:
    """grade_id -> accepted nbgrader checksums, from the reference notebooks that can be read."""
    import nbformat

    expected: dict[str, set[str]] = {}
    for path in references:
        try:
            sums = _graded_checksums(nbformat.read(str(path), as_version=4))
        except Exception:  # noqa: BLE001 - a missing or broken reference only skips the check
            continue
        for grade_id, found in sums.items():
            expected.setdefault(grade_id, set()).update(found)
    return expected


def graded_cells_changed(nb, expected: dict[str, set[str]]) -> list[str]:
    """grade_ids of graded test cells the student changed, deleted or duplicated.

    `expected` comes from `reference_checksums`: a cell is unchanged when its nbgrader checksum
    matches the same cell in any reference (the student version in exercises/, or the teacher's
    source in solutions/). Empty when there is no reference.
    """
    if not expected:
        return []
    present = _graded_checksums(nb)
    changed = [
        grade_id
        for grade_id, sums in expected.items()
        if len(present.get(grade_id, [])) != 1 or present[grade_id][0] not in sums
    ]
    return changed + sorted(g for g in present if g not in expected)
