"""Tests of the `mnist-kit` command as a user runs it: exit codes, one-line errors, one JSON object."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

STEMS = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
REQUIRED = {
    "framework",
    "model",
    "params",
    "epochs",
    "batch_size",
    "test_accuracy",
    "train_seconds",
    "device",
}


def run(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "mnist_kit", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_train_json_is_exactly_one_object_with_real_accuracy(framework, tmp_path):
    """Does `train --json` print one JSON object with the promised keys and a measured accuracy?"""
    result = run(
        "train",
        "--framework",
        framework,
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--batch-size",
        "128",
        "--hidden",
        "64",
        "--train-fraction",
        "0.25",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    report = json.loads(lines[0])
    assert REQUIRED <= set(report)
    assert report["framework"] == framework and report["params"] == 784 * 64 + 64 + 64 * 10 + 10
    assert 0.85 < report["test_accuracy"] <= 1.0
    assert report["train_images"] == 12000


def test_train_prints_progress_and_accuracy_for_people():
    """Without --json, does train show what it does and end with the test accuracy?"""
    result = run(
        "train", "--epochs", "1", "--batch-size", "256", "--hidden", "32", "--train-fraction", "0.1"
    )
    assert result.returncode == 0, result.stderr
    assert "test accuracy: 0." in result.stdout
    assert "Epoch 1/1" in result.stderr  # the progress bar


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["train", "--epochs", "0"], "must be at least 1"),
        (["train", "--hidden", "12,x"], "comma-separated integers"),
        (["train", "--framework", "jax"], "invalid choice"),
        (["train", "--train-fraction", "1.5"], "--train-fraction must be in (0, 1]"),
        (["train", "--channels", "32"], "--channels must be two positive numbers"),
        (["train", "--hidden", "64,0"], "--hidden layer sizes must be positive, got [64, 0]"),
        (["train", "--lr", "0"], "--lr must be greater than 0"),
        (["train", "--dropout", "1"], "--dropout must be in [0, 1)"),
        (["train", "--batch-size", "x"], "expected a whole number, got 'x'"),
    ],
)
def test_bad_arguments_exit_2_with_usage(args, fragment):
    """Are bad arguments rejected by argparse with a message naming the problem?"""
    result = run(*args)
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr


def make_folder(tmp_path: Path, mnist_dir: Path, broken: str | None, payload: bytes | None) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for stem in STEMS:
        if stem == broken:
            if payload is not None:
                (folder / f"{stem}.gz").write_bytes(payload)
        else:
            (folder / f"{stem}.gz").symlink_to(mnist_dir / f"{stem}.gz")
    return folder


@pytest.mark.parametrize(
    ("broken", "payload", "fragment"),
    [
        ("t10k-labels-idx1-ubyte", None, "missing t10k-labels-idx1-ubyte.gz"),
        ("t10k-images-idx3-ubyte", b"\x1f\x8b\x08\x00 cut short", "truncated or corrupt"),
        (
            "t10k-images-idx3-ubyte",
            gzip.compress(b"\x00\x00\x08\x01\x00\x00\x27\x10" + bytes(10000)),
            "wrong magic number",
        ),
        (
            "t10k-labels-idx1-ubyte",
            gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05" + bytes(5)),
            "but 5 test labels",
        ),
    ],
)
def test_bad_data_folders_give_one_line_and_write_nothing(
    tmp_path, mnist_dir, broken, payload, fragment
):
    """Does each broken folder give a one-line error, exit non-zero, and leave no file behind?"""
    folder = make_folder(tmp_path, mnist_dir, broken, payload)
    before = sorted(p.name for p in folder.iterdir())
    cache = tmp_path / "cache"
    for command in (
        ["data", "--path", str(folder)],
        ["train", "--path", str(folder), "--epochs", "1"],
    ):
        result = run(*command, env={"MNIST_KIT_CACHE": str(cache)})
        assert_one_line_error(result, fragment)
        assert result.returncode == 3
    assert sorted(p.name for p in folder.iterdir()) == before
    assert not cache.exists() or not any(cache.iterdir())


def test_offline_without_data_is_one_paragraph(tmp_path):
    """With no copy anywhere and no network, is the error one paragraph without a traceback?"""
    env = {
        "MNIST_KIT_DATA": "",
        "KERAS_HOME": str(tmp_path / "k"),
        "MNIST_KIT_CACHE": str(tmp_path / "c"),
        "HOME": str(tmp_path),
    }
    result = run("data", "--no-download", env=env)
    assert_one_line_error(result, "MNIST was not found", "MNIST_KIT_DATA")


def test_data_summary_counts_every_digit(mnist_dir):
    """Does `data --json` report the real per-digit counts?"""
    result = run("data", "--path", str(mnist_dir), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["train_class_counts"][0] == 5923 and sum(summary["test_class_counts"]) == 10000
    assert summary["x_train"] == [[60000, 28, 28], "uint8"]


def test_doctor_reports_frameworks_data_and_widgets():
    """Does `doctor --json` name both frameworks' versions, the data and the widget packages?"""
    result = run("doctor", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["torch"]["version"].startswith("2.") and report["tensorflow"]["keras"].startswith(
        "3."
    )
    assert report["data"]["found"] is True
    assert report["jupyter"]["ipywidgets"]


def test_train_plot_saves_a_png_of_the_curves(tmp_path):
    """Does `train --plot FILE.png` write a real PNG of the training curves?"""
    target = tmp_path / "curves.png"
    result = run(
        "train",
        "--epochs",
        "2",
        "--batch-size",
        "256",
        "--hidden",
        "32",
        "--train-fraction",
        "0.1",
        "--plot",
        str(target),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(result.stdout)["plot"] == str(target)
