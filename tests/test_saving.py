"""Save and load: a model saved here predicts the same after loading in a fresh Python."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mnist_kit.data import load_mnist

LOAD_AND_PREDICT = """
import sys, numpy as np
from mnist_kit.saving import load
from mnist_kit.data import load_mnist
(_, _), (x, _) = load_mnist()
model = load(sys.argv[1])
x = x[:200].astype("float32") / 255.0
if sys.argv[1].endswith(".pt"):
    import torch
    with torch.no_grad():
        out = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
else:
    out = model.predict(x, verbose=0)
np.save(sys.argv[2], out)
"""


def _in_fresh_python(model_path, tmp_path) -> np.ndarray:
    out = tmp_path / "fresh.npy"
    done = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(model_path), str(out)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return np.load(out)


@pytest.fixture(scope="module")
def mnist_slice():
    (x, y), (x_test, _) = load_mnist()
    return x[:3000].astype("float32") / 255.0, y[:3000], x_test[:200].astype("float32") / 255.0


def test_a_torch_model_is_rebuilt_from_its_recipe_and_predicts_the_same(tmp_path, mnist_slice):
    import torch

    from mnist_kit import torch_models
    from mnist_kit.saving import load, save

    x, y, x_test = mnist_slice
    torch.manual_seed(0)
    model = torch_models.mlp(hidden=(32,))
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    for start in range(0, len(x), 100):
        optimizer.zero_grad()
        batch = torch.from_numpy(x[start : start + 100])
        loss = torch.nn.functional.cross_entropy(
            model(batch), torch.from_numpy(y[start : start + 100])
        )
        loss.backward()
        optimizer.step()
    path = save(model, tmp_path / "mlp.pt", architecture={"model": "mlp", "hidden": [32]})
    with torch.no_grad():
        here = torch.softmax(model.eval()(torch.from_numpy(x_test)), 1).numpy()
    np.testing.assert_allclose(_in_fresh_python(path, tmp_path), here, atol=1e-6)
    assert (here.argmax(1) == load(path).eval()(torch.from_numpy(x_test)).argmax(1).numpy()).all()


@pytest.mark.slow
def test_a_keras_model_is_saved_whole_and_predicts_the_same(tmp_path, mnist_slice):
    from mnist_kit import keras_kit
    from mnist_kit.saving import save

    x, y, x_test = mnist_slice
    model = keras_kit.mlp(hidden=(32,))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=100, verbose=0)
    path = save(model, tmp_path / "mlp.keras")
    np.testing.assert_allclose(
        _in_fresh_python(path, tmp_path), model.predict(x_test, verbose=0), atol=1e-6
    )


def test_wrong_files_and_missing_recipes_are_clear_errors(tmp_path):
    import torch

    from mnist_kit import torch_models
    from mnist_kit.saving import load, save

    model = torch_models.mlp(hidden=(8,))
    with pytest.raises(ValueError, match=r"save a torch model as a \.pt file"):
        save(model, tmp_path / "m.keras")
    bare = save(model, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="pass build=YourModelClass"):
        load(bare)
    assert load(bare, build=lambda: torch_models.mlp(hidden=(8,))) is not None
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not written by mnist_kit.saving.save"):
        load(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="no saved model"):
        load(tmp_path / "missing.pt")


@pytest.mark.parametrize("framework", ["torch", pytest.param("keras", marks=pytest.mark.slow)])
def test_train_save_then_predict_reads_a_drawn_digit(tmp_path, framework):
    """`mnist-kit train --save` then `mnist-kit predict MODEL digit.png`: the right digit, ten
    probabilities summing to 1, and the TensorBoard folder written on the way."""
    import json

    from PIL import Image

    suffix = ".pt" if framework == "torch" else ".keras"
    model = tmp_path / f"mlp{suffix}"
    trained = subprocess.run(
        [sys.executable, "-m", "mnist_kit.cli", "train", "--framework", framework, "--epochs", "2",
         "--train-fraction", "0.25", "--save", str(model), "--tensorboard", str(tmp_path / "runs"),
         "--json", "--quiet"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert json.loads(trained.stdout)["saved"] == str(model) and model.is_file()
    assert list((tmp_path / "runs").glob("events.out.tfevents.*"))
    (_, _), (x_test, y_test) = load_mnist()
    names = []
    for i in range(5):  # dark ink on white paper, three times the size, as a photo would be
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(255 - x_test[i]).resize((84, 84)).save(path)
        names.append(str(path))
    read = subprocess.run([sys.executable, "-m", "mnist_kit.cli", "predict", str(model), *names,
                           "--json"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert read.returncode == 0, read.stderr[-3000:]
    rows = [json.loads(line) for line in read.stdout.splitlines()]
    assert [r["image"] for r in rows] == names
    assert all(abs(sum(r["probabilities"]) - 1) < 1e-3 for r in rows)
    assert sum(r["digit"] == int(y) for r, y in zip(rows, y_test[:5], strict=True)) >= 4


def test_predict_and_save_errors_are_one_line(tmp_path):
    wrong = subprocess.run([sys.executable, "-m", "mnist_kit.cli", "train", "--save", "m.keras",
                            "--framework", "torch"], capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert wrong.returncode == 2 and "a torch model is saved as a .pt file" in wrong.stderr
    missing = subprocess.run([sys.executable, "-m", "mnist_kit.cli", "predict", "none.pt", "x.png"],
                             capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert missing.returncode == 2 and "no saved model at none.pt" in missing.stderr
