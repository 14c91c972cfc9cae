"""`mnist-kit grade`: grade submitted notebooks without a full nbgrader course set-up.

    mnist-kit grade --assignment 02-keras-mlp alice.ipynb bob.ipynb --out gradebook.csv --feedback feedback/
    mnist-kit grade --assignment 02 submissions/*.ipynb --out gradebook.csv --jobs 4
    mnist-kit grade --assignment 02 submissions/*.ipynb --out shard-2.csv --shard 2/4
    mnist-kit grade --merge shard-*.csv --out gradebook.csv

The main CLI (mnist_kit/cli.py) calls `add_arguments(parser)` and then `run(args)`.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
from pathlib import Path

from mnist_kit.argtypes import positive_float, positive_int
from mnist_kit.grading.sandbox.limits import MEMORY_MB

__all__ = ["add_arguments", "run", "main"]


def _shard(text: str) -> tuple[int, int]:
    index, slash, count = text.partition("/")
    try:
        if not slash:
            raise ValueError
        index, count = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected I/N with whole numbers, like 2/4, got {text!r}"
        ) from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"I/N needs 1 <= I <= N, got {text!r}")
    return index, count


def _memory(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of MB, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no cap) or more, got {value}")
    return value or None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `grade` options to `parser`."""
    # long: one block per option, in the order --help lists them
    from mnist_kit.grading.assignments import ASSIGNMENTS
    from mnist_kit.grading.sandbox import SANDBOX_CHOICES

    parser.add_argument(
        "submissions", nargs="*", metavar="SUBMISSION.ipynb", help="notebooks to grade"
    )
    parser.add_argument(
        "--assignment",
        metavar="NAME",
        help=f"one of: {', '.join(ASSIGNMENTS)} (or its number); required unless --merge",
    )
    parser.add_argument(
        "--out",
        metavar="GRADEBOOK.csv",
        help="the CSV gradebook: one row per submission and test; rewritten atomically after "
        "each submission, and what it already holds is not graded again",
    )
    parser.add_argument(
        "--feedback", metavar="DIR", help="write per-student feedback (Markdown and HTML) here"
    )
    parser.add_argument(
        "--roster",
        metavar="ROSTER.csv",
        help="the class list: a student id column (id, student_id, ...), name and email optional; "
        "files are matched to students by their paths (docs/teachers.md)",
    )
    parser.add_argument(
        "--latest",
        action="store_true",
        help="when a student has several files, grade the newest (default: stop with an error)",
    )
    parser.add_argument(
        "--summary", metavar="SUMMARY.csv", help="write one row per student: points per question"
    )
    parser.add_argument(
        "--canvas", metavar="FILE.csv", help="write the scores as a Canvas gradebook import"
    )
    parser.add_argument(
        "--moodle", metavar="FILE.csv", help="write the scores as a Moodle grade import"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per submission on stdout"
    )
    parser.add_argument(
        "--autograder",
        metavar="DIR",
        help="folder with the autograder tests (default: found automatically)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        metavar="SECONDS",
        help="wall-clock limit per notebook (default: per assignment)",
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="keep each submission's scratch folder (saved models, outputs) here",
    )
    parser.add_argument(
        "--sandbox",
        choices=SANDBOX_CHOICES,
        default="auto",
        help="how each student's kernel is fenced in (default: auto)",
    )
    parser.add_argument(
        "--memory-mb",
        type=_memory,
        default=MEMORY_MB,
        metavar="N",
        help=f"memory cap of each student's kernel in MB; 0 for none (default {MEMORY_MB})",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=positive_int,
        default=1,
        metavar="N",
        help="grade N submissions at a time, each in its own worker process (default 1)",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help="grade only shard I of N (1-based): a fixed slice of the submissions, for a "
        "Slurm array, an indexed Job or a CI matrix; combine the gradebooks with --merge",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="grade everything again, ignoring what --out already holds",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="GRADEBOOK.csv",
        help="combine these gradebooks (from shards) into --out; grades nothing",
    )
    parser.set_defaults(grade_parser=parser)


