"""Grade submitted notebooks: a pipeline of small steps, each named for what it does.

For each submission, in order (the order matters: the plan must exist before the kernel
runs, and the checks read only what the kernel wrote):

1. `read_submission`      - parse the notebook; a broken file becomes an error row, not a crash
2. `graded_cells_changed` - note graded test cells edited or deleted (nbgrader checksums)
3. `check_assignment`     - (identify.py) compare its nbgrader grade ids with each assignment's
                            (`identify_assignment`): another assignment's notebook becomes an
                            error row naming the right one, before any kernel starts; a
                            partial match, a note
4. `drop_graded_tests`    - remove nbgrader test cells: the grader runs the tests itself; the
                            cells that stay keep their numbers as submitted, for the notes
5. `write_plan`           - models to save and probes to run, with grader-made inputs as .npz
6. `run_notebook`         - a scratch copy runs in its own sandboxed kernel (`make_launcher`)
                            with a wall-clock limit, then the export code saves models and
                            probe outputs (kernel.py)
7. `run_pytest`           - the autograder's tests run in this process on those files

Notes name cells as JupyterLab numbers them in the notebook as submitted ("cell 8: ..."):
1-based, markdown cells and the dropped test cells counted.

The scratch folder holds work/ (the kernel's working folder), plan/ (read-only to the kernel)
and out/ (writable); the sandbox shows the kernel nothing else of this machine's files.
"""

from __future__ import annotations

import dataclasses
import functools
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
    KIT_ROOT,
    Assignment,
    collect_probes,
    collect_tests,
    find_assignment,
    find_autograder,
    load_module,
    reference_notebooks,
    suite_module,
)
from mnist_kit.grading.identify import check_assignment, reference_ids
from mnist_kit.grading.kernel import (
    CELL_NUMBER_KEY,
    KernelLauncher,
    LocalKernel,
    kernel_env,
    run_notebook,
)
from mnist_kit.grading.results import GradeResult, TestResult, not_run
from mnist_kit.grading.spec import Probe

__all__ = [
    "graded_cells_changed",
    "reference_checksums",
    "grade_notebook",
    "grade_many",
    "read_submission",
    "drop_graded_tests",
    "write_plan",
    "Grader",
    "make_launcher",
]

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024  # larger files are refused before parsing


class SubmissionError(ValueError):
    """The submission cannot be graded at all; the message says why."""


def _python(text: str) -> bool:
    """Whether `text` parses as Python that does something (imports, calls, defines)."""
    import ast

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    kinds = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.Assign, ast.Call)
    return any(isinstance(node, kinds) for node in ast.walk(tree))


def _not_json(path: Path, text: str, error: ValueError) -> str:
    """What a file that is not notebook JSON is, as its name and first line suggest."""
    start = text.lstrip()[:200].lower()
    suffix = path.suffix.lower()
    save = "download the notebook itself (.ipynb) from Jupyter and submit that"
    if suffix == ".py" or _python(text):
        return f"this is a Python script, not a notebook: {save}"
    if suffix in (".md", ".txt") or start.startswith("#"):
        return f"this is a text or Markdown file, not a notebook: {save}"
    if suffix in (".html", ".htm") or start.startswith("<"):
        return f"this is an HTML page (an export of a notebook?), not the notebook: {save}"
    if start.startswith("{"):
        return (
            "a cut-off or damaged notebook: its JSON breaks off or is invalid "
            f"({str(error)[:160]}); save it from Jupyter again"
        )
    return f"not a Jupyter notebook (not JSON): {save}"


