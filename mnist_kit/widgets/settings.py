"""What the playground's controls describe: one run's settings, its size, and its cost."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from mnist_kit.config import FRAMEWORKS, MODELS, OPTIMIZERS, TrainConfig, at_least_one

__all__ = [
    "Settings",
    "FRAMEWORKS",
    "MODELS",
    "OPTIMIZERS",
    "BATCH_SIZES",
    "count_params",
    "train_images",
    "steps_per_epoch",
    "estimate_seconds",
    "format_seconds",
]

BATCH_SIZES = tuple(2**k for k in range(3, 11))  # 8 .. 1024
VAL_IMAGES = round(60_000 * TrainConfig.val_fraction)  # held out for validation: 12,000
TRAIN_POOL = 60_000 - VAL_IMAGES  # what is left to train on: 48,000
TEST_IMAGES = 10_000
CNN_DENSE = 128  # the kit's cnn() default dense layer


@dataclass(frozen=True)
class Settings:
    """Everything one playground run is trained with (a CNN ignores `layers` and `neurons`).

    The sliders' starting values; the ranges are checked by the `TrainConfig` it builds.
    """

    framework: str = "torch"
    model: str = "mlp"
    layers: int = 1  # one hidden layer: the simplest MLP worth watching
    neurons: int = 128
    filters: int = 32  # CNN: channels of the first convolution; the second has twice as many
    epochs: int = 3  # a first run that ends within a minute on a laptop
    batch_size: int = 128  # large enough for quick epochs, small enough to learn in 3
    lr: float = 1e-3
    dropout: float = 0.0
    optimizer: str = "adam"
    train_fraction: float = 1.0
    seed: int = 42

    def __post_init__(self) -> None:
        for name in ("layers", "neurons", "filters"):
            at_least_one(name, int(getattr(self, name)))
        self.train_config()  # checks every other setting

    @property
    def hidden(self) -> tuple[int, ...]:
        return (int(self.neurons),) * int(self.layers)

    @property
    def channels(self) -> tuple[int, int]:
        return (int(self.filters), 2 * int(self.filters))

    def train_config(self) -> TrainConfig:
        """The run these settings describe, as the `TrainConfig` that `training.train` takes."""
        return TrainConfig(
            framework=self.framework,
            model=self.model,
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            hidden=self.hidden,
            channels=self.channels,
            dropout=float(self.dropout),
            lr=float(self.lr),
            optimizer=self.optimizer,
            seed=int(self.seed),
            train_fraction=float(self.train_fraction),
        )

    def train_kwargs(self) -> dict:
        """Keyword arguments for `mnist_kit.training.train` (every setting but framework and model)."""
        fields = asdict(self.train_config())
        return {k: v for k, v in fields.items() if k not in ("framework", "model", "val_fraction")}

    def describe(self) -> str:
        """A short name for legends and tables, e.g. "MLP 2x128" or "CNN 32-64"."""
        if self.model == "mlp":
            return f"MLP {self.layers}x{self.neurons}"
        return f"CNN {self.filters}-{2 * self.filters}"

    def as_dict(self) -> dict:
        return asdict(self)

    def with_(self, **changes) -> Settings:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def count_params(settings: Settings) -> int:
    """Trainable parameters of the kit's mlp()/cnn() with these settings, counted without a framework."""
    if settings.model == "mlp":
        total, width = 0, 28 * 28
        for size in settings.hidden:
            total += width * size + size
            width = size
        return total + width * 10 + 10
    c1, c2 = settings.channels
    # 3x3 valid convolutions and 2x2 pooling: 28 -> 26 -> 13 -> 11 -> 5
    conv = (9 * 1 + 1) * c1 + (9 * c1 + 1) * c2
    dense = 5 * 5 * c2 * CNN_DENSE + CNN_DENSE
    return conv + dense + CNN_DENSE * 10 + 10


def train_images(settings: Settings) -> int:
    """How many images one epoch sees (the rule `training.train` follows)."""
    return settings.train_config().train_images(TRAIN_POOL)


def steps_per_epoch(settings: Settings) -> int:
    return math.ceil(train_images(settings) / settings.batch_size)


def estimate_seconds(
    settings: Settings, step_seconds: float, eval_seconds_per_image: float
) -> float:
    """Training time from measured costs: every step, a validation pass per epoch, two test passes."""
    if step_seconds < 0 or eval_seconds_per_image < 0:
        raise ValueError("measured times cannot be negative")
    steps = steps_per_epoch(settings) * settings.epochs
    evaluated = settings.epochs * VAL_IMAGES + 2 * TEST_IMAGES  # test: accuracy, then predictions
    return steps * step_seconds + evaluated * eval_seconds_per_image


def format_seconds(seconds: float) -> str:
    """ "0.8 s", "42 s", "3 min 5 s", "1 h 2 min"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
