"""Save the notebook's models as data: Keras models as `.keras` files, PyTorch modules as
`torch.export` programs, each with a record of how much training it got."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from mnist_kit.grading.in_kernel.errors import error_text
from mnist_kit.grading.in_kernel.seeding import STEPS_ATTRIBUTE, counting_steps
from mnist_kit.saving import framework_of

__all__ = ["export_model", "EXAMPLE_SHAPES", "STATIC_BATCH"]

# Input shapes tried, in order, when exporting a PyTorch module (batch axis first).
EXAMPLE_SHAPES = ((1, 28, 28), (28, 28), (784,))
STATIC_BATCH = 100  # used when a module cannot be exported with a free batch size


def _training_record(obj: Any, framework: str) -> dict[str, Any]:
    """How much training the model got: optimizer steps, and the last Keras fit's settings."""
    record: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        if framework == "keras":
            optimizer = getattr(obj, "optimizer", None)
            if optimizer is not None:
                record["steps"] = int(optimizer.iterations.numpy())
            history = getattr(obj, "history", None)
            params = getattr(history, "params", None) or {}
            if params.get("steps"):
                record["steps_per_epoch"] = int(params["steps"])
                record["last_fit_keys"] = sorted(getattr(history, "history", {}) or {})
        elif counting_steps():
            steps = [getattr(p, STEPS_ATTRIBUTE, 0) for p in obj.parameters()]
            record["steps"] = max(steps, default=0)
    return record


def _export_torch(module: Any, target: Path) -> dict[str, Any]:
    """Save `module` in eval mode as a `torch.export` program; return its input shape."""
    import copy

    import torch

    module = copy.deepcopy(module).cpu().eval()
    errors = []
    for dynamic in (True, False):
        for shape in EXAMPLE_SHAPES:
            batch = 2 if dynamic else STATIC_BATCH
            example = torch.zeros((batch, *shape))
            spec = ({0: torch.export.Dim("batch", min=1, max=100_000)},) if dynamic else None
            try:
                program = torch.export.export(module, (example,), dynamic_shapes=spec)
            except Exception as exc:  # noqa: BLE001 - try the next shape, report all at the end
                errors.append(f"{tuple(example.shape)}: {error_text(exc)}")
                continue
            torch.export.save(program, str(target))
            return {"input_shape": list(shape), "batch": None if dynamic else STATIC_BATCH}
    raise ValueError(
        "torch.export could not trace the module with any MNIST input shape; " + errors[0]
    )


def export_model(obj: Any, name: str, out: Path) -> dict[str, Any]:
    """Save one model object; return its manifest entry."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        framework = framework_of(obj)
    except TypeError:
        raise TypeError(
            f"`{name}` is a {type(obj).__name__}, not a Keras model or a torch.nn.Module"
        ) from None
    if framework == "keras":
        if not obj.built:
            raise ValueError(
                f"`{name}` has not been built yet: give it an Input layer or train it first"
            )
        target = out / f"{name}.keras"
        obj.save(str(target))
        return {"framework": "keras", "file": target.name, **_training_record(obj, "keras")}
    target = out / f"{name}.pt2"
    entry = _export_torch(obj, target)
    return {"framework": "torch", "file": target.name, **entry, **_training_record(obj, "torch")}
