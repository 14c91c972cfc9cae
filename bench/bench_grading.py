"""How long does grading one complete set of six submissions take on this machine?

    python bench/bench_grading.py                 # the six solution notebooks as submissions
    python bench/bench_grading.py --only 02 05    # some assignments

Training inside the notebooks runs at the assignments' own settings (assignment 2: 5 epochs at
batch 32). Prints, per assignment, the time in the student's kernel (the notebook plus saving
models and probe outputs) and the time of the grader's own checks, then the total against the
5-minute target. Needs MNIST (MNIST_KIT_DATA).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from mnist_kit.grading.assignments import ASSIGNMENTS, find_assignment
from mnist_kit.grading.engine import Grader

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="assignments to grade (default: all six)")
    args = parser.parse_args()
    chosen = (
        [find_assignment(name) for name in args.only] if args.only else list(ASSIGNMENTS.values())
    )
    print(f"{os.cpu_count()} CPU cores; grading {len(chosen)} solution notebooks as submissions\n")
    print(f"{'assignment':<15}{'score':>10}{'kernel s':>10}{'checks s':>10}{'total s':>10}")
    total = 0.0
    with tempfile.TemporaryDirectory() as keep:
        for assignment in chosen:
            started = time.perf_counter()
            grader = Grader(assignment, keep=keep)
            result = grader.grade(ROOT / "solutions" / assignment.name / assignment.notebook)
            seconds = time.perf_counter() - started
            total += seconds
            runs = list(Path(keep).glob(f"*{assignment.name}*/run.json"))
            kernel = json.loads(runs[0].read_text()).get("seconds", 0.0) if runs else float("nan")
            score = f"{result.score:g}/{result.max_score:g}"
            print(
                f"{assignment.name:<15}{score:>10}{kernel:>10.1f}{seconds - kernel:>10.1f}{seconds:>10.1f}",
                flush=True,
            )
            if result.error:
                print(f"  not graded: {result.error}")
    print(
        f"\ntotal {total:.0f} s for {len(chosen)} submissions = {total / TARGET_SECONDS:.2f} x the {TARGET_SECONDS:.0f} s target"
    )


if __name__ == "__main__":
    main()
