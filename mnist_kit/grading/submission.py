"""Grader side: what a test sees of one submission, loaded from the files its kernel wrote.

Models are loaded without running student code: Keras files with `safe_mode=True`,
PyTorch programs with `torch.export.load` while every `torch.load` is forced to
`weights_only=True`, outputs with `np.load(allow_pickle=False)`. Accuracy is always
measured here, on the real MNIST test set.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnist_kit.config import FRAMEWORKS
from mnist_kit.grading.declare import Call, EvalRun, Fail, Probe, TrainRun, Value
from mnist_kit.grading.graded_model import GradedModel, trusted_count

__all__ = [
    "Submission",
    "safe_file",
    "CallResult",
    "FigureInfo",
    "load_probe_inputs",
]


@contextlib.contextmanager
def _weights_only() -> Iterator[None]:
    """Force every torch.load inside the block to weights_only=True (no pickled code runs)."""
    saved = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = saved


MAX_MANIFEST_BYTES = 10 * 2**20


def safe_file(folder: Path, name: str) -> Path:
    """`folder/name` if it is a regular file inside `folder`, else Fail.

    The folder is written by the student's kernel: a symlink (or a hard link) there could point
    the grader at files the sandbox hid (hidden tests, other students' work).
    """
    path = Path(folder) / name
    if path.is_symlink():
        raise Fail(f"{name} is a symbolic link; the grader only reads files the notebook saved")
    try:
        inside = path.resolve().is_relative_to(Path(folder).resolve())
        info = path.stat()
    except OSError:
        raise Fail(f"{name} is missing; did the notebook run to the end?") from None
    import stat

    if not inside or not stat.S_ISREG(info.st_mode):
        raise Fail(f"{name} is not a plain file in the notebook's output folder")
    if info.st_nlink > 1:
        raise Fail(f"{name} is a hard link; the grader only reads files the notebook saved")
    return path


def _read_manifest(folder: Path) -> dict:
    """manifest.json as {"models": {name: entry}, "probes": {key: entry}}; wrong shapes are dropped."""
    empty: dict = {"models": {}, "probes": {}}
    if not (folder / "manifest.json").exists() and not (folder / "manifest.json").is_symlink():
        return empty
    try:
        path = safe_file(folder, "manifest.json")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            return empty
        data = json.loads(path.read_text())
    except (Fail, OSError, ValueError):
        return empty
    if not isinstance(data, dict):
        return empty
    return {
        section: {str(k): v for k, v in (data.get(section) or {}).items() if isinstance(v, dict)}
        if isinstance(data.get(section), dict)
        else {}
        for section in ("models", "probes")
    }


@dataclass
class FigureInfo:
    """What a returned (or shown) figure holds: one text and one image per image axes."""

    texts: list[str]
    images: np.ndarray | None
    cmaps: list[str] = field(default_factory=list)  # colormap of each image, e.g. "gray"
    grid: tuple[int, int] | None = None  # (rows, columns) of the subplot grid
    returned: bool = True  # False: the function drew it but returned something else


@dataclass
class CallResult:
    """What one probe produced: the returned value rebuilt from arrays, or the error it raised."""

    probe: Probe
    value: Any
    arrays: dict[str, np.ndarray]


def _rebuild(structure: Any, arrays: dict[str, np.ndarray], prefix: str = "out") -> Any:
    if structure == "none":
        return None
    if structure == "array":
        return arrays[prefix]
    if structure == "figure":
        texts = [str(t) for t in arrays.get(f"{prefix}.texts", np.array([], dtype=str))]
        cmaps = [str(c) for c in arrays.get(f"{prefix}.cmaps", np.array([], dtype=str))]
        grid = arrays.get(f"{prefix}.grid")
        shape = (int(grid[0]), int(grid[1])) if grid is not None and grid.size == 2 else None
        return FigureInfo(texts, arrays.get(f"{prefix}.images"), cmaps, shape)
    if "dict" in structure:
        return {
            name: _rebuild(part, arrays, f"{prefix}.{i}")
            for i, (name, part) in enumerate(structure["dict"].items())
        }
    parts = structure["tuple"]
    return tuple(_rebuild(part, arrays, f"{prefix}.{i}") for i, part in enumerate(parts))


def load_probe_inputs(folder: Path, key: str) -> dict[str, np.ndarray]:
    with np.load(folder / f"{key}.in.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


class Submission:
    """Everything the tests may ask of one submission, read from its artifact folder.

    `produce` (used by `check()` inside a notebook) creates a missing artifact on demand;
    the grader passes none, so anything the kernel did not write is simply missing.
    """

    def __init__(self, folder: str | Path, produce: Callable[[str, Any], dict] | None = None):
        self.folder = Path(folder)
        self._produce = produce
        self.manifest = _read_manifest(self.folder)
        self.measurements: dict[
            str, float
        ] = {}  # what the grader measured, e.g. "model.test_accuracy"
        self._models: dict[str, GradedModel] = {}

    def file(self, name: str) -> Path:
        """`name` in the artifact folder, if it is a plain file there (see `safe_file`)."""
        return safe_file(self.folder, name)

    def _entry(self, section: str, key: str, item: Any) -> dict:
        entries = self.manifest.setdefault(section, {})
        if key not in entries and self._produce is not None:
            entries[key] = self._produce(section, item)
        if key not in entries:
            raise Fail(f"the grader has no record of {key!r}; did the notebook run to the end?")
        return entries[key]

    def model(self, name: str) -> GradedModel:
        """The model the notebook called `name`, loaded by the grader."""
        if name in self._models:
            return self._models[name]
        entry = self._entry("models", name, name)
        if entry.get("error"):
            raise Fail(f"could not save `{name}` for grading: {entry['error']}")
        self._models[name] = self._load_model(name, entry)
        return self._models[name]

    def _load_model(self, name: str, entry: dict) -> GradedModel:
        if entry.get("framework") not in FRAMEWORKS:
            raise Fail(f"`{name}` was saved in an unknown format")
        path = self.file(Path(str(entry["file"])).name)  # never a path outside the folder
        try:
            if entry["framework"] == "keras":
                from mnist_kit.device import import_tensorflow

                import_tensorflow()  # quiet: no start-up lines on the grader's stderr
                import keras

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    obj = keras.models.load_model(path, safe_mode=True)
            else:
                import torch

                with _weights_only(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    obj = torch.export.load(str(path))
        except Exception as exc:  # noqa: BLE001 - the message goes to the student
            raise Fail(
                f"the grader could not load `{name}` ({type(exc).__name__}: {str(exc)[:200]}); "
                "build it from the framework's own layers (custom classes and Lambda layers cannot be graded)"
            ) from None
        return GradedModel(name, entry["framework"], obj, entry, self.measurements)

    def _probe_entry(self, probe: Probe) -> dict:
        entry = self._entry("probes", probe.key, probe)
        if entry.get("error"):
            raise Fail(f"{probe.label} raised {entry['error']}")
        return entry

    def _outputs(self, probe: Probe) -> dict[str, np.ndarray]:
        with np.load(self.file(f"{probe.key}.out.npz"), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def call(self, probe: Call | Value) -> Any:
        """What `probe.function` returned on the probe's inputs (raises Fail if it raised)."""
        entry = self._probe_entry(probe)
        value = _rebuild(entry["structure"], self._outputs(probe))
        if isinstance(value, FigureInfo):
            value.returned = entry.get("returned_figure") is not False
        return value

    def train_run(self, probe: TrainRun) -> dict[str, Any]:
        """Loss before and after the student's training function ran, measured by the grader."""
        entry = self._probe_entry(probe)
        outputs = self._outputs(probe)
        program = entry["program"]
        if program.get("error"):
            raise Fail(f"could not save the model {probe.label} trained: {program['error']}")
        model = self._load_model(probe.model_class, program)
        import torch

        with _weights_only():
            weights = torch.load(self.file(f"{probe.key}.weights.pt"), weights_only=True)
        images, labels = probe.arrays()["images"], probe.arrays()["labels"]
        before = model.loss(images, labels, weights["before"])
        after = model.loss(images, labels, weights["after"])
        counts = entry.get("counts") if isinstance(entry.get("counts"), dict) else {}
        returned_type = entry.get("returned_type")
        return {
            "before": before,
            "after": after,
            "modes": outputs["modes"],
            "returned": outputs.get("returned"),
            "returned_type": returned_type[:40] if isinstance(returned_type, str) else "",
            "batches": -(-len(labels) // probe.batch_size),
            # observed in the student's kernel (nothing else can see how it trains): they decide
            # the process points of q4_training only; losses and accuracy the grader computes
            **{k: trusted_count(counts.get(k)) for k in ("steps", "backward", "stale")},
        }

    def eval_run(self, probe: EvalRun) -> dict[str, Any]:
        """What the student's evaluation returned, next to the accuracy the grader measures."""
        self._probe_entry(probe)
        outputs = self._outputs(probe)
        images, labels = probe.arrays()["images"], probe.arrays()["labels"]
        measured = float((self.model(probe.model).predict(images).argmax(axis=1) == labels).mean())
        returned = outputs.get("returned")
        return {
            "returned": None if returned is None else float(returned),
            "measured": measured,
            "modes": outputs["modes"],
            "grads": outputs.get("grads"),  # None from a kernel of an older kit
        }
