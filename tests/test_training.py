"""Tests of `training.train` and of what both frameworks' `fit` promise alike, on real MNIST.

Each kit's own details are in tests/test_torch_kit.py and tests/test_keras_kit.py.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mnist_kit import keras_kit, torch_kit
from mnist_kit.config import SettingError, TrainConfig
from mnist_kit.training import HISTORY_KEYS, Callback, StopFlag, train

KITS = {"torch": torch_kit, "keras": keras_kit}


class Recorder(Callback):
    """Counts every hook call; optionally requests a stop after a given batch."""

    def __init__(self, stop: StopFlag | None = None, stop_after: int | None = None):
        self.calls: dict[str, int] = {}
        self.stop, self.stop_after = stop, stop_after
        self.begin_logs = None
        self.epoch_logs = []

    def _count(self, name):
        self.calls[name] = self.calls.get(name, 0) + 1

    def on_train_begin(self, logs):
        self._count("train_begin")
        self.begin_logs = logs

    def on_epoch_begin(self, epoch):
        self._count("epoch_begin")

    def on_batch_end(self, batch, logs):
        self._count("batch_end")
        assert set(logs) >= {"loss", "accuracy"}
        if self.stop is not None and batch == self.stop_after:
            # Request from another thread, as the playground's Stop button does.
            t = threading.Thread(target=self.stop.request)
            t.start()
            t.join()

    def on_epoch_end(self, epoch, logs):
        self._count("epoch_end")
        self.epoch_logs.append(logs)

    def on_train_end(self, logs):
        self._count("train_end")


@pytest.fixture(scope="module")
def small(mnist):
    """6,000 training and 2,000 validation images from real MNIST."""
    (x, y), (x_test, y_test) = mnist
    return (x[:6000], y[:6000]), (x[6000:8000], y[6000:8000]), (x_test, y_test)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_fit_returns_keras_shaped_history_and_learns(framework, small):
    """Does fit return the four Keras keys per epoch, call every hook, and actually learn?"""
    kit = KITS[framework]
    (x, y), val, (x_test, y_test) = small
    model = kit.mlp()
    recorder = Recorder()
    history = kit.fit(
        model, x, y, epochs=2, batch_size=64, validation_data=val, callbacks=[recorder], verbose=0
    )
    assert set(history.history) == set(HISTORY_KEYS)
    assert all(len(v) == 2 for v in history.history.values())
    assert history.epoch == [0, 1]
    assert recorder.begin_logs == {"epochs": 2, "steps": 94}
    assert recorder.calls["batch_end"] == 2 * 94 and recorder.calls["epoch_end"] == 2
    assert set(recorder.epoch_logs[0]) == set(HISTORY_KEYS)
    assert history.history["loss"][1] < history.history["loss"][0]
    loss, accuracy = kit.evaluate(model, x_test, y_test)
    assert accuracy > 0.88, f"{framework} MLP on 6,000 images reached only {accuracy:.3f}"
    np.testing.assert_allclose(
        accuracy, (kit.predict(model, x_test).argmax(1) == y_test).mean(), atol=1e-6
    )


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_stop_flag_halts_mid_epoch_and_keeps_weights(framework, small):
    """Does a Stop requested at batch 30 end training there, keeping what was learned?"""
    kit = KITS[framework]
    (x, y), val, (x_test, y_test) = small
    stop = StopFlag()
    recorder = Recorder(stop, stop_after=30)
    model = kit.mlp()
    history = kit.fit(
        model,
        x,
        y,
        epochs=3,
        batch_size=32,
        validation_data=val,
        callbacks=[recorder],
        stop=stop,
        verbose=0,
    )
    assert history.stopped_early
    assert recorder.calls["batch_end"] == 31  # batches 0..30, then nothing more
    assert len(history.history["loss"]) == 1  # the partial epoch is recorded
    assert set(history.history) == set(HISTORY_KEYS)
    assert (
        kit.evaluate(model, x_test, y_test)[1] > 0.5
    )  # 31 batches of learning were kept, not thrown away


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_bad_arguments_are_value_errors(framework, small):
    """Are mismatched lengths and unknown optimizers clear ValueErrors?"""
    kit = KITS[framework]
    (x, y), _, _ = small
    with pytest.raises(ValueError, match="must match"):
        kit.fit(kit.mlp(), x[:10], y[:9], verbose=0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        kit.fit(kit.mlp(), x[:10], y[:10], optimizer="adamw-typo", verbose=0)
    with pytest.raises(ValueError, match="unknown framework"):
        train("jax")


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_tutorial_mlp_reaches_97_percent(framework, mnist):
    """Does the tutorial recipe (Adam, 5 epochs, batch 32, 20% validation) reach 97% on the test set?"""
    result = train(framework, "mlp", epochs=5, batch_size=32, data=mnist, verbose=0)
    assert result.params == 109_386
    assert result.test_accuracy >= 0.97, f"{framework} MLP test accuracy {result.test_accuracy:.4f}"
    assert len(result.history.history["val_accuracy"]) == 5


def test_train_takes_a_config_or_keywords_alike(small):
    """Does train(config=...) run exactly the run its keyword form describes?"""
    (x, y), _, (x_test, y_test) = small
    data = ((x, y), (x_test[:1000], y_test[:1000]))
    settings = dict(epochs=1, batch_size=32, hidden=[32], train_fraction=0.5, seed=3)
    by_keywords = train("torch", "mlp", data=data, verbose=0, **settings)
    by_config = train(config=TrainConfig(**settings), data=data, verbose=0)
    # Equal up to rounding: the thread count each run settles on may sum in another order.
    for key, values in by_keywords.history.history.items():
        np.testing.assert_allclose(values, by_config.history.history[key], rtol=1e-3)
    assert by_config.test_accuracy > 0.7  # measured 0.77 after 75 steps; chance is 0.1
    assert abs(by_keywords.test_accuracy - by_config.test_accuracy) <= 0.005
    summary = by_config.summary()
    assert summary["hidden"] == [32] and summary["channels"] is None
    assert summary["train_images"] == 2400  # half of the 4,800 left after the 20% split


def test_train_checks_its_settings_before_loading_anything(tmp_path):
    """Is a bad setting or an unknown keyword refused before data or a framework is loaded?"""
    nowhere = str(tmp_path / "no-data")  # loading from here would be an MnistDataError
    with pytest.raises(SettingError, match="epochs must be at least 1"):
        train("torch", epochs=0, data_path=nowhere)
    with pytest.raises(SettingError, match=r"train_fraction must be in \(0, 1\]"):
        train(config=TrainConfig(), train_fraction=1.5, data_path=nowhere)
    with pytest.raises(ValueError, match="unknown model 'rnn'"):
        train("torch", "rnn", data_path=nowhere)
    with pytest.raises(TypeError, match="epoch"):
        train("torch", epoch=3, data_path=nowhere)  # a typo, not silently ignored


def test_training_still_offers_history_callback_and_stopflag():
    """Do the names lessons import from mnist_kit.training (and mnist_kit) still work?"""
    import mnist_kit
    from mnist_kit import history, training

    for name in ("History", "Callback", "StopFlag", "HISTORY_KEYS", "as_history_dict"):
        assert getattr(training, name) is getattr(history, name)
    assert mnist_kit.History is history.History and mnist_kit.TrainConfig is TrainConfig
