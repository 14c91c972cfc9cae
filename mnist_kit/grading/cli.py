"""`mnist-kit grade`: grade submitted notebooks without a full nbgrader course set-up.

    mnist-kit grade --assignment 02-keras-mlp alice.ipynb bob.ipynb --out gradebook.csv --feedback feedback/

The main CLI (mnist_kit/cli.py) calls `add_arguments(parser)` and then `run(args)`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "run", "main"]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `grade` options to `parser`."""
    from mnist_kit.grading.assignments import ASSIGNMENTS

    parser.add_argument(
        "submissions", nargs="+", metavar="SUBMISSION.ipynb", help="notebooks to grade"
    )
    parser.add_argument(
        "--assignment",
        required=True,
        metavar="NAME",
        help=f"one of: {', '.join(ASSIGNMENTS)} (or its number)",
    )
    parser.add_argument(
        "--out",
        metavar="GRADEBOOK.csv",
        help="write a CSV gradebook: one row per submission and test",
    )
    parser.add_argument(
        "--feedback", metavar="DIR", help="write per-student feedback (Markdown and HTML) here"
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
        type=_seconds,
        metavar="SECONDS",
        help="wall-clock limit per notebook (default: per assignment)",
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="keep each submission's scratch folder (saved models, outputs) here",
    )


def _summary_line(result) -> str:
    status = (
        f"not graded: {result.error}" if result.error else f"{result.score:g}/{result.max_score:g}"
    )
    return f"{result.submission}: {status} ({result.seconds:.0f} s)"


def run(args: argparse.Namespace) -> int:
    """Grade every submission; one that cannot be graded gets an error row and the rest go on."""
    from mnist_kit.grading.engine import Grader
    from mnist_kit.grading.report import json_line, write_feedback, write_gradebook

    grader = Grader(
        args.assignment, autograder=args.autograder, time_limit=args.timeout, keep=args.keep
    )
    results = []
    for number, path in enumerate(args.submissions, start=1):
        print(f"grading {number}/{len(args.submissions)}: {path}", file=sys.stderr, flush=True)
        result = grader.grade(Path(path))
        results.append(result)
        if args.json:
            print(json_line(result), flush=True)
        else:
            print(_summary_line(result), flush=True)
        if args.feedback:
            write_feedback(result, args.feedback)
        if args.out:
            write_gradebook(
                results, args.out
            )  # rewritten after each submission: a crash loses nothing graded
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run `grade` on its own: python -m mnist_kit.grading.cli --assignment NAME FILES..."""
    parser = argparse.ArgumentParser(prog="mnist-kit grade", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
