"""Kernel side of grading: save the notebook's models and run the probes, as files the grader reads.

Everything in this package runs inside the student's kernel (after the notebook, or from
`check()`). It writes only data: Keras models as `.keras` files, PyTorch modules as
`torch.export` programs, weights as tensor dicts, and function outputs as `.npz` arrays. The
grader loads these in safe modes and measures everything itself. Nothing here decides a grade.

- `seeding`: seed the frameworks and count optimizer steps (before the notebook runs)
- `plan`: the entry points: `run_plan` (after the notebook), `export_named`, `probe_named`
- `models`: save one model; `probes`: run one probe; `arrays`: returned values as arrays
"""

from mnist_kit.grading.in_kernel.arrays import to_arrays
from mnist_kit.grading.in_kernel.models import export_model
from mnist_kit.grading.in_kernel.plan import export_named, probe_named, run_plan
from mnist_kit.grading.in_kernel.probes import run_probe
from mnist_kit.grading.in_kernel.seeding import count_optimizer_steps, seed_on_import

__all__ = [
    "run_plan",
    "export_named",
    "probe_named",
    "export_model",
    "run_probe",
    "to_arrays",
    "count_optimizer_steps",
    "seed_on_import",
]
