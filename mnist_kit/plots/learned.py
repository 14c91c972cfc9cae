"""What the network learned: first-layer Dense weights, first conv filters, and feature maps.

Each function takes a Keras model or a PyTorch `nn.Module`; the framework is recognised
from the model itself, and only a framework that is already loaded is ever touched.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mnist_kit.plots._common import as_image, grid_shape, new_figure, show_digit

__all__ = ["plot_dense_weights", "plot_conv_filters", "plot_feature_maps", "framework_of"]

PIXELS = 28 * 28


def framework_of(model: Any) -> str:
    """ "torch" or "keras", judged from the model object; ValueError for anything else."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return "torch"
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        return "keras"
    raise ValueError(
        f"expected a PyTorch nn.Module or a Keras model, got {type(model).__module__}."
        f"{type(model).__name__}"
    )


def _torch_layers(model: Any, kind: str) -> list:
    import torch.nn as nn

    wanted = nn.Linear if kind == "dense" else nn.Conv2d
    return [m for m in model.modules() if isinstance(m, wanted)]


def _keras_layers(model: Any, kind: str) -> list:
    import keras

    wanted = keras.layers.Dense if kind == "dense" else keras.layers.Conv2D
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # a nested model: look inside it, in order
            found += _keras_layers(layer, kind)
        elif isinstance(layer, wanted):
            found.append(layer)
    return found


def first_dense_weights(model: Any) -> np.ndarray:
    """Weights of the first Dense/Linear layer reading the 784 pixels, as `(units, 28, 28)`."""
    if framework_of(model) == "torch":
        for layer in _torch_layers(model, "dense"):
            if layer.in_features == PIXELS:
                return layer.weight.detach().cpu().numpy().reshape(-1, 28, 28)
    else:
        for layer in _keras_layers(model, "dense"):
            kernel = np.asarray(layer.get_weights()[0])  # (inputs, units)
            if kernel.shape[0] == PIXELS:
                return kernel.T.reshape(-1, 28, 28)
    raise ValueError(
        "the model has no Dense/Linear layer that reads the 784 flattened pixels; "
        "plot_dense_weights shows the first layer of an MLP (mlp()). For a CNN use plot_conv_filters."
    )


def _first_conv(model: Any, framework: str) -> Any:
    layers = _torch_layers(model, "conv") if framework == "torch" else _keras_layers(model, "conv")
    if not layers:
        raise ValueError(
            "the model has no Conv2d/Conv2D layer; plot_conv_filters and plot_feature_maps need a "
            "CNN (cnn()). For an MLP use plot_dense_weights."
        )
    return layers[0]


def first_conv_filters(model: Any) -> np.ndarray:
    """Kernels of the first convolution as `(filters, in_channels, height, width)`."""
    framework = framework_of(model)
    layer = _first_conv(model, framework)
    if framework == "torch":
        return layer.weight.detach().cpu().numpy()
    return np.transpose(np.asarray(layer.get_weights()[0]), (3, 2, 0, 1))  # from (h, w, in, out)


def _torch_feature_maps(model: Any, image: np.ndarray) -> np.ndarray:
    import torch
    import torch.nn as nn

    conv = _first_conv(model, "torch")
    modules = list(model.modules())
    after = modules[modules.index(conv) + 1] if modules.index(conv) + 1 < len(modules) else None
    captured = {}

    def keep(_module, _inputs, output):
        captured["maps"] = output.detach().cpu().clone()

    param = next(model.parameters())
    x = torch.as_tensor(image, dtype=torch.float32, device=param.device).reshape(1, 1, 28, 28)
    handle = conv.register_forward_hook(keep)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
        model.train(was_training)
    maps = captured["maps"]
    if isinstance(after, nn.ReLU):  # show what the next layer sees
        maps = maps.clamp(min=0)
    return maps[0].numpy()


def _keras_feature_maps(model: Any, image: np.ndarray) -> np.ndarray:
    import keras

    conv = _first_conv(model, "keras")
    output = conv.output
    layers = list(model.layers)
    position = layers.index(conv) if conv in layers else len(layers)
    nxt = layers[position + 1] if position + 1 < len(layers) else None
    if isinstance(nxt, keras.layers.ReLU | keras.layers.Activation):
        output = nxt.output
    probe = keras.Model(inputs=model.inputs[0], outputs=output)
    shape = (1, *model.inputs[0].shape[1:])
    maps = np.asarray(probe(image.reshape(shape).astype("float32"), training=False))
    return np.moveaxis(maps[0], -1, 0)  # (filters, h, w)


