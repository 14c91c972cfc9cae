"""TensorBoard logs: the same tags from both frameworks, read back equal to the History, and
served by a real `tensorboard` over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from mnist_kit.tensorboard_log import SCALAR_TAGS, TensorBoardLog, read_scalars

EPOCHS = [
    {"loss": 0.9, "accuracy": 0.71, "val_loss": 0.8, "val_accuracy": 0.74},
    {"loss": 0.4, "accuracy": 0.88, "val_loss": 0.45, "val_accuracy": 0.86},
    {"loss": 0.3, "accuracy": 0.91, "val_loss": 0.35, "val_accuracy": 0.9},
]


def _log(folder, framework: str) -> None:
    log = TensorBoardLog(folder, framework, learning_rate=3e-3)
    log.on_train_begin({"epochs": 3, "steps": 10})
    for epoch, logs in enumerate(EPOCHS):
        log.on_epoch_end(epoch, logs)
    log.on_train_end({})


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_each_framework_writes_the_same_tags_and_values(tmp_path, framework):
    """Read back with TensorBoard's own reader: every tag, one point per epoch, equal values?"""
    _log(tmp_path / framework, framework)
    scalars = read_scalars(tmp_path / framework)
    assert sorted(scalars) == sorted(SCALAR_TAGS)
    for key in EPOCHS[0]:
        assert [step for step, _ in scalars[key]] == [0, 1, 2]
        np.testing.assert_allclose(
            [v for _, v in scalars[key]], [e[key] for e in EPOCHS], rtol=1e-6
        )
    np.testing.assert_allclose([v for _, v in scalars["learning_rate"]], [3e-3] * 3, rtol=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_tensorboard_serves_the_logged_curves_over_http(tmp_path):
    """Does `tensorboard --logdir` on localhost list both runs and return their loss curves?"""
    _log(tmp_path / "runs" / "torch-mlp", "torch")
    _log(tmp_path / "runs" / "keras-mlp", "keras")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path / "runs"),
         "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/data/plugin/scalars"
    try:
        deadline, runs = time.monotonic() + 90, {}
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/tags", timeout=5) as reply:
                    runs = json.load(reply)
                if {"torch-mlp", "keras-mlp"} <= set(runs):
                    break
            except OSError:
                pass
            time.sleep(1)
        assert {"torch-mlp", "keras-mlp"} <= set(runs), runs
        for run in ("torch-mlp", "keras-mlp"):
            assert set(SCALAR_TAGS) <= set(runs[run]), runs[run]
            url = f"{base}/scalars?run={run}&tag=loss&format=json"
            with urllib.request.urlopen(url, timeout=10) as reply:
                points = json.load(reply)  # [[wall time, step, value], ...]
            assert [p[1] for p in points] == [0, 1, 2]
            np.testing.assert_allclose(
                [p[2] for p in points], [e["loss"] for e in EPOCHS], rtol=1e-6
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("framework", ["torch", pytest.param("keras", marks=pytest.mark.slow)])
def test_fit_with_tensorboard_logs_exactly_its_history(tmp_path, framework):
    """`fit(..., tensorboard=DIR)` in each kit: the event files read back equal the History."""
    from mnist_kit import keras_kit, torch_kit
    from mnist_kit.data import load_mnist

    (x, y), _ = load_mnist()
    kit = torch_kit if framework == "torch" else keras_kit
    model = kit.mlp(hidden=(16,))
    history = kit.fit(model, x[:2000], y[:2000], epochs=2, batch_size=100, verbose=0,
                      validation_data=(x[2000:2500], y[2000:2500]), lr=2e-3,
                      tensorboard=str(tmp_path / framework))  # fmt: skip
    scalars = read_scalars(tmp_path / framework)
    assert sorted(scalars) == sorted(SCALAR_TAGS)
    for key, values in history.history.items():
        assert [step for step, _ in scalars[key]] == [0, 1], key
        np.testing.assert_allclose([v for _, v in scalars[key]], values, rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["learning_rate"]], [2e-3, 2e-3], rtol=1e-6)


def test_the_playground_logs_each_run_in_its_own_folder(tmp_path):
    """Two playground runs with log_dir: one TensorBoard run each, named by number and model."""
    from mnist_kit.data import load_mnist
    from mnist_kit.widgets.live import LiveState
    from mnist_kit.widgets.session import Session
    from mnist_kit.widgets.settings import Settings

    (x, y), test = load_mnist()
    small = ((x[:3000], y[:3000]), (test[0][:500], test[1][:500]))
    session = Session(load_data=lambda: small, log_dir=str(tmp_path / "runs"))
    for neurons in (16, 32):
        settings = Settings(framework="torch", neurons=neurons, layers=1, epochs=2)
        record = session.run(settings, LiveState(), None)
        assert record.status != "failed", record.error
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert folders == ["run-01-torch-mlp", "run-02-torch-mlp"]
    for folder in folders:
        assert [s for s, _ in read_scalars(tmp_path / "runs" / folder)["val_loss"]] == [0, 1]
