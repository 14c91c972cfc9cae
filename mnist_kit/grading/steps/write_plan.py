"""Step 5, `write_plan`: make the scratch folder and write what the kernel is to save.

The plan lists the models to save and the probes to run (see declare.py), each probe's
grader-made inputs in a `<key>.in.npz` file. The kernel sees plan/ read-only.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mnist_kit.grading.declare import Probe
from mnist_kit.grading.job import Job, Settings

__all__ = ["write_plan", "save_plan"]


def write_plan(job: Job, grader: Settings) -> None:
    """Make `job.scratch` with work/ (the kernel's folder) and plan/ (the assignment's plan)."""
    job.scratch = Path(tempfile.mkdtemp(prefix="mnist-kit-grade-"))
    job.work.mkdir()
    save_plan(job.plan, grader.assignment.models, grader.probes)


def save_plan(folder: Path, models: Iterable[str], probes: Iterable[Probe]) -> None:
    """Write plan.json and one `<key>.in.npz` per probe for the kernel to read."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for probe in probes:
        np.savez(folder / f"{probe.key}.in.npz", **probe.arrays())
        entries.append({"key": probe.key, "kind": probe.kind, "settings": probe.settings()})
    (folder / "plan.json").write_text(
        json.dumps({"models": list(models), "probes": entries}, indent=1)
    )
