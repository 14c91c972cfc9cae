"""Tests of mnist_kit.config: TrainConfig's defaults and checks, and the one registry every list reads."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from mnist_kit import config
from mnist_kit.config import FRAMEWORKS, MODELS, OPTIMIZERS, SettingError, TrainConfig


def test_defaults_are_the_tutorial_recipe():
    """Are the defaults the tutorial's: PyTorch MLP 784-128-64-10, 5 epochs, batch 32, Adam at 1e-3?"""
    c = TrainConfig()
    assert (c.framework, c.model, c.epochs, c.batch_size) == ("torch", "mlp", 5, 32)
    assert c.hidden == (128, 64) and c.channels == (32, 64) and c.dropout is None
    assert (c.lr, c.optimizer, c.seed, c.val_fraction, c.train_fraction) == (
        1e-3,
        "adam",
        42,
        0.2,
        1.0,
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"framework": "jax"}, "unknown framework 'jax'; choose one of torch, keras"),
        ({"model": "rnn"}, "unknown model 'rnn'; choose one of mlp, cnn"),
        (
            {"optimizer": "lion"},
            "unknown optimizer 'lion'; choose one of adam, sgd, rmsprop, adagrad",
        ),
        ({"epochs": 0}, "epochs must be at least 1, got 0"),
        ({"batch_size": -2}, "batch_size must be at least 1, got -2"),
        ({"hidden": (64, 0)}, r"hidden layer sizes must be positive, got \[64, 0\]"),
        ({"channels": (32,)}, r"channels must be two positive numbers, e.g. 32,64, got \[32\]"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"lr": 0.0}, "lr must be greater than 0, got 0.0"),
        ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\), got 1.0"),
        ({"train_fraction": 0.0}, r"train_fraction must be in \(0, 1\], got 0.0"),
    ],
)
def test_each_bad_setting_is_a_value_error_naming_it(changes, message):
    """Does every out-of-range or unknown setting raise a ValueError saying which and why?"""
    with pytest.raises(ValueError, match=f"^{message}$"):
        TrainConfig(**changes)


def test_range_errors_say_which_setting_for_the_command_line():
    """Does a range error carry the setting's name and the problem apart (the CLI names its flag)?"""
    with pytest.raises(SettingError) as info:
        TrainConfig(train_fraction=1.5)
    assert (info.value.name, info.value.problem) == ("train_fraction", "must be in (0, 1], got 1.5")


def test_values_are_normalised_and_frozen():
    """Are "Adam" and lists accepted as "adam" and tuples, and is a made config unchangeable?"""
    c = TrainConfig(optimizer="Adam", hidden=[256, 128], channels=[16, 32])
    assert (c.optimizer, c.hidden, c.channels) == ("adam", (256, 128), (16, 32))
    with pytest.raises(FrozenInstanceError):
        c.epochs = 0
    assert TrainConfig(hidden=()).hidden == ()  # no hidden layer: softmax regression


def test_train_images_never_fall_below_one_batch():
    """Is the share of training images rounded, and never fewer than one batch?"""
    assert TrainConfig(train_fraction=0.25).train_images(48_000) == 12_000
    assert TrainConfig(train_fraction=0.001, batch_size=128).train_images(48_000) == 128


def test_build_model_uses_each_models_own_dropout_unless_given():
    """Does build_model pass MLP dropout 0 and CNN dropout 0.5 by default, and a given rate to both?"""
    calls = []

    class Backend:
        def mlp(self, **kwargs):
            calls.append(("mlp", kwargs))

        def cnn(self, **kwargs):
            calls.append(("cnn", kwargs))

    TrainConfig().build_model(Backend())
    TrainConfig(model="cnn").build_model(Backend())
    TrainConfig(model="cnn", dropout=0.0, channels=(8, 16)).build_model(Backend())
    assert calls == [
        ("mlp", {"hidden": (128, 64), "dropout": 0.0}),
        ("cnn", {"channels": (32, 64), "dropout": 0.5}),
        ("cnn", {"channels": (8, 16), "dropout": 0.0}),
    ]


def test_every_list_of_choices_reads_the_registry():
    """Do the CLI, the playground's dropdowns and the plots offer exactly the registry's names?"""
    from mnist_kit.cli import build_parser
    from mnist_kit.plots.history import OPTIMIZERS as COMPARED
    from mnist_kit.widgets import settings

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    choices = {action.dest: action.choices for action in train._actions if action.choices}
    assert choices == {
        "framework": list(FRAMEWORKS),
        "model": list(MODELS),
        "optimizer": list(OPTIMIZERS),
    }
    assert (settings.FRAMEWORKS, settings.MODELS, settings.OPTIMIZERS) == (
        FRAMEWORKS,
        MODELS,
        OPTIMIZERS,
    )
    assert sorted(COMPARED) == sorted(OPTIMIZERS) and COMPARED[0] == "sgd"


def test_both_kits_offer_the_registry_optimizers():
    """Does each framework map every registry name to its optimizer class of that name?"""
    from mnist_kit import keras_kit, torch_kit

    for kit in (torch_kit, keras_kit):
        assert {name: cls.__name__ for name, cls in kit.OPTIMIZERS.items()} == OPTIMIZERS


def test_load_backend_imports_the_kit_or_names_the_choices():
    """Does load_backend give torch_kit for "torch" and a clear error for anything else?"""
    from mnist_kit import torch_kit

    assert config.load_backend("torch") is torch_kit
    with pytest.raises(ValueError, match="unknown framework 'tf'; choose one of torch, keras"):
        config.load_backend("tf")
