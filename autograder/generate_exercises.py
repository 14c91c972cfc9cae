"""Regenerate exercises/ from solutions/ with nbgrader: `python autograder/generate_exercises.py`."""

import sys
from pathlib import Path

from mnist_kit.grading.generate import main

if __name__ == "__main__":
    sys.exit(main(["--root", str(Path(__file__).resolve().parents[1]), *sys.argv[1:]]))
