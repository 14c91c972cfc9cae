"""Step 6, `run_kernel`: run the notebook in its own sandboxed kernel, then save its work.

A scratch copy of the notebook runs in a fresh kernel (the Grader's launcher, see
sandbox/) with the assignment's wall-clock limit: first `kernel_preamble` (seeds), then the
student's cells, then `kernel_epilogue`, the grader's code that saves models and probe outputs
to out/ (kernel.py runs them). A run that did not get that far ends the job: nothing the
notebook left in out/ by itself is graded.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from mnist_kit.config import FRAMEWORKS
from mnist_kit.grading.assignments import Assignment
from mnist_kit.grading.job import Job, Settings
from mnist_kit.grading.kernel import RunLog, kernel_env, run_notebook
from mnist_kit.grading.results import not_run

__all__ = ["run_kernel", "kernel_preamble", "kernel_epilogue", "run_notes"]


def run_kernel(job: Job, grader: Settings) -> None:
    """Run `job.notebook` in `job.work`; keep its RunLog (also as run.json) and the notes."""
    job.log = run_notebook(
        job.notebook,
        job.work,
        time_limit=grader.time_limit,
        before=kernel_preamble(grader.assignment),
        after=kernel_epilogue(job.plan, job.out),
        launcher=grader.launcher,
        env=kernel_env(),
    )
    (job.scratch / "run.json").write_text(json.dumps(dataclasses.asdict(job.log), indent=1))
    job.notes = run_notes(
        job.log, grader.time_limit, grader.memory_limit_mb, job.changed, job.identity
    )
    out = job.out
    if not job.log.finished or out.is_symlink() or not (out / "manifest.json").is_file():
        # Without kernel_epilogue run to its end, anything in out/ came from the notebook alone.
        reason = job.notes[0] if job.notes else "the notebook produced nothing to grade"
        job.finish(not_run(grader.tests, f"nothing to grade: {reason}"))


def kernel_preamble(assignment: Assignment) -> str:
    """Code run before the notebook: seed what training uses, so a grade is reproducible."""
    lines = ["import random as _r, numpy as _np", "_r.seed(0); _np.random.seed(0)"]
    if "keras" in assignment.seed_frameworks:
        lines += ["import keras as _k", "_k.utils.set_random_seed(0)"]
    if "torch" in assignment.seed_frameworks:
        lines += [
            "import torch as _t",
            "_t.manual_seed(0)",
            # optimizer steps, for advice such as "trained for 6 epochs" (never for the score)
            "from mnist_kit.grading.in_kernel import count_optimizer_steps as _c; _c(); del _c",
        ]
    later = tuple(f for f in FRAMEWORKS if f not in assignment.seed_frameworks)
    if assignment.models and later:  # the student's choice of framework: seeded when imported
        lines.append(
            f"from mnist_kit.grading.in_kernel import seed_on_import as _s; _s(0, {later!r}); del _s"
        )
    lines.append(
        "del " + ", ".join(n for n in ("_r", "_np", "_k", "_t") if f"as {n}" in "\n".join(lines))
    )
    return "\n".join(lines)


def kernel_epilogue(plan: Path, out: Path) -> str:
    """Code run after the notebook: save models and run probes (`in_kernel.run_plan`)."""
    return (
        "from mnist_kit.grading.in_kernel import run_plan as _mnist_kit_run_plan\n"
        f"_mnist_kit_run_plan({str(plan)!r}, {str(out)!r}, globals())"
    )


def run_notes(
    log: RunLog,
    time_limit: float,
    memory_mb: int | None,
    changed: Sequence[str] = (),
    identity: Sequence[str] = (),
) -> list[str]:
    """What a teacher should know about the run, most important first.

    `changed` are the graded test cells the student edited (step 2), `identity` the notes
    of step 3; `time_limit` and `memory_mb` are the kernel's limits, for the messages.
    """
    notes = list(log.errors)
    first: list[str] = []
    if log.kernel_died and not log.killed_after_timeout:
        why = f" ({log.exit_reason})" if log.exit_reason else ""
        first.append(f"the kernel died{why}; graded on what finished")
    if log.timed_out:
        first.append(
            f"timed out after {time_limit:.0f} s; the notebook ignored the interrupt, so "
            "its kernel was killed and nothing could be saved for grading"
            if log.killed_after_timeout
            else f"timed out after {time_limit:.0f} s; graded on what finished"
        )
    out_of_memory = any("MemoryError" in e for e in log.errors) or (
        "memory" in (log.exit_reason or "")
        and (log.exit_reason or "").startswith("the kernel aborted")
    )
    if out_of_memory:
        first.append(
            f"ran out of memory (limit {memory_mb} MB)" if memory_mb else "ran out of memory"
        )
    if log.output_cut_mb:
        notes.append(f"output was cut at {log.output_cut_mb:.0f} MB (the notebook printed more)")
    if changed:
        notes.append(
            f"graded test cells were changed or deleted ({', '.join(changed[:6])}): "
            "the grader's own tests were used"
        )
    notes += identity
    if log.finish_error:
        notes.append(f"saving the work for grading failed: {log.finish_error}")
    return first + notes
