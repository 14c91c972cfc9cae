"""Shared by the tests that run crafted notebooks in a grading kernel (hostile, sandbox).

REPORT is a cell run first in such a kernel: it defines report(**facts), which merges facts
into report.json in the kernel's working folder, where the test reads them afterwards.
SOLUTION_01 and EXERCISE_01 are assignment 1's notebooks, the quickest to grade.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_01 = ROOT / "solutions" / "01-data" / "01-data.ipynb"
EXERCISE_01 = ROOT / "exercises" / "01-data" / "01-data.ipynb"

REPORT = """
import json as _json, os as _os
def report(**facts):
    path = _os.path.join(_os.getcwd(), "report.json")
    old = _json.load(open(path)) if _os.path.exists(path) else {}
    old.update(facts)
    with open(path, "w") as handle:
        _json.dump(old, handle)
"""
