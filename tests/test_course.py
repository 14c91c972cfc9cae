"""Tests of the course: every lesson runs top to bottom, is committed clean, and Keras matches PyTorch."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "course"
LESSONS = [
    "01-neuron",
    "02-data",
    "03-first-model",
    "04-training",
    "05-cnn",
    "06-pytorch",
    "07-errors",
    "08-beyond-99",
    "09-playground",
]
NOTEBOOKS = [COURSE / f"{name}.ipynb" for name in LESSONS]
CNN_LESSONS = ["05-cnn", "08-beyond-99"]
FAST_FLAG = 'os.environ.get("MNIST_KIT_FAST") == "1"'
# A quoted result such as "99.2%" in the prose would be a claim the notebook's output may not back.
QUOTED_RESULT = re.compile(r"\d+\.\d+\s?%")
TEST_ACCURACY_LINE = re.compile(r"test accuracy:? (\d+\.\d+)%")


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def execute(path: Path, timeout: int, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh kernel, from the course folder; return it with outputs."""
    from nbclient import NotebookClient

    notebook = read(path)
    # The kernel inherits this environment: make it import this checkout's mnist_kit.
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(COURSE)}},
    )
    client.execute()
    return notebook


def printed_text(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook's code cells printed to stdout."""
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
    )


def test_course_has_the_nine_lessons_and_a_readme():
    """Are the nine lessons there under their names, with nothing unexpected, and a README listing each?"""
    found = sorted(path.stem for path in COURSE.glob("*.ipynb"))
    assert found == LESSONS
    readme = (COURSE / "README.md").read_text(encoding="utf-8")
    for name in LESSONS:
        assert f"{name}.ipynb" in readme, f"course/README.md does not list {name}.ipynb"


def test_every_notebook_is_committed_as_nbstripout_leaves_it():
    """Would nbstripout (the pre-commit hook, .pre-commit-config.yaml) change no notebook?"""
    import subprocess
    import sys

    root = COURSE.parent
    notebooks = sorted(str(p.relative_to(root)) for p in root.glob("*/**/*.ipynb")
                       if "artifacts" not in p.parts and ".ipynb_checkpoints" not in p.parts)  # fmt: skip
    assert len(notebooks) >= len(NOTEBOOKS) + 12  # lessons, solutions and exercises
    done = subprocess.run(
        [sys.executable, "-m", "nbstripout", "--verify", "--keep-id", *notebooks],
        cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, f"run: nbstripout --keep-id <notebook>\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_opens_with_its_plan_and_ends_with_things_to_try(path):
    """Does the lesson state what it teaches, what to know first and how long it takes, then end with a summary and things to try?"""
    cells = read(path).cells
    number = int(path.stem[:2])
    first = cells[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith(f"# Lesson {number}: ")
    for heading in ("**What you will learn**", "**Before you start:**", "**Time:**"):
        assert heading in first.source, f"{path.name}: the first cell lacks {heading}"
    ending = "\n".join(cell.source for cell in cells[-2:] if cell.cell_type == "markdown")
    assert "## Summary" in ending and "## Things to try" in ending


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_prose_quotes_no_measured_result(path):
    """Is the prose free of precise percentages, so that every result a reader sees is one the notebook printed?"""
    for index, cell in enumerate(read(path).cells):
        if cell.cell_type == "markdown":
            quoted = QUOTED_RESULT.findall(cell.source)
            assert not quoted, (
                f"{path.name} cell {index} quotes {quoted}; print the number from code"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_training_notebooks_read_the_fast_setting(path):
    """Does every notebook that trains read MNIST_KIT_FAST, so that CI shortens its training instead of skipping it?"""
    code = "\n".join(cell.source for cell in read(path).cells if cell.cell_type == "code")
    if ".fit(" in code or "train(" in code:
        assert FAST_FLAG in code, f"{path.name} trains but never reads MNIST_KIT_FAST"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    """Does the lesson run from a fresh kernel to its last cell without an error (fast setting)?"""
    monkeypatch.setenv("MNIST_KIT_FAST", "1")
    notebook = execute(path, timeout=900, monkeypatch=monkeypatch)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells)


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("MNIST_KIT_FULL_LESSONS") != "1",
    reason="trains the CNN lessons at full length (about 7 minutes); set MNIST_KIT_FULL_LESSONS=1",
)
@pytest.mark.parametrize("name", CNN_LESSONS)
def test_cnn_lesson_reaches_99_percent_with_the_full_setting(name, monkeypatch):
    """Does the CNN lesson, run with the full setting, print a test accuracy of at least 99%?"""
    monkeypatch.delenv("MNIST_KIT_FAST", raising=False)
    notebook = execute(COURSE / f"{name}.ipynb", timeout=3600, monkeypatch=monkeypatch)
    accuracies = [float(value) for value in TEST_ACCURACY_LINE.findall(printed_text(notebook))]
    assert accuracies, f"{name} printed no 'test accuracy: NN.NN%' line"
    print(f"{name}: printed test accuracies {accuracies}")
    assert accuracies[-1] >= 99.0, f"{name} reached {accuracies[-1]}% with the full setting"


@pytest.mark.slow
def test_keras_and_pytorch_mlps_match(mnist):
    """Do the Keras and PyTorch MLPs have equal parameter counts and test accuracies within 1 point?"""
    from mnist_kit.training import train

    runs = {
        framework: train(framework, "mlp", epochs=2, batch_size=64, seed=0, data=mnist, verbose=0)
        for framework in ("keras", "torch")
    }
    assert runs["keras"].params == runs["torch"].params == 109_386
    accuracies = {framework: run.test_accuracy for framework, run in runs.items()}
    assert min(accuracies.values()) >= 0.95, f"a framework did not learn: {accuracies}"
    assert abs(accuracies["keras"] - accuracies["torch"]) <= 0.01, accuracies


@pytest.mark.slow
def test_keras_and_pytorch_cnns_match(mnist):
    """Do the Keras and PyTorch CNNs have equal parameter counts and test accuracies within 1 point?"""
    from mnist_kit.training import train

    runs = {
        # One epoch on a quarter of the training images: about 95% in both, within a minute.
        framework: train(
            framework,
            "cnn",
            epochs=1,
            batch_size=64,
            seed=0,
            train_fraction=0.25,
            data=mnist,
            verbose=0,
        )
        for framework in ("keras", "torch")
    }
    assert runs["keras"].params == runs["torch"].params == 225_034
    accuracies = {framework: run.test_accuracy for framework, run in runs.items()}
    assert min(accuracies.values()) >= 0.93, f"a framework did not learn: {accuracies}"
    assert abs(accuracies["keras"] - accuracies["torch"]) <= 0.01, accuracies
