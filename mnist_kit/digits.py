"""Your own digit, prepared the way MNIST's digits were: grey, light ink on black, the ink
scaled to fit a 20x20 box (aspect kept, anti-aliased) and centred by its centre of mass in a
28x28 image.

    from mnist_kit.data import prepare_digit
    image = prepare_digit("my_seven.png")   # a path, a PIL image or an array
    model.predict(scale_pixels(image)[None])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["prepare_digit", "to_grey"]

BOX = 20  # MNIST scaled each digit to fit 20x20 pixels ...
SIZE = 28  # ... then centred it by mass in 28x28
INK = 0.1  # pixels above this fraction of the darkest ink count when cropping


def to_grey(image: Any) -> np.ndarray:
    """A 2-D float array in [0, 1] from a path, a PIL image or an array (grey, RGB or RGBA);
    transparent pixels count as white paper."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        with Image.open(image) as opened:
            image = opened.convert("RGBA")
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGBA"))
    array = np.asarray(image, dtype=np.float64)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected a grey, RGB or RGBA image, got an array shaped {array.shape}")
    if array.size == 0:
        raise ValueError("the image is empty")
    if array.max() > 1.0:
        array = array / 255.0
    if array.ndim == 3:
        if array.shape[2] == 4:  # composite on white paper
            alpha = array[..., 3:]
            array = array[..., :3] * alpha + (1.0 - alpha)
        array = (
            array[..., :3] @ np.array([0.299, 0.587, 0.114])
            if array.shape[2] >= 3
            else array[..., 0]
        )
    return np.clip(array, 0.0, 1.0)


def _ink(grey: np.ndarray) -> np.ndarray:
    """Ink as light values on 0: inverted when the paper (the border) is light, paper removed."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(border))
    ink = 1.0 - grey if paper > 0.5 else grey
    ink = np.clip(ink - min(paper, 1.0 - paper), 0.0, None)
    if ink.max() <= 0.05:
        raise ValueError("no digit found: the image has no ink that stands out from the paper")
    return ink / ink.max()


def _fit_box(ink: np.ndarray) -> np.ndarray:
    """The ink cropped to its bounding box and scaled to fit BOX x BOX, aspect ratio kept."""
    from PIL import Image

    rows, cols = np.nonzero(ink > INK)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = BOX / max(crop.shape)
    height = max(1, round(crop.shape[0] * scale))
    width = max(1, round(crop.shape[1] * scale))
    small = Image.fromarray(crop.astype(np.float32), mode="F").resize(
        (width, height), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR
    )
    return np.clip(np.asarray(small, dtype=np.float64), 0.0, 1.0)


def _centre_by_mass(box: np.ndarray) -> np.ndarray:
    """`box` placed in SIZE x SIZE with its centre of mass on the centre (whole-pixel shift)."""
    rows, cols = np.indices(box.shape)
    total = box.sum()
    centre_row, centre_col = (rows * box).sum() / total, (cols * box).sum() / total
    top = int(round(SIZE / 2 - centre_row))  # MNIST centres mass on pixel 14 (0-based), not 13.5
    left = int(round(SIZE / 2 - centre_col))
    top = min(max(top, 0), SIZE - box.shape[0])  # keep the whole digit in the frame
    left = min(max(left, 0), SIZE - box.shape[1])
    out = np.zeros((SIZE, SIZE))
    out[top : top + box.shape[0], left : left + box.shape[1]] = box
    return out


def prepare_digit(image: Any) -> np.ndarray:
    """A 28x28 uint8 image like MNIST's (ink 255 on 0) from a photo, scan or drawing of one
    digit: dark ink on light paper or light on dark, any size, any position."""
    grey = to_grey(image)
    if min(grey.shape[:2]) < 2:
        raise ValueError(f"the image is {grey.shape[1]}x{grey.shape[0]} pixels; too small")
    prepared = _centre_by_mass(_fit_box(_ink(grey)))
    return np.round(prepared * 255).astype(np.uint8)
