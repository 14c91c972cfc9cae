"""Are the student notebooks in exercises/ exactly what nbgrader generates from solutions/?"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mnist_kit.grading.assignments import ASSIGNMENTS
from mnist_kit.grading.generate import differences, generate_exercises

ROOT = Path(__file__).resolve().parents[1]


def _notebooks(folder: str):
    for assignment in ASSIGNMENTS.values():
        path = ROOT / folder / assignment.name / assignment.notebook
        yield path, nbformat.read(str(path), as_version=4)


def test_exercises_match_what_nbgrader_generates(tmp_path):
    """Does regenerating with nbgrader reproduce every committed exercise cell by cell?

    When this fails, run `python -m mnist_kit.grading.generate` and commit exercises/.
    """
    generate_exercises(ROOT / "solutions", tmp_path)
    assert differences(tmp_path, ROOT / "exercises") == []


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
def test_notebooks_are_committed_without_outputs(folder):
    """Are the notebooks stored with no outputs and no execution counts?"""
    for path, nb in _notebooks(folder):
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path


def test_exercises_hold_no_solutions_and_no_hidden_tests():
    """Do the student versions keep the visible check() calls but lose solutions and hidden tests?"""
    for path, nb in _notebooks("exercises"):
        text = "\n".join(cell.source for cell in nb.cells)
        assert (
            "BEGIN SOLUTION" not in text
            and "BEGIN HIDDEN TESTS" not in text
            and "hidden=True" not in text
        ), path
        assert "raise NotImplementedError()" in text and 'check("q' in text, path


def test_every_notebook_names_its_lesson_and_time():
    """Does each assignment open with its title, the lesson it follows and how long it takes?"""
    for assignment in ASSIGNMENTS.values():
        nb = nbformat.read(
            str(ROOT / "exercises" / assignment.name / assignment.notebook), as_version=4
        )
        first = nb.cells[0].source
        assert first.startswith(f"# Assignment {assignment.number}:") and assignment.lesson in first
        assert "**Time:**" in first
