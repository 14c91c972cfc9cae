"""Pieces every plot shares: headless figures, image reshaping, and the right/wrong colours."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.figure import Figure

# One colour scheme for every plot: blue is the right answer, red a wrong prediction.
RIGHT = "tab:blue"
WRONG = "tab:red"
OTHER = "lightgray"


class KitFigure(Figure):
    """A matplotlib Figure that Jupyter shows as a PNG even when pyplot was never imported."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def new_figure(width: float, height: float) -> Figure:
    """A Figure that belongs to no pyplot window, so it never leaks and never pops up."""
    return KitFigure(figsize=(width, height), layout="constrained")


def as_images(x: Any) -> np.ndarray:
    """Images as `(N, 28, 28)` from `(N, 28, 28)`, `(N, 28, 28, 1)`, `(N, 1, 28, 28)` or `(N, 784)`."""
    x = np.asarray(_to_numpy(x))
    if x.ndim == 4 and 1 in (x.shape[1], x.shape[3]):
        x = x[:, 0] if x.shape[1] == 1 else x[..., 0]
    elif x.ndim == 2 and x.shape[1] == 784:
        x = x.reshape(-1, 28, 28)
    if x.ndim != 3:
        raise ValueError(
            f"expected a batch of grey images (N, 28, 28), (N, 28, 28, 1), (N, 1, 28, 28) or (N, 784); "
            f"got shape {x.shape}"
        )
    return x


def as_image(image: Any) -> np.ndarray:
    """One image as `(28, 28)` from any of the batch layouts above, without the batch axis."""
    image = np.asarray(_to_numpy(image))
    if image.ndim == 1 and image.size == 784:
        return image.reshape(28, 28)
    if image.ndim == 3 and 1 in (image.shape[0], image.shape[2]):
        return image[0] if image.shape[0] == 1 else image[..., 0]
    if image.ndim == 4 and image.shape[0] == 1:
        return as_images(image)[0]
    if image.ndim != 2:
        raise ValueError(f"expected one grey image (28, 28); got shape {image.shape}")
    return image


def show_digit(ax, image: np.ndarray) -> None:
    """Draw a digit in black on white (ink dark) with no ticks."""
    vmax = 255 if np.issubdtype(image.dtype, np.integer) or image.max() > 1.0 else 1.0
    ax.imshow(image, cmap="gray_r", vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def grid_shape(n: int, cols: int) -> tuple[int, int]:
    """Rows and columns for n panels with at most `cols` per row."""
    if cols < 1:
        raise ValueError(f"cols must be at least 1, got {cols}")
    cols = max(1, min(cols, n))
    return -(-n // cols), cols


def message_figure(text: str, title: str = "") -> Figure:
    """A small figure holding one sentence: what to show when there is nothing to plot."""
    fig = new_figure(6, 1.6)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, wrap=True)
    if title:
        ax.set_title(title)
    return fig


def _to_numpy(value: Any) -> Any:
    # A torch tensor (possibly on a GPU, possibly requiring grad) becomes a numpy array.
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    return value
