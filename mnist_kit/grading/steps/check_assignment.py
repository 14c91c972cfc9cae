"""Step 3, `check_assignment`: is this the notebook of the assignment being graded?

Its nbgrader grade ids are compared with each assignment's (identify.py): another
assignment's notebook ends the job with an error row naming the right one, before any kernel
starts; a partial match becomes a note.
"""

from __future__ import annotations

from mnist_kit.grading import identify
from mnist_kit.grading.job import Job, Settings

__all__ = ["check_assignment"]


def check_assignment(job: Job, grader: Settings) -> None:
    """Refuse another assignment's notebook; keep the notes on a partial match in `job.identity`."""
    wrong, job.identity = identify.check_assignment(
        job.notebook, grader.assignment, grader.known_ids, changed=job.changed
    )
    if wrong:
        job.refuse(grader.tests, wrong)
