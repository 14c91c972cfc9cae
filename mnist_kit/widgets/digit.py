"""Turn a photo or drawing of a digit into a 28x28 image the way MNIST's digits were made.

MNIST digits are light on black, fitted into a 20x20 box with their aspect ratio kept,
then placed on a 28x28 field so their centre of mass sits at the centre (LeCun et al., 1998).
"""

from __future__ import annotations

import io

import numpy as np

__all__ = ["prepare_digit", "DigitImageError"]


class DigitImageError(ValueError):
    """The uploaded file is not an image of a digit the playground can use."""


def _load_grey(data: bytes | np.ndarray) -> np.ndarray:
    """Grey pixels as float in [0, 1]; transparent areas count as white paper."""
    if isinstance(data, np.ndarray):
        grey = data.astype(np.float64)
        if grey.ndim == 3:
            grey = grey[..., :3].mean(axis=2)
        if grey.ndim != 2:
            raise DigitImageError(f"expected a 2-D grey image, got shape {data.shape}")
        return grey / 255.0 if grey.max() > 1.0 else grey
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(bytes(data)))
        image.load()
    except (UnidentifiedImageError, OSError) as err:
        raise DigitImageError(
            "could not read that file as an image; upload a PNG or JPEG of one digit"
        ) from err
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, image)
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def prepare_digit(data: bytes | np.ndarray, invert: bool | None = None) -> np.ndarray:
    """A uint8 (28, 28) MNIST-like digit from PNG/JPEG bytes or a pixel array.

    Args:
        data: the file's bytes, or an (H, W) / (H, W, 3) array.
        invert: True for a dark digit on light paper; None decides from the border pixels.

    Raises:
        DigitImageError: the file is not an image, or it holds no visible digit.
    """
    from PIL import Image

    grey = _load_grey(data)
    if invert is None:
        border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
        invert = float(np.median(border)) > 0.5
    ink = 1.0 - grey if invert else grey
    ink = np.clip(ink - np.median(ink), 0.0, None)  # paper that is not pure white becomes 0
    if ink.max() < 0.1:
        raise DigitImageError(
            "the image looks blank: draw the digit with a thick dark pen on white"
        )
    ink /= ink.max()
    rows = np.flatnonzero(ink.max(axis=1) > 0.2)
    cols = np.flatnonzero(ink.max(axis=0) > 0.2)
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = ink.shape
    scale = 20.0 / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray((ink * 255).astype(np.uint8)).resize(size, Image.LANCZOS)
    box = np.asarray(small, dtype=np.float64)
    total = box.sum()
    ys, xs = np.indices(box.shape)
    cy, cx = (ys * box).sum() / total, (xs * box).sum() / total
    top = int(np.clip(round(14 - cy), 0, 28 - box.shape[0]))
    left = int(np.clip(round(14 - cx), 0, 28 - box.shape[1]))
    field = np.zeros((28, 28), dtype=np.float64)
    field[top : top + box.shape[0], left : left + box.shape[1]] = box
    return np.clip(field, 0, 255).astype(np.uint8)
