"""Visible tests of assignment 1, data (after course/02-data.ipynb).

The grader makes its own small image sets in which every image carries its index in two
pixels, so it can tell whether a split lost, repeated or shuffled apart any image.
"""

from __future__ import annotations

import re

import numpy as np

from mnist_kit.grading.declare import Call, Fail, expect, graded


def tagged_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` random uint8 images whose pixels [0, 0] and [0, 1] hold the image's index, and labels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
    images[:, 0, 0] = np.arange(n) % 256
    images[:, 0, 1] = np.arange(n) // 256
    images[0, 5, 5], images[1, 5, 5] = 0, 255  # both extremes occur
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    return images, labels


def image_ids(images: np.ndarray) -> np.ndarray:
    """The index each (possibly scaled) image carries."""
    pixels = np.asarray(images, dtype=np.float64)
    if pixels.size and pixels.max() <= 1.0:
        pixels = pixels * 255.0
    pixels = np.rint(pixels).astype(np.int64)
    return pixels[:, 0, 0] + 256 * pixels[:, 0, 1]


def unpack_split(result, label: str):
    """((x_train, y_train), (x_val, y_val)) from what split_train_val returned, or Fail."""
    shape_hint = f"{label} should return ((x_train, y_train), (x_val, y_val))"
    expect(isinstance(result, tuple) and len(result) == 2, shape_hint)
    parts = []
    for pair in result:
        expect(isinstance(pair, tuple) and len(pair) == 2, shape_hint)
        parts.extend(np.asarray(p) for p in pair)
    x_train, y_train, x_val, y_val = parts
    expect(
        x_train.ndim == 3 and x_val.ndim == 3,
        f"{label}: images should keep their shape (N, 28, 28); got {x_train.shape} and {x_val.shape}",
    )
    expect(
        len(x_train) == len(y_train) and len(x_val) == len(y_val),
        f"{label}: images and labels must come in equal numbers",
    )
    return x_train, y_train, x_val, y_val


def expect_split(
    result, images: np.ndarray, labels: np.ndarray, val_fraction: float, label: str, what: str
) -> None:
    """Check one aspect (`what`: sizes, complete or labels) of a train/validation split."""
    x_train, y_train, x_val, y_val = unpack_split(result, label)
    n = len(images)
    n_val = round(n * val_fraction)
    if what == "sizes":
        expect(
            abs(len(x_val) - n_val) <= 1 and len(x_train) + len(x_val) == n,
            f"{label} gave {len(x_train)} training and {len(x_val)} validation images; "
            f"expected {n - n_val} and {n_val} ({val_fraction:.0%} for validation)",
        )
    elif what == "complete":
        ids = np.concatenate([image_ids(x_train), image_ids(x_val)])
        unique, counts = np.unique(ids, return_counts=True)
        repeated = unique[counts > 1]
        missing = np.setdiff1d(np.arange(n), unique)
        expect(
            len(repeated) == 0,
            f"{label} repeated {len(repeated)} images (e.g. image {short_list(repeated)}); draw a permutation, not random indices",
        )
        expect(
            len(missing) == 0,
            f"{label} lost {len(missing)} images (e.g. image {short_list(missing)}); every image must land in exactly one part",
        )
    elif what == "labels":
        for part, x, y in (("training", x_train, y_train), ("validation", x_val, y_val)):
            wrong = np.nonzero(np.asarray(y) != labels[image_ids(x) % n])[0]
            expect(
                len(wrong) == 0,
                f"{label}: {len(wrong)} {part} labels no longer belong to their images; "
                "index images and labels with the same permutation",
            )
    else:
        raise ValueError(f"unknown split check {what!r}")


def short_list(values: np.ndarray) -> str:
    return ", ".join(str(v) for v in np.asarray(values)[:3])


_IMAGES, _LABELS = tagged_images(200, 11)
SCALE = Call("scale_images", (_IMAGES,), label="scale_images(images)")
SPLIT = Call("split_train_val", (_IMAGES, _LABELS), label="split_train_val(images, labels)")
SPLIT_AGAIN = Call(
    "split_train_val", (_IMAGES, _LABELS), label="split_train_val(images, labels)", tag="again"
)
SPLIT_42 = Call(
    "split_train_val",
    (_IMAGES, _LABELS),
    {"seed": 42},
    label="split_train_val(images, labels, seed=42)",
)
SHOW = Call("show_digits", tagged_images(20, 12), label="show_digits(images, labels)")


@graded("q1_scale", 1)
def test_scale_dtype(submission):
    """Does scale_images return float32 images of the same shape?"""
    scaled = np.asarray(submission.call(SCALE))
    expect(
        scaled.shape == _IMAGES.shape,
        f"{SCALE.label} returned shape {scaled.shape}; expected {_IMAGES.shape}",
    )
    expect(
        scaled.dtype == np.float32,
        f"{SCALE.label} returned {scaled.dtype}; expected float32: use .astype('float32')",
    )


@graded("q1_scale", 1)
def test_scale_range(submission):
    """Are the pixels divided by 255, so 0 stays 0.0 and 255 becomes 1.0?"""
    scaled = np.asarray(submission.call(SCALE), dtype=np.float64)
    expected = _IMAGES / 255.0
    expect(
        scaled.shape == expected.shape,
        f"{SCALE.label} returned shape {scaled.shape}; expected {expected.shape}",
    )
    expect(
        scaled.min() >= 0.0 and scaled.max() <= 1.0,
        f"{SCALE.label} gave values from {scaled.min():g} to {scaled.max():g}; expected [0, 1]: divide by 255",
    )
    expect(np.allclose(scaled, expected, atol=1e-6), f"{SCALE.label} should equal images / 255")


@graded("q1_split", 1)
def test_split_sizes(submission):
    """Does the split keep 80% for training and 20% for validation?"""
    expect_split(submission.call(SPLIT), _IMAGES, _LABELS, 0.2, SPLIT.label, "sizes")


@graded("q1_split", 1)
def test_split_complete(submission):
    """Does every image land in exactly one part, none lost and none repeated?"""
    expect_split(submission.call(SPLIT), _IMAGES, _LABELS, 0.2, SPLIT.label, "complete")


@graded("q1_split", 1)
def test_split_labels(submission):
    """Does every label stay with its image?"""
    expect_split(submission.call(SPLIT), _IMAGES, _LABELS, 0.2, SPLIT.label, "labels")


@graded("q1_split", 1)
def test_split_seeded(submission):
    """Is the split shuffled, and the same each time it is called with seed 42?"""
    first = unpack_split(submission.call(SPLIT), SPLIT.label)
    second = unpack_split(submission.call(SPLIT_AGAIN), SPLIT.label)
    explicit = unpack_split(submission.call(SPLIT_42), SPLIT_42.label)
    expect(
        all(np.array_equal(a, b) for a, b in zip(first, explicit, strict=False)),
        "split_train_val(images, labels) and split_train_val(images, labels, seed=42) differ: "
        "make seed=42 the default",
    )
    ids = np.sort(image_ids(first[2]))
    expect(
        len(ids) == 0 or not np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids))),
        "the validation images are one unshuffled block; shuffle with a seeded permutation first",
    )
    expect(
        all(np.array_equal(a, b) for a, b in zip(first, second, strict=False)),
        "two calls with seed=42 gave different splits; use np.random.default_rng(seed) instead of unseeded randomness",
    )


@graded("q1_show", 1)
def test_show_ten_digits(submission):
    """Does show_digits return a 2x5 grid of the first ten images in grey, each titled with its label?"""
    images, labels = SHOW.args
    figure = submission.call(SHOW)
    expect(
        figure is not None and hasattr(figure, "texts"),
        f"{SHOW.label} drew no figure; draw the digits with matplotlib (plt.subplots) and return the figure",
    )
    expect(
        len(figure.texts) == 10,
        f"the figure shows {len(figure.texts)} images; expected the first 10",
    )
    for position, text in enumerate(figure.texts):
        expect(
            str(labels[position]) in re.findall(r"\d+", text),
            f"image {position + 1}'s title {text!r} should show its label {labels[position]}",
        )
    expect_figure_as_asked(figure, SHOW.label, grid=(2, 5), cmap="gray")


def expect_figure_as_asked(
    figure, label: str, grid: tuple[int, int] | None = None, cmap: str | None = None
) -> None:
    """The function returned its figure, drawn in the asked grid with the asked colormap."""
    expect(
        figure.returned,
        f"{label} drew the figure but did not return it: end with `return figure`",
    )
    if grid is not None and figure.grid is not None:
        rows, columns = figure.grid
        expect(
            (rows, columns) == grid,
            f"{label} drew a {rows}x{columns} grid; use plt.subplots({grid[0]}, {grid[1]})",
        )
    if cmap is not None:
        same = {cmap, cmap.replace("gray", "grey")}  # matplotlib names the grey map both ways
        other = sorted({c for c in figure.cmaps if c not in same})
        expect(
            not other,
            f"{label} drew images with the colormap {', '.join(other)}; pass cmap={cmap!r} to imshow",
        )


@graded("q1_show", 1)
def test_show_right_images(submission):
    """Are the ten images shown the first ten, in order?"""
    images, _ = SHOW.args
    figure = submission.call(SHOW)
    if not hasattr(figure, "images") or figure.images is None or len(figure.images) != 10:
        raise Fail("the figure does not show ten 28x28 images")
    for position in range(10):
        shown = figure.images[position].ravel()
        wanted = images[position].ravel().astype(np.float32)
        expect(
            np.corrcoef(shown, wanted)[0, 1] > 0.99,
            f"image {position + 1} is not image {position} of the input; show images[0] to images[9] in order",
        )
