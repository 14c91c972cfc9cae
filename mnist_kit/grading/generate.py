"""Generate the student notebooks in `exercises/` from `solutions/` with nbgrader itself.

    python -m mnist_kit.grading.generate            # all assignments, into ./exercises
    python -m mnist_kit.grading.generate --check    # exit 1 if exercises/ is out of date

nbgrader runs in a temporary course folder, so no gradebook database is left behind.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from mnist_kit.grading.assignments import ASSIGNMENTS

__all__ = ["generate_exercises", "differences", "main"]


def generate_exercises(
    solutions: Path, exercises: Path, names: list[str] | None = None
) -> list[Path]:
    """Run `nbgrader generate_assignment` on each solution notebook; copy the results to `exercises`."""
    names = names or list(ASSIGNMENTS)
    written = []
    with tempfile.TemporaryDirectory(prefix="mnist-kit-course-") as course:
        root = Path(course)
        for name in names:
            shutil.copytree(
                solutions / name,
                root / "source" / name,
                ignore=shutil.ignore_patterns(".ipynb_checkpoints"),
            )
        command = [
            sys.executable, "-m", "nbgrader", "generate_assignment", "*", "--force",
            f"--CourseDirectory.root={root}", "--CourseDirectory.course_id=mnist-kit", "--log-level=ERROR",
        ]  # fmt: skip
        done = subprocess.run(
            command, cwd=root, capture_output=True, text=True
        )  # one nbgrader run for all
        if done.returncode != 0:
            raise RuntimeError(
                f"nbgrader generate_assignment failed:\n{done.stdout}\n{done.stderr}"
            )
        for name in names:
            target = exercises / name
            target.mkdir(parents=True, exist_ok=True)
            for notebook in sorted((root / "release" / name).glob("*.ipynb")):
                shutil.copy(notebook, target / notebook.name)
                written.append(target / notebook.name)
    return written


def _cells(path: Path) -> list[tuple[str, str, str]]:
    nb = nbformat.read(str(path), as_version=4)
    return [
        (c.cell_type, c.source, str(c.metadata.get("nbgrader", {}).get("grade_id", "")))
        for c in nb.cells
    ]


def differences(expected_dir: Path, actual_dir: Path, names: list[str] | None = None) -> list[str]:
    """Where the notebooks under `actual_dir` differ from `expected_dir` (cell types, sources, ids)."""
    problems = []
    for name in names or list(ASSIGNMENTS):
        notebook = Path(name) / f"{name}.ipynb"
        expected, actual = expected_dir / notebook, actual_dir / notebook
        if not actual.is_file():
            problems.append(f"{actual} is missing")
            continue
        want, have = _cells(expected), _cells(actual)
        if len(want) != len(have):
            problems.append(f"{notebook}: {len(have)} cells, expected {len(want)}")
            continue
        for index, (a, b) in enumerate(zip(want, have, strict=True)):
            if a != b:
                problems.append(
                    f"{notebook}: cell {index + 1} differs from what nbgrader generates"
                )
    return problems


def main(argv: list[str] | None = None) -> int:
    """Regenerate exercises/ (or, with --check, report whether it is up to date)."""
    parser = argparse.ArgumentParser(
        prog="python -m mnist_kit.grading.generate", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--root", default=".", help="the kit's folder, holding solutions/ and exercises/"
    )
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 when exercises/ is stale"
    )
    parser.add_argument("names", nargs="*", help="assignments (default: all)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if args.check:
        with tempfile.TemporaryDirectory() as fresh:
            generate_exercises(root / "solutions", Path(fresh), args.names or None)
            problems = differences(Path(fresh), root / "exercises", args.names or None)
        for problem in problems:
            print(problem)
        print(
            "exercises/ is up to date"
            if not problems
            else "run: python -m mnist_kit.grading.generate"
        )
        return 1 if problems else 0
    for path in generate_exercises(root / "solutions", root / "exercises", args.names or None):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