def _summary_line(result) -> str:
    line = f"{result.submission}: {_status(result)} ({result.seconds:.0f} s)"
    other = re.match(r"not graded: this is the notebook of assignment (\S+) ", result.error or "")
    if other:  # the teacher's next command; the student's feedback has only the reason
        line += f"; to grade it as that: mnist-kit grade --assignment {other[1]} {shlex.quote(result.submission)}"
    return line


def _status(result) -> str:
    if result.error is None:
        return f"{result.score:g}/{result.max_score:g}"
    return result.error if result.error.startswith("not graded") else f"not graded: {result.error}"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _check(args: argparse.Namespace) -> None:
    """Option combinations argparse cannot check; errors exit 2 like argparse's own."""
    parser = getattr(args, "grade_parser", None)

    def error(message: str) -> None:
        if parser is not None:
            parser.error(message)
        raise SystemExit(f"mnist-kit grade: error: {message}")

    if args.merge:
        if not args.out:
            error("--merge needs --out, the combined gradebook to write")
        if args.submissions:
            error("--merge combines gradebooks; give no submissions with it")
        if Path(args.out).resolve() in {Path(p).resolve() for p in args.merge}:
            error("--out must not be one of the gradebooks to merge")
        return
    if not args.assignment:
        error("the following arguments are required: --assignment")
    from mnist_kit.grading.assignments import find_assignment

    try:
        find_assignment(args.assignment)
    except ValueError as exc:
        error(str(exc))
    if not args.submissions:
        error("the following arguments are required: SUBMISSION.ipynb")
    if args.fresh and not args.out:
        error("--fresh only makes sense with --out")


