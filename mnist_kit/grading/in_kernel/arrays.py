"""Turn what a student's function returned (arrays, tuples, dicts, figures) into named arrays
and a JSON description of their structure, which `submission._rebuild` reverses."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["to_arrays", "is_figure", "catch_figures"]


def to_arrays(value: Any, prefix: str = "out") -> tuple[dict[str, np.ndarray], Any]:
    """Flatten a returned value into named arrays plus a JSON description of its structure."""
    if value is None:
        return {}, "none"
    if is_figure(value):
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
        or is_figure(value)
    )


def _is_array_like(value: Any) -> bool:
    return isinstance(value, np.ndarray) or (
        hasattr(value, "__array__") and not isinstance(value, (tuple, list))
    )


def is_figure(value: Any) -> bool:
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
def catch_figures() -> Iterator[list]:
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
