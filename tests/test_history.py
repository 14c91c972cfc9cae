"""Tests of mnist_kit.history: the History both frameworks return, StopFlag, Callback."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from mnist_kit.history import HISTORY_KEYS, Callback, History, StopFlag, as_history_dict


def test_history_records_one_value_per_epoch_like_keras():
    """Does appending epochs give Keras' shape: a list per metric and `epoch` counting them?"""
    history = History(params={"epochs": 2})
    history.append({"loss": 0.9, "accuracy": 0.7, "val_loss": 0.8, "val_accuracy": 0.75})
    history.append({"loss": 0.5, "accuracy": 0.85, "val_loss": 0.6, "val_accuracy": 0.8})
    assert set(history.history) == set(HISTORY_KEYS)
    assert history.history["loss"] == [0.9, 0.5] and history.epoch == [0, 1]
    assert history.params == {"epochs": 2} and not history.stopped_early
    assert repr(history) == (
        "History(epochs=2, last={'loss': 0.5, 'accuracy': 0.85, 'val_loss': 0.6, 'val_accuracy': 0.8})"
    )


def test_history_from_keras_keeps_only_the_four_metrics():
    """Are Keras' extra keys (compile_metrics, learning_rate) dropped, the values copied?"""
    keras_like = SimpleNamespace(
        history={
            "loss": [1.0],
            "accuracy": [0.5],
            "compile_metrics": [0.5],
            "learning_rate": [1e-3],
        }
    )
    history = History.from_keras(keras_like, {"steps": 3})
    assert history.history == {"loss": [1.0], "accuracy": [0.5]}
    keras_like.history["loss"].append(0.1)
    assert history.history["loss"] == [1.0]  # a copy, not Keras' own list
    assert history.params == {"steps": 3}


def test_as_history_dict_reads_each_kind_and_explains_others():
    """Do a dict, the kit's History and a Keras-like History give their metrics; others a TypeError?"""
    metrics = {"loss": [1.0]}
    assert as_history_dict(metrics) is metrics
    assert as_history_dict(History(metrics)) == metrics
    assert as_history_dict(SimpleNamespace(history=metrics)) is metrics
    with pytest.raises(TypeError, match="got int"):
        as_history_dict(42)


def test_stop_flag_is_seen_across_threads_and_can_be_cleared():
    """Is a stop requested from another thread seen here, and cleared for the next run?"""
    stop = StopFlag()
    assert not stop and not stop.requested
    thread = threading.Thread(target=stop.request)
    thread.start()
    thread.join()
    assert stop and stop.requested
    stop.clear()
    assert not stop.requested


def test_callback_hooks_do_nothing_until_overridden():
    """Can a Callback override one hook and leave the others as no-ops?"""

    class Epochs(Callback):
        def __init__(self):
            self.ended = []

        def on_epoch_end(self, epoch, logs):
            self.ended.append(epoch)

    callback = Epochs()
    callback.on_train_begin({"epochs": 1, "steps": 1})
    callback.on_epoch_begin(0)
    callback.on_batch_end(0, {"loss": 1.0})
    callback.on_epoch_end(0, {"loss": 1.0})
    callback.on_train_end({"stopped": False})
    assert callback.ended == [0]
