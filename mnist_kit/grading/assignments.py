"""The six graded assignments: where each lives, which lesson it follows, what the grader saves.

Visible tests ship with the kit in `mnist_kit.grading.suites` (students run them with
`check("q2_architecture")`); hidden tests live only in the teacher's `autograder/` folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from mnist_kit.grading.declare import Probe, TestInfo

__all__ = [
    "Assignment",
    "ASSIGNMENTS",
    "find_assignment",
    "assignment_for_question",
    "find_autograder",
    "reference_notebooks",
    "load_module",
    "collect_tests",
    "collect_probes",
]


KIT_ROOT = Path(__file__).resolve().parents[2]  # the kit's own exercises/ and solutions/


@dataclass(frozen=True)
class Assignment:
    """One graded notebook and what grading it needs."""

    name: str  # folder and notebook name: solutions/NAME/NAME.ipynb
    number: int
    title: str
    lesson: str  # the course notebook it follows
    suite: str  # module with the visible tests
    models: tuple[str, ...] = ()  # notebook variables saved as models for the grader
    seed_frameworks: tuple[
        str, ...
    ] = ()  # seeded before the notebook runs, for reproducible grades
    time_limit: float = 600.0  # wall-clock seconds for the whole notebook
    pass_mark: float = 0.5  # the fraction of the maximum score a TOTAL row calls passed

    @property
    def notebook(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def autograder_file(self) -> str:
        return f"test_{self.name.replace('-', '_')}.py"


ASSIGNMENTS: dict[str, Assignment] = {
    a.name: a
    for a in (
        Assignment("01-data", 1, "Data", "course/02-data.ipynb", "data", time_limit=180),
        Assignment(
            "02-keras-mlp", 2, "First MLP in Keras", "course/03-first-model.ipynb", "keras_mlp",
            models=("model",), seed_frameworks=("keras",), time_limit=400,
        ),
        Assignment(
            "03-keras-cnn", 3, "CNN in Keras", "course/05-cnn.ipynb", "keras_cnn",
            models=("model",), seed_frameworks=("keras",), time_limit=600,
        ),
        Assignment(
            "04-pytorch", 4, "The same in PyTorch", "course/06-pytorch.ipynb", "pytorch",
            models=("mlp_model", "cnn_model"), seed_frameworks=("torch",), time_limit=600,
        ),
        Assignment("05-errors", 5, "Finding the errors", "course/07-errors.ipynb", "errors", time_limit=300),
        Assignment(
            "06-beyond-99", 6, "Beyond 99% (challenge)", "course/08-beyond-99.ipynb", "beyond_99",
            models=("model",), time_limit=900,
        ),
    )
}  # fmt: skip


def find_assignment(name: str | int) -> Assignment:
    """The assignment called `name` ("02-keras-mlp", "keras-mlp", "02" or 2)."""
    text = str(name).strip().lower().removesuffix(".ipynb")
    for assignment in ASSIGNMENTS.values():
        if text in (
            assignment.name,
            assignment.name[3:],
            str(assignment.number),
            f"{assignment.number:02d}",
        ):
            return assignment
    known = ", ".join(ASSIGNMENTS)
    raise ValueError(f"no assignment called {name!r}; choose one of: {known}")


def assignment_for_question(question: str) -> Assignment:
    """The assignment a question id like "q2_architecture" belongs to."""
    head = question.split("_", 1)[0]
    if not (head.startswith("q") and head[1:].isdigit()):
        raise ValueError(f"question ids look like 'q2_architecture', got {question!r}")
    return find_assignment(int(head[1:]))


def find_autograder(folder: str | os.PathLike | None = None) -> Path:
    """The teacher's autograder folder: `folder`, $MNIST_KIT_AUTOGRADER, ./autograder or above, or the kit's."""
    candidates: list[Path] = []
    if folder:
        candidates.append(Path(folder))
    if os.environ.get("MNIST_KIT_AUTOGRADER"):
        candidates.append(Path(os.environ["MNIST_KIT_AUTOGRADER"]))
    here = Path.cwd().resolve()
    candidates += [parent / "autograder" for parent in (here, *here.parents)]
    candidates.append(KIT_ROOT / "autograder")
    for candidate in candidates:
        if (candidate / "conftest.py").is_file():
            return candidate
    raise FileNotFoundError(
        "no autograder folder found (it holds the hidden tests and is not part of the student kit); "
        "pass --autograder DIR or set MNIST_KIT_AUTOGRADER"
    )


def reference_notebooks(assignment: Assignment, roots: Iterable[Path] = (KIT_ROOT,)) -> list[Path]:
    """Where an assignment's reference notebooks may be: the student version (exercises/) and
    the teacher's source (solutions/) under each of `roots`; some may not exist."""
    return [
        Path(root) / kind / assignment.name / assignment.notebook
        for root in roots
        for kind in ("exercises", "solutions")
    ]


def load_module(path: Path) -> ModuleType:
    """Import a test module from its file (a fresh module each time)."""
    name = f"_mnist_kit_autograder_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def suite_module(assignment: Assignment) -> ModuleType:
    """The module with an assignment's visible tests."""
    return importlib.import_module(f"mnist_kit.grading.suites.{assignment.suite}")


def collect_tests(module: ModuleType) -> list[tuple[Callable, TestInfo]]:
    """The graded test functions of a module, in the order they are defined or imported."""
    found = []
    for name, value in vars(module).items():
        info = getattr(value, "grading", None)
        if name.startswith("test") and callable(value) and isinstance(info, TestInfo):
            found.append((value, info))
    return found


def collect_probes(*modules: ModuleType) -> list[Probe]:
    """Every probe defined at module level in the given modules (duplicates dropped)."""
    probes: dict[str, Probe] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, Probe):
                probes.setdefault(value.key, value)
            elif (
                isinstance(value, (list, tuple))
                and value
                and all(isinstance(v, Probe) for v in value)
            ):
                for probe in value:
                    probes.setdefault(probe.key, probe)
    return list(probes.values())
