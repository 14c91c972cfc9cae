"""Kernel side of grading: save the notebook's models and run the probes, as files the grader reads.

This module runs inside the student's kernel (after the notebook, or from `check()`). It
writes only data: Keras models as `.keras` files, PyTorch modules as `torch.export`
programs, weights as tensor dicts, and function outputs as `.npz` arrays. The grader
loads these in safe modes and measures everything itself. Nothing here decides a grade.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

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

# Input shapes tried, in order, when exporting a PyTorch module (batch axis first).
EXAMPLE_SHAPES = ((1, 28, 28), (28, 28), (784,))
STATIC_BATCH = 100  # used when a module cannot be exported with a free batch size
PROBE_SECONDS = 120  # one probe may not run longer than this


class ProbeTimeout(Exception):
    """A probe ran past its time limit."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise ProbeTimeout in the main thread after `seconds` (no limit off the main thread)."""
    usable = hasattr(signal, "setitimer") and _in_main_thread()
    if not usable:
        yield
        return

    def _alarm(signum, frame):
        raise ProbeTimeout(f"stopped after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _error_text(exc: BaseException) -> str:
    """One line naming the exception and where in the student's code it happened."""
    text = (
        f"{type(exc).__name__}: {exc}".strip().splitlines()[0] if str(exc) else type(exc).__name__
    )
    notebook = ("ipykernel", "<ipython", "<string>")  # frames from notebook cells, not libraries
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if any(n in f.filename for n in notebook)
    ]
    if frames and frames[-1].name not in ("<module>",):
        text += f" (in {frames[-1].name}, line {frames[-1].lineno})"
    return text[:400]


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


def seed_on_import(seed: int, names: tuple[str, ...] = ("keras", "torch")) -> None:
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
        elif _counting:
            steps = [getattr(p, STEPS_ATTRIBUTE, 0) for p in obj.parameters()]
            record["steps"] = max(steps, default=0)
    return record


def _framework_of(obj: Any) -> str | None:
    """'keras', 'torch' or None, without importing a framework the notebook did not import."""
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(obj, keras.Model):
        return "keras"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return "torch"
    return None


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
                errors.append(f"{tuple(example.shape)}: {_error_text(exc)}")
                continue
            torch.export.save(program, str(target))
            return {"input_shape": list(shape), "batch": None if dynamic else STATIC_BATCH}
    raise ValueError(
        "torch.export could not trace the module with any MNIST input shape; " + errors[0]
    )


def export_model(obj: Any, name: str, out: Path) -> dict[str, Any]:
    """Save one model object; return its manifest entry."""
    out.mkdir(parents=True, exist_ok=True)
    framework = _framework_of(obj)
    if framework == "keras":
        if not obj.built:
            raise ValueError(
                f"`{name}` has not been built yet: give it an Input layer or train it first"
            )
        target = out / f"{name}.keras"
        obj.save(str(target))
        return {"framework": "keras", "file": target.name, **_training_record(obj, "keras")}
    if framework == "torch":
        target = out / f"{name}.pt2"
        entry = _export_torch(obj, target)
        return {
            "framework": "torch",
            "file": target.name,
            **entry,
            **_training_record(obj, "torch"),
        }
    raise TypeError(f"`{name}` is a {type(obj).__name__}, not a Keras model or a torch.nn.Module")


def to_arrays(value: Any, prefix: str = "out") -> tuple[dict[str, np.ndarray], Any]:
    """Flatten a returned value into named arrays plus a JSON description of its structure."""
    if value is None:
        return {}, "none"
    if _is_figure(value):
        return _figure_arrays(value, prefix), "figure"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, dict):
        arrays: dict[str, np.ndarray] = {}
        parts: dict[str, Any] = {}
        for i, (name, item) in enumerate(value.items()):
            sub_arrays, parts[str(name)] = to_arrays(item, f"{prefix}.{i}")
            arrays.update(sub_arrays)
        return arrays, {"dict": parts}
    if isinstance(value, (tuple, list)) and value and any(_is_container(v) for v in value):
        if not any(_is_array_like(v) for v in value):  # e.g. a list of (true, predicted, count)
            try:
                stacked = np.asarray(value)
                if stacked.dtype != object:
                    return {prefix: stacked}, "array"
            except ValueError:
                pass
        arrays = {}
        parts = []
        for i, item in enumerate(value):
            sub_arrays, sub_structure = to_arrays(item, f"{prefix}.{i}")
            arrays.update(sub_arrays)
            parts.append(sub_structure)
        return arrays, {"tuple": parts}
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError(
            f"returned {type(value).__name__} values that do not form one numeric array"
        )
    return {prefix: array}, "array"


def _is_container(value: Any) -> bool:
    return (
        isinstance(value, (tuple, list, dict, np.ndarray))
        or hasattr(value, "__array__")
        or _is_figure(value)
    )


def _is_array_like(value: Any) -> bool:
    return isinstance(value, np.ndarray) or (
        hasattr(value, "__array__") and not isinstance(value, (tuple, list))
    )


def _is_figure(value: Any) -> bool:
    figure = getattr(sys.modules.get("matplotlib.figure"), "Figure", None)
    return figure is not None and isinstance(value, figure)


