"""prepare_digit: a digit of your own, prepared the way MNIST's were."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnist_kit.data import load_mnist
from mnist_kit.digits import prepare_digit


def _rerender(digit: np.ndarray, rng: np.random.Generator, dark_ink: bool = True) -> np.ndarray:
    """An MNIST digit drawn again at 2-5x its size, somewhere on a bigger sheet, as RGB."""
    rows, cols = np.nonzero(digit > 30)
    crop = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    factor = rng.uniform(2.0, 5.0)
    size = (int(crop.shape[1] * factor), int(crop.shape[0] * factor))
    big = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC))
    sheet = np.zeros((big.shape[0] + rng.integers(20, 120), big.shape[1] + rng.integers(20, 120)))
    top = rng.integers(0, sheet.shape[0] - big.shape[0])
    left = rng.integers(0, sheet.shape[1] - big.shape[1])
    sheet[top : top + big.shape[0], left : left + big.shape[1]] = big
    sheet = 255 - sheet if dark_ink else sheet
    return np.stack([sheet.astype(np.uint8)] * 3, axis=-1)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def _classifier(x_train, y_train):
    """A small MLP trained for two epochs: a fixed judge of whether two images read the same."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    images = torch.tensor(x_train / 255.0, dtype=torch.float32)
    labels = torch.tensor(y_train)
    for _ in range(2):
        order = torch.randperm(len(images))
        for start in range(0, len(images), 128):
            batch = order[start : start + 128]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.tensor(x / 255.0, dtype=torch.float32)).argmax(1).numpy()

    return predict


@pytest.mark.slow
def test_rerendered_test_digits_come_back_mnist_like_and_read_the_same(mnist):
    """300 test digits drawn again bigger, elsewhere, dark on white: do they come back close to
    the originals (mass on pixel 14, same box) and classify within 2 points of them?"""
    (x_train, y_train), (x_test, y_test) = mnist
    rng = np.random.default_rng(0)
    picked = rng.choice(len(x_test), 300, replace=False)
    prepared = np.stack([prepare_digit(_rerender(x_test[i], rng)) for i in picked])
    assert prepared.shape == (300, 28, 28) and prepared.dtype == np.uint8
    correlation = [
        np.corrcoef(p.ravel(), x_test[i].ravel())[0, 1]
        for p, i in zip(prepared, picked, strict=True)
    ]
    assert np.median(correlation) > 0.75, np.median(correlation)
    rows, cols = np.indices((28, 28))
    mass = prepared.astype(float).sum(axis=(1, 2))
    centre = [(prepared * rows).sum(axis=(1, 2)) / mass, (prepared * cols).sum(axis=(1, 2)) / mass]
    assert abs(np.mean(centre[0]) - 14) < 0.2 and abs(np.mean(centre[1]) - 14) < 0.2
    predict = _classifier(x_train, y_train)
    original = (predict(x_test[picked]) == y_test[picked]).mean()
    again = (predict(prepared) == y_test[picked]).mean()
    assert original - again <= 0.02, (original, again)


def test_light_ink_on_dark_transparent_and_pil_inputs_give_the_same_digit(mnist, tmp_path):
    """Light on dark, RGBA with transparent paper, a PIL image and a PNG path: one result?"""
    digit = mnist[1][0][0]
    rgb = _rerender(digit, np.random.default_rng(1))
    reference = prepare_digit(rgb)
    assert np.array_equal(prepare_digit(255 - rgb), reference)  # light ink on dark paper
    rgba = np.dstack([np.zeros_like(rgb), 255 - rgb[..., :1]])  # black ink, alpha = ink
    assert np.abs(prepare_digit(rgba).astype(int) - reference).max() <= 2
    Image.fromarray(rgb).save(tmp_path / "seven.png")
    assert np.array_equal(prepare_digit(tmp_path / "seven.png"), reference)
    assert np.array_equal(prepare_digit(Image.fromarray(rgb)), reference)
    assert np.array_equal(prepare_digit(digit), prepare_digit(prepare_digit(digit)))


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.full((50, 50), 255, np.uint8), "no digit found"),
        (np.zeros((4, 4, 2)), "expected a grey, RGB or RGBA image"),
        (np.zeros((0, 5)), "the image is empty"),
        (np.zeros((1, 9)), "too small"),
    ],
)
def test_an_image_with_no_digit_is_a_clear_error(image, message):
    with pytest.raises(ValueError, match=message):
        prepare_digit(image)
