"""Which assignment is a notebook? Its nbgrader grade ids, compared with each assignment's.

Step 3 of the grading pipeline (steps/check_assignment.py) asks `check_assignment`: a notebook
of another assignment becomes an error row naming the right one before any kernel starts; a
partial match becomes a note.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

from mnist_kit.grading.assignments import ASSIGNMENTS, KIT_ROOT, Assignment, reference_notebooks

__all__ = [
    "grade_ids",
    "reference_ids",
    "assignment_matches",
    "identify_assignment",
    "check_assignment",
]


def grade_ids(nb) -> list[str]:
    """The nbgrader grade ids of the notebook's cells, in order (test and solution cells alike:
    "q5_misclassified", "find_misclassified"); cells without nbgrader metadata are skipped."""
    found = []
    for cell in nb.get("cells") or []:
        meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        if isinstance(grade_id, str) and grade_id.strip():
            found.append(grade_id.strip())
    return found


def reference_ids(roots: Iterable[Path] = (KIT_ROOT,)) -> dict[str, frozenset[str]]:
    """Assignment name -> the grade ids of its reference notebooks under `roots` (exercises/
    and solutions/, see `reference_notebooks`) that can be read; empty for one with none."""
    return _reference_ids(tuple(Path(root).resolve() for root in roots))


@functools.lru_cache(maxsize=8)
def _reference_ids(roots: tuple[Path, ...]) -> dict[str, frozenset[str]]:
    import nbformat

    known: dict[str, frozenset[str]] = {}
    for name, assignment in ASSIGNMENTS.items():
        ids: set[str] = set()
        for path in reference_notebooks(assignment, roots):
            try:
                ids.update(grade_ids(nbformat.read(str(path), as_version=4)))
            except Exception:  # noqa: BLE001 - a missing or broken reference only weakens the check
                continue
        known[name] = frozenset(ids)
    return known


def _belongs(grade_id: str, assignment: Assignment, known: dict[str, frozenset[str]]) -> bool:
    """Is `grade_id` one of the assignment's (in its references, or "qN_..." for question N)?"""
    return grade_id in known.get(assignment.name, ()) or grade_id.startswith(
        f"q{assignment.number}_"
    )


def assignment_matches(nb, known: dict[str, frozenset[str]] | None = None) -> dict[str, float]:
    """Assignment name -> the share of the notebook's recognised grade ids that are its own.

    Recognised: ids that belong to some assignment (`known`, by default from the kit's own
    reference notebooks, or the "qN_" prefix of question ids). Shared ids ("build_model" is in
    02 and 03) count for each assignment that has them. All 0 when nothing is recognised.
    """
    known = reference_ids() if known is None else known
    present = set(grade_ids(nb))
    owners = {
        grade_id: [a.name for a in ASSIGNMENTS.values() if _belongs(grade_id, a, known)]
        for grade_id in present
    }
    recognised = [grade_id for grade_id, names in owners.items() if names]
    return {
        name: (sum(name in owners[g] for g in recognised) / len(recognised) if recognised else 0.0)
        for name in ASSIGNMENTS
    }


def _coverage(nb_ids: set[str], name: str, known: dict[str, frozenset[str]]) -> float:
    """The share of an assignment's reference ids the notebook holds (1.0 without references)."""
    reference = known.get(name) or frozenset()
    return len(nb_ids & reference) / len(reference) if reference else 1.0


def identify_assignment(
    nb, known: dict[str, frozenset[str]] | None = None
) -> tuple[str | None, float]:
    """(the assignment the notebook most looks like, the share of its recognised grade ids that
    are that assignment's); (None, 0.0) when it has no grade id of any assignment.

    Ties go to the assignment more of whose reference ids the notebook holds, then the first.
    """
    known = reference_ids() if known is None else known
    matches = assignment_matches(nb, known)
    present = set(grade_ids(nb))
    best = max(
        ASSIGNMENTS, key=lambda name: (matches[name], _coverage(present, name, known))
    )  # max keeps the first of equals
    return (best, matches[best]) if matches[best] > 0 else (None, 0.0)


def check_assignment(
    nb,
    assignment: Assignment,
    known: dict[str, frozenset[str]] | None = None,
    *,
    changed: Iterable[str] = (),
) -> tuple[str | None, list[str]]:
    """(error, notes) from comparing the notebook's grade ids with `assignment`'s.

    The error (the notebook is not graded) when it clearly is another assignment's notebook:
    none of the ids only `assignment` has, most of its recognised ids another's, and at least
    half of that one's reference ids. Notes for a partial match: another assignment's ids mixed
    in, or ids of `assignment` missing (those in `changed`, the graded test cells already
    noted, are not repeated). A notebook without nbgrader metadata is graded, with a note.
    """
    known = reference_ids() if known is None else known
    present = set(grade_ids(nb))
    name = assignment.name
    if not present:
        return None, [
            "the notebook has no nbgrader cell metadata (code copied into a fresh notebook?): "
            f"it could not be checked that this is {name}"
        ]
    matches = assignment_matches(nb, known)
    if not any(matches.values()):
        shown = ", ".join(sorted(present)[:4])
        return None, [
            f"none of the notebook's nbgrader cell ids ({shown}) belong to {name} "
            "or any other assignment: is it the assignment's notebook?"
        ]
    wrong = _other_assignments_notebook(nb, present, assignment, known, matches)
    if wrong:
        return wrong, []
    return None, _partial_match(present, assignment, known, set(changed))


def _other_assignments_notebook(
    nb, present: set[str], assignment: Assignment, known: dict, matches: dict[str, float]
) -> str | None:
    """The error naming the assignment whose notebook this clearly is, else None."""
    others = [a for a in ASSIGNMENTS.values() if a.name != assignment.name]
    own_only = {g for g in present if _belongs(g, assignment, known)} - {
        g for g in present for a in others if _belongs(g, a, known)
    }
    best, fraction = identify_assignment(nb, known)
    if (
        best is not None
        and best != assignment.name
        and not own_only
        and fraction > matches[assignment.name]
        and fraction >= 0.5
        and _coverage(present, best, known) >= 0.5
    ):
        other = ASSIGNMENTS[best]
        return (
            f"not graded: this is the notebook of assignment {best} ({other.title}), "
            f"not of {assignment.name} ({assignment.title})"
        )
    return None


def _partial_match(
    present: set[str], assignment: Assignment, known: dict, skip: set[str]
) -> list[str]:
    """Notes on another assignment's ids mixed in, and on `assignment`'s ids missing."""
    name = assignment.name
    others = [a for a in ASSIGNMENTS.values() if a.name != name]
    notes = []
    foreign: dict[str, list[str]] = {}
    for grade_id in sorted(present):
        if not _belongs(grade_id, assignment, known):
            for other in others:
                if _belongs(grade_id, other, known):
                    foreign.setdefault(other.name, []).append(grade_id)
                    break
    if foreign:
        which = "; ".join(f"{other}: {', '.join(ids[:4])}" for other, ids in foreign.items())
        notes.append(
            f"some cells carry another assignment's nbgrader ids ({which}); graded as {name}"
        )
    missing = sorted(known.get(name, frozenset()) - present - skip)
    if missing:
        notes.append(
            f"cells of {name} are missing or lost their nbgrader ids ({', '.join(missing[:6])})"
        )
    return notes