def _figure_arrays(figure: Any, prefix: str) -> dict[str, np.ndarray]:
    """What a figure shows: per axes with an image, its text and the image itself."""
    texts, images, cmaps, grids = [], [], [], []
    for axes in figure.axes:
        if not axes.images:
            continue
        cmaps.append(str(axes.images[0].get_cmap().name))
        spec = axes.get_subplotspec() if hasattr(axes, "get_subplotspec") else None
        grids.append(spec.get_geometry()[:2] if spec is not None else (0, 0))
        words = [axes.get_title(), axes.get_xlabel(), axes.get_ylabel()] + [
            t.get_text() for t in axes.texts
        ]
        texts.append(" ".join(w for w in words if w))
        images.append(np.asarray(axes.images[0].get_array(), dtype=np.float32))
    arrays = {
        f"{prefix}.texts": np.array(texts, dtype=str),
        f"{prefix}.cmaps": np.array(cmaps, dtype=str),
        f"{prefix}.grid": np.array(grids[0] if grids else (0, 0), dtype=np.int64),
    }
    shapes = {image.shape for image in images}
    if len(shapes) == 1:
        arrays[f"{prefix}.images"] = np.stack(images)
    return arrays


@contextlib.contextmanager
def _catch_figures() -> Iterator[list]:
    """Keep figures a call creates (with plt.show() a no-op) and close them afterwards."""
    caught: list = []
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        yield caught
        return
    before = set(plt.get_fignums())
    show = plt.show
    plt.show = lambda *a, **k: None
    try:
        yield caught
    finally:
        plt.show = show
        for number in plt.get_fignums():
            if number not in before:
                caught.append(plt.figure(number))
        for figure in caught:
            plt.close(figure)


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
    entry: dict[str, Any] = {}
    if kind == "call":
        function = _function(namespace, settings["function"])
        scalars = set(settings["scalars"])
        value = {k: (arrays[k].item() if k in scalars else arrays[k].copy()) for k in arrays}
        args = [value[f"arg{i}"] for i in range(settings["nargs"])]
        kwargs = {k: value[f"kw_{k}"] for k in settings["kwargs"]}
        with _catch_figures() as figures:
            returned = function(*args, **kwargs)
        entry["returned_figure"] = _is_figure(returned)
        if returned is None and figures:
            returned = figures[-1]
        outputs, entry["structure"] = to_arrays(returned)
    elif kind == "value":
        if settings["name"] not in namespace:
            raise NameError(f"no variable named `{settings['name']}`: run the cell that defines it")
        value = namespace[settings["name"]]
        if settings["attribute"]:
            value = getattr(value, settings["attribute"])
        outputs, entry["structure"] = to_arrays(value)
    elif kind in ("train", "eval"):
        import torch

        function = _function(namespace, settings["function"])
        loader = _loader(arrays, settings["batch_size"])
        if kind == "train":
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
            torch.save({"before": before, "after": after}, str(out / f"{key}.weights.pt"))
            entry["program"] = export_model(model, key, out)
        else:
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
        outputs = {"modes": np.array(modes, dtype=bool), "grads": np.array(grads, dtype=bool)}
        entry["returned_type"] = type(returned).__name__
        with contextlib.suppress(TypeError, ValueError):
            outputs["returned"] = np.asarray(
                float(returned.item() if hasattr(returned, "item") else returned)
            )
    else:
        raise ValueError(f"unknown probe kind {kind!r}")
    np.savez(out / f"{key}.out.npz", **outputs)
    return entry


def export_named(name: str, namespace: dict, out: Path) -> dict[str, Any]:
    """Export the model called `name`; a failure becomes an `error` entry, never an exception."""
    if name not in namespace:
        return {"error": f"no variable named `{name}`: build it and run its cell"}
    try:
        with _time_limit(PROBE_SECONDS):
            return export_model(namespace[name], name, out)
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the student, not raised
        return {"error": _error_text(exc)}


def probe_named(
    kind: str, settings: dict, arrays: dict, namespace: dict, out: Path, key: str
) -> dict[str, Any]:
    """Run one probe; a failure becomes an `error` entry, never an exception."""
    try:
        with _time_limit(PROBE_SECONDS):
            return {"error": None, **run_probe(kind, settings, arrays, namespace, out, key)}
    except Exception as exc:  # noqa: BLE001
        return {"error": _error_text(exc)}


def run_plan(plan_dir: str | Path, out_dir: str | Path, namespace: dict) -> dict:
    """Export every model and run every probe listed in `plan_dir/plan.json`; write manifest.json."""
    plan_dir, out = Path(plan_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = json.loads((plan_dir / "plan.json").read_text())
    manifest: dict[str, Any] = {"models": {}, "probes": {}}
    for name in plan["models"]:
        manifest["models"][name] = export_named(name, namespace, out)
    for probe in plan["probes"]:
        key = probe["key"]
        with np.load(plan_dir / f"{key}.in.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        manifest["probes"][key] = probe_named(
            probe["kind"], probe["settings"], arrays, namespace, out, key
        )
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