def feature_maps(model: Any, image: Any) -> np.ndarray:
    """The first convolution's output (after its ReLU) for one digit, as `(filters, h, w)`."""
    img = np.asarray(as_image(image), dtype=np.float32)
    if img.max() > 1.0:
        img = img / 255.0  # the reference models are trained on pixels scaled to [0, 1]
    if framework_of(model) == "torch":
        return _torch_feature_maps(model, img)
    return _keras_feature_maps(model, img)


def _panel_grid(
    fig: Figure, images: np.ndarray, cols: int, title: str, first: int = 0, **imshow
) -> list:
    rows, cols = grid_shape(len(images) + first, cols)
    axes = []
    for i, picture in enumerate(images):
        ax = fig.add_subplot(rows, cols, first + i + 1)
        ax.imshow(picture, interpolation="nearest", **imshow)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{title} {i}", fontsize=8)
        axes.append(ax)
    return axes


def _limit(n: int | None, available: int) -> int:
    if n is not None and n < 1:
        raise ValueError(f"n must be at least 1 (or None for all), got {n}")
    return available if n is None else min(n, available)


def plot_dense_weights(model: Any, n: int | None = 32, cols: int = 8) -> Figure:
    """The first Dense/Linear layer's weights, one 28x28 image per unit (red positive, blue negative)."""
    weights = first_dense_weights(model)
    n = _limit(n, len(weights))
    rows, cols = grid_shape(n, cols)
    fig = new_figure(1.3 * cols, 1.4 * rows + 0.5)
    axes = _panel_grid(fig, weights[:n], cols, "unit", cmap="RdBu_r")
    for w, ax in zip(weights[:n], axes, strict=True):
        bound = float(np.abs(w).max()) or 1.0  # each unit on its own symmetric scale
        ax.images[0].set_clim(-bound, bound)
    fig.suptitle(
        f"First Dense layer: {n} of {len(weights)} units, each unit's 784 weights as 28×28 "
        "(red adds, blue subtracts)"
    )
    return fig


def plot_conv_filters(model: Any, n: int | None = 32, cols: int = 8) -> Figure:
    """The first convolution's kernels (input channel 0), all on one shared colour scale."""
    kernels = first_conv_filters(model)
    n = _limit(n, len(kernels))
    shown = kernels[:n, 0]
    bound = float(np.abs(shown).max()) or 1.0
    rows, cols = grid_shape(n, cols)
    fig = new_figure(1.2 * cols, 1.3 * rows + 0.5)
    _panel_grid(fig, shown, cols, "filter", cmap="RdBu_r", vmin=-bound, vmax=bound)
    h, w = kernels.shape[2:]
    fig.suptitle(f"First conv layer: {n} of {len(kernels)} filters, {h}×{w} (red +, blue −)")
    return fig


def plot_feature_maps(model: Any, image: Any, n: int | None = 32, cols: int = 8) -> Figure:
    """The input digit, then the first convolution's feature maps for it (bright = strong response).

    Each map has its own colour scale, so a weak but patterned response stays visible; the
    map's strongest value is in its title.
    """
    maps = feature_maps(model, image)
    n = _limit(n, len(maps))
    rows, cols = grid_shape(n, cols)
    fig = new_figure(1.2 * (cols + 1), 1.3 * rows + 0.5)
    grid = fig.add_gridspec(rows, cols + 1)
    ax = fig.add_subplot(grid[0, 0])
    show_digit(ax, as_image(image))
    ax.set_title("input", fontsize=8)
    for i in range(n):
        r, c = divmod(i, cols)
        ax = fig.add_subplot(grid[r, c + 1])
        ax.imshow(maps[i], cmap="viridis", vmin=0, vmax=float(maps[i].max()) or 1.0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"map {i} (max {maps[i].max():.2f})", fontsize=7)
    h, w = maps.shape[1:]
    fig.suptitle(f"First conv layer's feature maps after ReLU: {n} of {len(maps)}, {h}×{w} each")
    return fig
