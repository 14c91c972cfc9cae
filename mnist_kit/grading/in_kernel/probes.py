"""Run one probe (`declare.Call`, `Value`, `TrainRun`, `EvalRun`) on the grader's inputs in the
student's kernel, and save what came back as arrays."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from mnist_kit.grading.in_kernel.arrays import catch_figures, is_figure, to_arrays
from mnist_kit.grading.in_kernel.models import export_model

__all__ = ["run_probe"]


def _function(namespace: dict, name: str):
    function = namespace.get(name)
    if function is None:
        raise NameError(f"no function named `{name}`: define it and run its cell")
    if not callable(function):
        raise TypeError(f"`{name}` is a {type(function).__name__}, not a function")
    return function


def _loader(arrays: dict[str, np.ndarray], batch_size: int):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    dataset = TensorDataset(torch.from_numpy(arrays["images"]), torch.from_numpy(arrays["labels"]))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False)


def _record_modes(model: Any) -> tuple[list[bool], list[bool], Any]:
    """Per forward call: was the model in training mode, and was autograd recording?"""
    import torch

    modes: list[bool] = []
    grads: list[bool] = []

    def record(module: Any, args: Any) -> None:
        modes.append(bool(module.training))
        grads.append(bool(torch.is_grad_enabled()))

    return modes, grads, model.register_forward_pre_hook(record)


def _watch_training(model: Any, optimizer: Any, counts: dict[str, int]) -> list[Any]:
    """Count optimizer steps and backward passes, and the passes that met stale gradients.

    Steps come from the optimizer's own step hook (nothing is wrapped, so a scheduler still
    works). A backward pass is stale when the first trainable parameter still holds a
    non-zero gradient from an earlier batch as the new one arrives, however the student
    clears them (zero_grad, set_to_none or by hand).
    """

    def stepped(*_: Any) -> None:
        counts["steps"] += 1

    handles = [optimizer.register_step_post_hook(stepped)]
    first = next((p for p in model.parameters() if p.requires_grad), None)
    if first is not None:

        def arrived(grad: Any) -> None:
            counts["backward"] += 1
            if first.grad is not None and bool(first.grad.abs().sum() > 0):
                counts["stale"] += 1

        handles.append(first.register_hook(arrived))
    return handles


def run_probe(
    kind: str, settings: dict, arrays: dict[str, np.ndarray], namespace: dict, out: Path, key: str
) -> dict:
    """Run one probe in this process; write its outputs under `out`; return its manifest entry."""
    out.mkdir(parents=True, exist_ok=True)
    if kind not in RUNNERS:
        raise ValueError(f"unknown probe kind {kind!r}")
    entry: dict[str, Any] = {}
    # each runner fills in `entry` and gets `out / key`, the stem of any file it saves itself
    outputs = RUNNERS[kind](settings, arrays, namespace, entry, out / key)
    np.savez(out / f"{key}.out.npz", **outputs)
    return entry


def _run_call(settings: dict, arrays: dict, namespace: dict, entry: dict, _stem: Path) -> dict:
    """`function(*args, **kwargs)`: what it returned, or the figure it drew."""
    function = _function(namespace, settings["function"])
    scalars = set(settings["scalars"])
    value = {k: (arrays[k].item() if k in scalars else arrays[k].copy()) for k in arrays}
    args = [value[f"arg{i}"] for i in range(settings["nargs"])]
    kwargs = {k: value[f"kw_{k}"] for k in settings["kwargs"]}
    with catch_figures() as figures:
        returned = function(*args, **kwargs)
    entry["returned_figure"] = is_figure(returned)
    if returned is None and figures:
        returned = figures[-1]
    outputs, entry["structure"] = to_arrays(returned)
    return outputs


def _run_value(settings: dict, arrays: dict, namespace: dict, entry: dict, _stem: Path) -> dict:
    """A variable the notebook defined, or one of its attributes."""
    if settings["name"] not in namespace:
        raise NameError(f"no variable named `{settings['name']}`: run the cell that defines it")
    value = namespace[settings["name"]]
    if settings["attribute"]:
        value = getattr(value, settings["attribute"])
    outputs, entry["structure"] = to_arrays(value)
    return outputs


def _run_train(settings: dict, arrays: dict, namespace: dict, entry: dict, stem: Path) -> dict:
    """The student's training function, once, on a fresh model: weights before and after."""
    import torch

    function = _function(namespace, settings["function"])
    loader = _loader(arrays, settings["batch_size"])
    torch.manual_seed(settings["seed"])
    model = _function(namespace, settings["model_class"])()
    model.eval()  # the student's function must switch to training mode itself
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    counts = {"steps": 0, "backward": 0, "stale": 0}
    watched = _watch_training(model, optimizer, counts)
    modes, grads, handle = _record_modes(model)
    try:
        returned = function(model, loader, optimizer, torch.nn.CrossEntropyLoss())
    finally:
        for h in (handle, *watched):
            h.remove()
    entry["counts"] = counts
    after = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save({"before": before, "after": after}, f"{stem}.weights.pt")
    entry["program"] = export_model(model, stem.name, stem.parent)
    return _observed(modes, grads, returned, entry)


def _run_eval(settings: dict, arrays: dict, namespace: dict, entry: dict, _stem: Path) -> dict:
    """The student's evaluation function on the notebook's trained model."""
    import torch  # noqa: F401 - imported first, as the training probe does

    function = _function(namespace, settings["function"])
    loader = _loader(arrays, settings["batch_size"])
    model = namespace.get(settings["model"])
    if model is None:
        raise NameError(f"no model named `{settings['model']}`: build and train it first")
    was_training = model.training
    model.train()  # evaluation must switch to eval mode itself
    modes, grads, handle = _record_modes(model)
    try:
        returned = function(model, loader)
    finally:
        handle.remove()
        model.train(was_training)
    return _observed(modes, grads, returned, entry)


def _observed(modes: list[bool], grads: list[bool], returned: Any, entry: dict) -> dict:
    """What a training or evaluation run showed: modes per forward call, and what it returned."""
    outputs = {"modes": np.array(modes, dtype=bool), "grads": np.array(grads, dtype=bool)}
    entry["returned_type"] = type(returned).__name__
    with contextlib.suppress(TypeError, ValueError):
        outputs["returned"] = np.asarray(
            float(returned.item() if hasattr(returned, "item") else returned)
        )
    return outputs


RUNNERS = {"call": _run_call, "value": _run_value, "train": _run_train, "eval": _run_eval}
