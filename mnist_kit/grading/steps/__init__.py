"""The steps of grading one submission, one module each, named for what it does.

Each step is a function `step(job, grader)`: it reads what the steps before it left on the
`Job` (job.py), adds its own, and ends the job by setting `job.result`. The order they run in
is `engine.STEPS`.
"""

from mnist_kit.grading.steps.check_assignment import check_assignment
from mnist_kit.grading.steps.drop_test_cells import drop_test_cells
from mnist_kit.grading.steps.note_changed_test_cells import note_changed_test_cells
from mnist_kit.grading.steps.read_notebook import read_notebook
from mnist_kit.grading.steps.run_kernel import run_kernel
from mnist_kit.grading.steps.run_tests import run_tests
from mnist_kit.grading.steps.write_plan import write_plan

__all__ = [
    "read_notebook",
    "note_changed_test_cells",
    "check_assignment",
    "drop_test_cells",
    "write_plan",
    "run_kernel",
    "run_tests",
]
