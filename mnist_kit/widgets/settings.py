"""What the playground's controls describe: one run's settings, its size, and its cost."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

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

FRAMEWORKS = {"torch": "PyTorch", "keras": "Keras"}
MODELS = {"mlp": "MLP (dense layers)", "cnn": "CNN (convolutions)"}
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")
BATCH_SIZES = tuple(2**k for k in range(3, 11))  # 8 .. 1024
TRAIN_POOL = 48_000  # 60,000 training images minus the 20% held out for validation
VAL_IMAGES = 12_000
TEST_IMAGES = 10_000
CNN_DENSE = 128  # the kit's cnn() default dense layer


@dataclass(frozen=True)
class Settings:
    """Everything one playground run is trained with (a CNN ignores `layers` and `neurons`)."""

    framework: str = "torch"
    model: str = "mlp"
    layers: int = 1
    neurons: int = 128
    filters: int = 32  # CNN: channels of the first convolution; the second has twice as many
    epochs: int = 3
    batch_size: int = 128
    lr: float = 1e-3
    dropout: float = 0.0
    optimizer: str = "adam"
    train_fraction: float = 1.0
    seed: int = 42

    def __post_init__(self) -> None:
        if self.framework not in FRAMEWORKS:
            raise ValueError(
                f"framework must be one of {', '.join(FRAMEWORKS)}, got {self.framework!r}"
            )
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        for name in ("layers", "neurons", "filters", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    @property
    def hidden(self) -> tuple[int, ...]:
        return (int(self.neurons),) * int(self.layers)

    @property
    def channels(self) -> tuple[int, int]:
        return (int(self.filters), 2 * int(self.filters))

    def train_kwargs(self) -> dict:
        """Keyword arguments for `mnist_kit.training.train`."""
        return {
            "epochs": int(self.epochs),
            "batch_size": int(self.batch_size),
            "hidden": self.hidden,
            "channels": self.channels,
            "dropout": float(self.dropout),
            "lr": float(self.lr),
            "optimizer": self.optimizer,
            "seed": int(self.seed),
            "train_fraction": float(self.train_fraction),
        }

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
    """How many images one epoch sees (the same rule as `training.train`)."""
    return max(int(settings.batch_size), int(round(TRAIN_POOL * settings.train_fraction)))


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
