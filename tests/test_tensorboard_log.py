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