def _merge(args: argparse.Namespace) -> int:
    from mnist_kit.grading.batch import MergeConflict, merge_gradebooks
    from mnist_kit.grading.report import write_gradebook_rows

    try:
        merged = merge_gradebooks(args.merge)
    except (MergeConflict, FileNotFoundError, ValueError) as exc:
        _say(f"mnist-kit grade: error: {exc}")
        return 2
    write_gradebook_rows((row for key in sorted(merged) for row in merged[key]), args.out)
    _say(f"merged {len(args.merge)} gradebooks: {len(merged)} submissions in {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Grade every submission; one that cannot be graded gets an error row and the rest go on.

    Exit code 0 when every submission was graded (error rows included); 2 for what the
    teacher typed (a missing file, a folder, a wrong assignment, two files for one student),
    before anything is graded; 1 when the grader itself failed on some (they have no rows, so
    running again retries them); 130 when interrupted (what was graded is kept).
    """
    _check(args)
    if args.merge:
        return _merge(args)
    from mnist_kit.grading.classroom import UsageError
    from mnist_kit.grading.engine import Grader
    from mnist_kit.grading.report import open_gradebook
    from mnist_kit.grading.roster import RosterError

    started = time.monotonic()
    options = _grader_options(args)
    grader = Grader(**options)  # fails fast on a bad autograder folder or sandbox
    options["assignment"] = grader.assignment.name
    try:
        found = _intake(args, grader.assignment)
    except (UsageError, RosterError) as exc:
        _say(f"mnist-kit grade: error: {exc}")
        return 2
    if found is None:
        return 2
    # what --out already holds (nothing with --fresh); a fresh or new --out is written now
    book = open_gradebook(args.out, getattr(args, "fresh", False)) if args.out else {}
    return _grade_all(args, grader, options, found, book, started)


def _grader_options(args: argparse.Namespace) -> dict:
    return {
        "assignment": args.assignment,
        "autograder": args.autograder,
        "time_limit": args.timeout,
        "keep": args.keep,
        "sandbox": getattr(args, "sandbox", "auto"),
        "memory_mb": getattr(args, "memory_mb", MEMORY_MB),
    }


def _intake(args: argparse.Namespace, assignment):
    """Files, owners and duplicates, told on stderr; None when grading must not start."""
    from mnist_kit.grading.classroom import expand, intake
    from mnist_kit.grading.roster import read_roster

    roster = read_roster(args.roster) if getattr(args, "roster", None) else None
    files = expand(args.submissions)
    found = intake(files, roster, assignment.name, getattr(args, "latest", False))
    plan = found.plan
    for problem in plan.problems:
        _say(f"mnist-kit grade: error: {problem}")
    if plan.problems:
        return None
    for line in found.repeated:
        _say(f"given twice, graded once: {line}")
    for path in plan.unmatched:
        _say(f"not graded, no roster student matches: {path}")
    for student in plan.missing:
        _say(f"no file from: {student.label}")
    for older, newest in plan.superseded.items():
        _say(f"--latest: {older} is older than {newest}, which is graded")
    for key, of in found.copies.items():
        _say(f"identical files, graded once: {key} and {of}")
    shard = getattr(args, "shard", None)
    if shard:
        from mnist_kit.grading import batch

        everything = len(found.submissions)
        # an identical copy goes with the file it copies, so shards stay disjoint
        found.submissions = [
            s for s in found.submissions if batch.in_shard(found.copies.get(s.key, s.key), *shard)
        ]
        found.copies = {k: v for k, v in found.copies.items() if batch.in_shard(v, *shard)}
        _say(f"shard {shard[0]}/{shard[1]}: {len(found.submissions)} of {everything} submissions")
    return found


def _grade_all(args, grader, options, found, book, started) -> int:
    """Grade what the gradebook does not hold yet, writing every output as results come."""
    import signal
    import threading

    from mnist_kit.grading import batch, classroom

    done, todo = batch.already_graded(found.to_grade, book, options["assignment"])
    files = {s.key: 1 + sum(of == s.key for of in found.copies.values()) for s in found.to_grade}
    total, before = len(found.submissions), sum(files[s.key] for s in done)
    if done:
        _say(f"resuming: {before} of {total} already graded")
    failures: list[str] = []
    counts = {"graded": before, "errors": 0}

    def failed(submission, reason: str) -> None:
        failures.append(submission.key)
        _say(f"could not grade {submission.key}: {reason}")

    previous = None
    if threading.current_thread() is threading.main_thread():
        # A batch system's SIGTERM (a Slurm time limit) stops like Ctrl-C: what was graded is kept.
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    jobs = getattr(args, "jobs", 1)
    if jobs > 1 and len(todo) > 1:
        stream = batch.grade_stream(todo, options, jobs, on_failure=failed)
    else:
        stream = ((s, grader.grade(s.path)) for s in todo)
    try:
        for submission, result in stream:
            counts["graded"] += files[submission.key]  # identical copies are graded with it
            counts["errors"] += (result.error is not None) * files[submission.key]
            _record(args, found, book, submission, result)
            _say(
                f"graded {counts['graded']}/{total}: {submission.key} {_status(result)} "
                f"({result.seconds:.0f} s)"
            )
    except KeyboardInterrupt:
        _say(
            f"interrupted: {counts['graded']} of {total} graded"
            + (f", kept in {args.out}; run the same command again to resume" if args.out else "")
        )
        return 130
    finally:
        stream.close()  # stops the worker processes
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        classroom.write_class_files(
            book, found, grader.assignment, args.summary, args.canvas, args.moodle
        )
    _say(
        f"done: {counts['graded']} of {total} graded ({before} before this run), "
        f"{counts['errors']} with errors, {len(failures)} not graded because the grader failed, "
        f"in {time.monotonic() - started:.0f} s" + (f"; gradebook: {args.out}" if args.out else "")
    )
    return 1 if failures else 0


def _record(args, found, book, submission, result) -> None:
    """Print, write feedback and gradebook rows for one result and for each identical copy."""
    import dataclasses

    from mnist_kit.grading.report import (
        gradebook_rows,
        json_line,
        write_feedback,
        write_gradebook_rows,
    )

    stems = found.feedback_stems
    copies = [k for k, of in found.copies.items() if of == submission.key]
    for key in (submission.key, *copies):
        mine = result if key == submission.key else dataclasses.replace(result, submission=key)
        student = found.owner[key]
        print(json_line(mine) if args.json else _summary_line(mine), flush=True)
        if args.feedback:
            write_feedback(mine, args.feedback, stems[student.id], student.label)
        book[key] = gradebook_rows(mine, submission.sha256, student.id)
    if args.out:
        write_gradebook_rows((r for key in sorted(book) for r in book[key]), args.out)


def main(argv: list[str] | None = None) -> int:
    """Run `grade` on its own: python -m mnist_kit.grading.cli --assignment NAME FILES..."""
    parser = argparse.ArgumentParser(prog="mnist-kit grade", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
