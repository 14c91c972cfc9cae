"""Write grades out: a CSV gradebook, per-student feedback in Markdown and HTML, JSON lines."""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Iterable
from pathlib import Path

from mnist_kit.files import write_atomically
from mnist_kit.grading.results import GradeResult

__all__ = [
    "GRADEBOOK_COLUMNS",
    "write_gradebook",
    "gradebook_rows",
    "write_gradebook_rows",
    "read_gradebook",
    "feedback_markdown",
    "feedback_html",
    "write_feedback",
    "json_line",
]

GRADEBOOK_COLUMNS = (
    "submission", "assignment", "test", "question", "points", "max_points", "passed", "hidden",
    "extra_credit", "message", "sha256",
)  # fmt: skip
TOTAL = "TOTAL"  # the `test` value of each submission's summary row


def gradebook_rows(result: GradeResult, sha256: str = "") -> list[dict]:
    """The gradebook rows of one submission: one per test, then TOTAL; `sha256` of the file graded."""
    rows = [{k: "" if v is None else str(v) for k, v in row.items()} for row in _rows(result)]
    for row in rows:
        row["sha256"] = sha256
    return rows


def _rows(result: GradeResult) -> Iterable[dict]:
    for test in result.tests:
        yield {
            "submission": result.submission,
            "assignment": result.assignment,
            "test": test.name,
            "question": test.question,
            "points": f"{test.points:g}",
            "max_points": f"{test.max_points:g}",
            "passed": test.passed,
            "hidden": test.hidden,
            "extra_credit": test.extra_credit,
            "message": test.message,
        }
    summary = result.error or "; ".join(result.notes) or ""
    yield {
        "submission": result.submission,
        "assignment": result.assignment,
        "test": TOTAL,
        "question": "",
        "points": f"{result.score:g}",
        "max_points": f"{result.max_score:g}",
        "passed": result.error is None,
        "hidden": "",
        "extra_credit": f"{result.extra_credit:g}",
        "message": summary,
    }


def write_gradebook(results: Iterable[GradeResult], path: str | Path) -> Path:
    """Write one row per submission and test, plus a TOTAL row per submission (atomically)."""
    return write_gradebook_rows((row for r in results for row in gradebook_rows(r)), path)


def write_gradebook_rows(rows: Iterable[dict], path: str | Path) -> Path:
    """Write gradebook rows atomically: a temporary file in the same folder, fsync, os.replace.

    A reader (or a grader killed at any moment) sees the old gradebook or the new one, never
    half of one.
    """
    rows = list(rows)

    def write(out) -> None:
        writer = csv.DictWriter(out, fieldnames=GRADEBOOK_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

    return write_atomically(path, write, text=True)


def read_gradebook(path: str | Path) -> dict[str, list[dict]]:
    """A gradebook's rows by submission, in file order; {} when the file does not exist.

    Only submissions with a TOTAL row are returned (a gradebook written by this module always
    has one per submission). Older gradebooks without a `sha256` column read with it empty.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"submission", "test", "points"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"{path} is not a gradebook written by mnist-kit grade "
                f"(no {', '.join(sorted(missing))} column)"
            )
        grouped: dict[str, list[dict]] = {}
        for row in reader:
            row = {column: row.get(column) or "" for column in GRADEBOOK_COLUMNS}
            grouped.setdefault(row["submission"], []).append(row)
    return {key: rows for key, rows in grouped.items() if any(r["test"] == TOTAL for r in rows)}


def feedback_markdown(result: GradeResult) -> str:
    """Feedback for the student: every visible test's message; hidden tests show only their points."""
    lines = [
        f"# Feedback: {result.assignment}",
        "",
        f"**Score: {result.score:g} / {result.max_score:g}**"
        + (f" (including {result.extra_credit:g} extra credit)" if result.extra_credit else ""),
        "",
    ]
    if result.error:
        lines += [f"Your notebook could not be graded: {result.error}", ""]
    for key, value in result.measurements.items():
        if key.endswith(".test_accuracy"):
            lines.append(
                f"- Measured by the grader: `{key[: -len('.test_accuracy')]}` test accuracy {value:.4f}"
            )
    for note in result.notes:
        lines.append(f"- Note: {note}")
    if result.notes:
        lines.append("")
    lines += ["| | Test | Points | What to change |", "|---|---|---|---|"]
    for test in result.tests:
        mark = "pass" if test.passed else "FAIL"
        what = "" if test.passed else ("(hidden test)" if test.hidden else test.message)
        name = "Hidden test" if test.hidden else test.description
        bonus = " (extra credit)" if test.extra_credit else ""
        cell = what.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {mark} | {name}{bonus} | {test.points:g} / {test.max_points:g} | {cell} |")
    return "\n".join(lines) + "\n"


def feedback_html(result: GradeResult) -> str:
    """The same feedback as a small standalone HTML page."""
    rows = []
    for test in result.tests:
        what = "" if test.passed else ("(hidden test)" if test.hidden else test.message)
        name = "Hidden test" if test.hidden else test.description
        color = "#1a7f37" if test.passed else "#cf222e"
        rows.append(
            f"<tr><td style='color:{color}'>{'pass' if test.passed else 'FAIL'}</td>"
            f"<td>{html.escape(name)}</td><td>{test.points:g} / {test.max_points:g}</td><td>{html.escape(what)}</td></tr>"
        )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    error = f"<p><b>Not graded:</b> {html.escape(result.error)}</p>" if result.error else ""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Feedback: {html.escape(result.assignment)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:.3em .6em;"
        "border-bottom:1px solid #ddd;text-align:left;vertical-align:top}</style></head><body>"
        f"<h1>Feedback: {html.escape(result.assignment)}</h1>"
        f"<p><b>Score: {result.score:g} / {result.max_score:g}</b></p>{error}"
        + (f"<ul>{notes}</ul>" if notes else "")
        + "<table><tr><th></th><th>Test</th><th>Points</th><th>What to change</th></tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )


def feedback_name(result: GradeResult) -> str:
    """A file name for one submission's feedback, unique within a run."""
    parts = Path(result.submission).with_suffix("").parts[-3:]
    return "-".join(p for p in parts if p not in ("/", ".", "..")).replace(" ", "_")


def write_feedback(result: GradeResult, folder: str | Path) -> list[Path]:
    """Write `<name>.md` and `<name>.html` for one submission; return both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = feedback_name(result)
    written = []
    for suffix, text in ((".md", feedback_markdown(result)), (".html", feedback_html(result))):
        target = folder / f"{stem}{suffix}"
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def json_line(result: GradeResult) -> str:
    """One submission as a single JSON line."""
    return json.dumps(result.to_json(), sort_keys=False)