def read_submission(path: Path):
    """The notebook at `path` as nbformat v4, or SubmissionError saying what is wrong with it.

    Older formats (v3) are converted, as Jupyter does when it opens them; cells missing
    optional keys (metadata, source) are repaired; duplicate cell ids are renumbered.
    """
    import warnings

    import nbformat

    if not path.is_file():
        raise SubmissionError(f"no such file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise SubmissionError("the file is empty")
    if size > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(
            f"the file is {size / 2**20:.0f} MB; notebooks over {MAX_NOTEBOOK_BYTES // 2**20} MB are not graded"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(
            f"the file is not UTF-8 text (byte {exc.start}); save the notebook from Jupyter again"
        ) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SubmissionError(_not_json(path, text, exc)) from None
    if not isinstance(data, dict) or not isinstance(
        data.get("cells", data.get("worksheets")), list
    ):
        raise SubmissionError("not a Jupyter notebook: it has no list of cells")
    if not isinstance(data.get("nbformat"), int) or data["nbformat"] not in (3, 4):
        raise SubmissionError(
            f"unsupported notebook format {data.get('nbformat')!r}; save it from Jupyter as nbformat 4"
        )
    _repair_cells(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbformat warns about duplicate cell ids it fixes
            nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the student's file, not the grader
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SubmissionError(f"not a readable Jupyter notebook ({first[:200]})") from None
    if not isinstance(nb.get("cells"), list):
        raise SubmissionError("the notebook has no list of cells")
    nb.setdefault("metadata", {})
    return nb


def _repair_cells(data: dict) -> None:
    """Fill in keys Jupyter would add (metadata, source); drop entries that are not cells."""
    cells = data.get("cells")
    if cells is None:  # nbformat 3: cells live in worksheets
        for sheet in data.get("worksheets") or []:
            if isinstance(sheet, dict) and isinstance(sheet.get("cells"), list):
                sheet["cells"] = [c for c in sheet["cells"] if isinstance(c, dict)]
        return
    kept = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = {}
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(str(line) for line in source)
        cell["source"] = source if isinstance(source, str) else ""
        if cell["cell_type"] == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
        kept.append(cell)
    data["cells"] = kept
    if not isinstance(data.get("metadata"), dict):
        data["metadata"] = {}
    data.setdefault("nbformat_minor", 4)


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
        lines += [
            "import torch as _t",
            "_t.manual_seed(0)",
            # optimizer steps, for advice such as "trained for 6 epochs" (never for the score)
            "from mnist_kit.grading.export import count_optimizer_steps as _c; _c(); del _c",
        ]
    later = tuple(f for f in ("keras", "torch") if f not in assignment.seed_frameworks)
    if assignment.models and later:  # the student's choice of framework: seeded when imported
        lines.append(
            f"from mnist_kit.grading.export import seed_on_import as _s; _s(0, {later!r}); del _s"
        )
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


SANDBOX_CHOICES = ("auto", "bubblewrap", "limited", "none")
# Seen by the kernel besides its working folder: the plan (read-only) and out/ (writable).
# Nothing else of the scratch folder, and never the autograder, solutions/ or other submissions.
SANDBOX_BINDS = {"extra_ro_binds": ("../plan",), "extra_rw_binds": ("../out",)}


def make_launcher(sandbox: str = "auto", memory_mb: int | None = 4096) -> KernelLauncher:
    """The kernel launcher for a `sandbox` choice: "auto", "bubblewrap", "limited" or "none"."""
    from mnist_kit.grading import sandbox as sandboxes

    if sandbox == "none":
        return LocalKernel()
    if sandbox == "auto":
        return sandboxes.best_launcher(memory_mb=memory_mb, **SANDBOX_BINDS)
    if sandbox == "bubblewrap":
        problem = sandboxes.bubblewrap_problem()
        if problem is not None:
            raise RuntimeError(
                f"sandbox='bubblewrap' but bubblewrap does not work here: {problem}. Install it "
                "(Debian/Ubuntu: apt install bubblewrap; Fedora: dnf install bubblewrap), or "
                "choose sandbox='limited' (resource limits only)."
            )
        return sandboxes.BubblewrapKernel(memory_mb=memory_mb, **SANDBOX_BINDS)
    if sandbox == "limited":
        return sandboxes.LimitedKernel(memory_mb=memory_mb)
    raise ValueError(f"sandbox must be one of {', '.join(SANDBOX_CHOICES)}; got {sandbox!r}")


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
        sandbox: str = "auto",
        memory_mb: int | None = 4096,
    ):
        """`sandbox` picks how the student's kernel is fenced in (see `make_launcher`):
        "auto" (bubblewrap when it works here, else resource limits with a warning),
        "bubblewrap", "limited" or "none". An explicit `launcher` wins over it. `memory_mb` caps
        the kernel's address space (None: no cap). Every argument is a plain value, so a worker
        process can build its own Grader from the same keyword arguments.
        """
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
        self.sandbox = sandbox
        self.memory_mb = memory_mb
        self.launcher = launcher if launcher is not None else make_launcher(sandbox, memory_mb)
        self.time_limit = time_limit or self.assignment.time_limit
        self.keep = Path(keep) if keep else None

    def reference_roots(self) -> list[Path]:
        """Folders with exercises/ and solutions/: the autograder's course, then the kit."""
        return [self.test_file.parent.parent, KIT_ROOT]

    def references(self) -> list[Path]:
        """Notebooks whose graded cells a submission should still hold unchanged."""
        return reference_notebooks(self.assignment, self.reference_roots())

    @functools.cached_property
    def expected_cells(self) -> dict[str, set[str]]:
        return reference_checksums(self.references())

    @functools.cached_property
    def known_ids(self) -> dict[str, frozenset[str]]:
        """Every assignment's reference grade ids, for `check_assignment`."""
        return reference_ids(self.reference_roots())

    @property
    def memory_limit_mb(self) -> int | None:
        limits = getattr(self.launcher, "limits", None)
        return getattr(limits, "memory_mb", None)

    def grade(self, path: str | Path) -> GradeResult:
        """Grade one notebook; any failure ends in a GradeResult with `error` set."""
        from mnist_kit.grading.pytest_plugin import run_pytest

        path = Path(path)
        started = time.monotonic()
        name = self.assignment.name
        try:
            nb = read_submission(path)
            changed = graded_cells_changed(nb, self.expected_cells)
            wrong, identity = check_assignment(nb, self.assignment, self.known_ids, changed=changed)
            if wrong:
                return GradeResult.build(
                    str(path), name, not_run(self.tests, wrong), time.monotonic() - started, wrong
                )
            nb = drop_graded_tests(nb)
        except SubmissionError as exc:
            reason = f"not graded: {exc}"
            return GradeResult.build(
                str(path), name, not_run(self.tests, reason), time.monotonic() - started, reason
            )
        except Exception as exc:  # noqa: BLE001 - a notebook nbformat accepts but we cannot use
            reason = f"not graded: the notebook's structure is broken ({type(exc).__name__}: {str(exc)[:200]})"
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
            notes = self._notes(log, changed, identity)
            if not log.finished or out.is_symlink() or not (out / "manifest.json").is_file():
                # Without the grader's export step, anything in out/ came from the notebook alone.
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
            reason = f"not graded: the grader failed on it ({type(exc).__name__}: {str(exc).strip()[:300]})"
            return GradeResult.build(
                str(path), name, not_run(self.tests, reason), time.monotonic() - started, reason
            )
        finally:
            if self.keep is not None and scratch.exists():
                target = self.keep / _slug(path)
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(scratch, target, symlinks=True)
            shutil.rmtree(scratch, ignore_errors=True)

    def _notes(self, log, changed: list[str], identity: Iterable[str] = ()) -> list[str]:
        """What a teacher should know about the run, most important first."""
        notes = list(log.errors)
        first: list[str] = []
        if log.kernel_died and not log.killed_after_timeout:
            why = f" ({log.exit_reason})" if log.exit_reason else ""
            first.append(f"the kernel died{why}; graded on what finished")
        if log.timed_out:
            first.append(
                f"timed out after {self.time_limit:.0f} s; the notebook ignored the interrupt, so "
                "its kernel was killed and nothing could be saved for grading"
                if log.killed_after_timeout
                else f"timed out after {self.time_limit:.0f} s; graded on what finished"
            )
        out_of_memory = any("MemoryError" in e for e in log.errors) or (
            "memory" in (log.exit_reason or "")
            and (log.exit_reason or "").startswith("the kernel aborted")
        )
        if out_of_memory:
            limit = self.memory_limit_mb
            first.append(f"ran out of memory (limit {limit} MB)" if limit else "ran out of memory")
        if log.output_cut_mb:
            notes.append(
                f"output was cut at {log.output_cut_mb:.0f} MB (the notebook printed more)"
            )
        if changed:
            notes.append(
                f"graded test cells were changed or deleted ({', '.join(changed[:6])}): "
                "the grader's own tests were used"
            )
        notes += identity
        if log.finish_error:
            notes.append(f"saving the work for grading failed: {log.finish_error}")
        return first + notes


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
