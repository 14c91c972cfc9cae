"""Step 1, `read_notebook`: parse the submitted file as nbformat v4.

A broken file ends the job with an error row saying what is wrong with it (empty, too large,
not UTF-8, a script or an HTML page, cut off, an unknown format), never a crash. Old formats
(v3) are converted as Jupyter does; cells missing optional keys are repaired.
"""

from __future__ import annotations

import json
from pathlib import Path

from mnist_kit.grading.job import Job, Settings

__all__ = ["read_notebook", "read_submission", "SubmissionError", "MAX_NOTEBOOK_BYTES"]


MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024  # larger files are refused before parsing


class SubmissionError(ValueError):
    """The submission cannot be graded at all; the message says why."""


def read_notebook(job: Job, grader: Settings) -> None:
    """Read `job.path` into `job.notebook`; a file that is not a usable notebook ends the job."""
    try:
        job.notebook = read_submission(job.path)
    except SubmissionError as exc:
        job.refuse(grader.tests, f"not graded: {exc}")


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
