"""Seed the frameworks and count PyTorch's optimizer steps, in the student's kernel.

`kernel_preamble` (steps/run_kernel.py) runs these before the notebook, so a grade is the
same on every run; `check()` counts steps from its import on.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from mnist_kit.config import FRAMEWORKS

__all__ = ["STEPS_ATTRIBUTE", "count_optimizer_steps", "counting_steps", "seed_on_import"]

STEPS_ATTRIBUTE = "_mnist_kit_steps"  # on a parameter: optimizer steps that updated it
_counting: list[bool] = []  # non-empty once the global step hook is installed


def count_optimizer_steps() -> None:
    """Count every PyTorch optimizer step from now on (once torch is imported; idempotent).

    The count is kept on each parameter (not by `id()`, which Python reuses) and travels with
    an exported module as `steps`: a hint for the student's feedback ("this model was trained
    for 6 epochs"), never a number a grade depends on.
    """
    torch = sys.modules.get("torch")
    if torch is None or _counting:
        return
    from torch.optim.optimizer import register_optimizer_step_post_hook

    def counted(optimizer: Any, args: Any, kwargs: Any) -> None:
        for group in optimizer.param_groups:
            for parameter in group["params"][:1]:
                setattr(parameter, STEPS_ATTRIBUTE, getattr(parameter, STEPS_ATTRIBUTE, 0) + 1)

    register_optimizer_step_post_hook(counted)
    _counting.append(True)


def seed_on_import(seed: int, names: tuple[str, ...] = tuple(FRAMEWORKS)) -> None:
    """Seed each framework in `names` the moment the notebook first imports it.

    For assignments whose framework is the student's choice: seeding both up front would
    import both (seconds and hundreds of MB); this seeds only the one the notebook uses, so
    its grade is the same on every run. PyTorch's optimizer steps are counted from then on.
    """
    import importlib.abc
    import importlib.machinery

    def seeded(name: str) -> None:
        with contextlib.suppress(Exception):  # a broken framework install is the notebook's error
            if name == "keras":
                sys.modules["keras"].utils.set_random_seed(seed)
            elif name == "torch":
                sys.modules["torch"].manual_seed(seed)
                count_optimizer_steps()

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):  # noqa: ANN001 - importlib's protocol
            if fullname not in names:
                return None
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is None or spec.loader is None:
                return spec
            run = spec.loader.exec_module

            def exec_module(module):  # noqa: ANN001
                run(module)
                sys.meta_path[:] = [f for f in sys.meta_path if f is not finder or pending()]
                seeded(fullname)

            spec.loader.exec_module = exec_module
            return spec

    def pending() -> bool:
        return any(n not in sys.modules for n in names)

    finder = Finder()
    for name in names:
        if name in sys.modules:
            seeded(name)
    if pending():
        sys.meta_path.insert(0, finder)


def counting_steps() -> bool:
    """Whether `count_optimizer_steps` installed its hook in this process."""
    return bool(_counting)
