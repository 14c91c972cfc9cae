"""The kit's PyTorch reference models: the same layers and parameter counts as the Keras ones."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

__all__ = ["keras_init_", "mlp", "cnn", "count_params"]


def keras_init_(model: nn.Module) -> nn.Module:
    """Initialise like Keras (Glorot-uniform weights, zero biases), in place; returns the model.

    PyTorch's default (Kaiming-uniform with a=sqrt(5)) trains this MLP a little slower;
    using Keras' scheme makes the two frameworks' curves comparable, layer for layer.
    """
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def mlp(hidden: Sequence[int] = (128, 64), dropout: float = 0.0) -> nn.Sequential:
    """Flatten, then Linear + ReLU (+ Dropout) per hidden size, then Linear to 10 logits.

    The default 784-128-64-10 has 109,386 parameters, like the Keras model.
    """
    layers: list[nn.Module] = [nn.Flatten()]
    width = 28 * 28
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, 10))
    return keras_init_(nn.Sequential(*layers))


def cnn(
    channels: Sequence[int] = (32, 64), dense: int = 128, dropout: float = 0.5
) -> nn.Sequential:
    """Conv3x3-ReLU-MaxPool twice, Flatten, Linear(dense)-ReLU, Dropout, Linear to 10 logits.

    The default (32, 64) channels and 128 dense units give 225,034 parameters, like Keras.
    """
    c1, c2 = channels
    # 28 -> conv 26 -> pool 13 -> conv 11 -> pool 5
    return keras_init_(
        nn.Sequential(
            nn.Conv2d(1, c1, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * 5 * 5, dense),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(dense, 10),
        )
    )


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
