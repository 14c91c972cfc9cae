"""Save a trained model and load it later for prediction, each framework's own way.

    save(model, "mlp.keras")                                     # Keras: the whole model
    save(model, "mlp.pt", architecture={"model": "mlp", "hidden": [128, 64]})   # PyTorch
    model = load("mlp.pt")                                       # rebuilt, weights loaded

Keras writes one `.keras` file (architecture, weights and optimizer state) and
`keras.models.load_model` reads it back (with its `safe_mode`, which refuses code hidden in
the file). PyTorch saves only the weights (`state_dict`); to load them the architecture
must be built again, so the file also stores the recipe of a kit model (`mlp` or `cnn` and
their arguments), or `load(path, build=MyNet)` builds your own. Loading uses
`torch.load(..., weights_only=True)`: only tensors and plain values, never pickled code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mnist_kit.config import MODELS

__all__ = ["save", "load", "framework_of"]

FORMAT = "mnist-kit/torch-state-dict/1"  # what a kit `.pt` file says it holds


def framework_of(model: Any) -> str:
    """'keras' or 'torch' for a model object, without importing a framework it is not."""
    import sys

    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        return "keras"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return "torch"
    raise TypeError(f"expected a Keras model or a PyTorch module, got {type(model).__name__}")


def save(model: Any, path: str | Path, architecture: dict | None = None) -> Path:
    """Write `model` to `path`: `.keras` for Keras, `.pt` for PyTorch (weights + recipe)."""
    path = Path(path)
    framework = framework_of(model)
    wanted = ".keras" if framework == "keras" else ".pt"
    if path.suffix != wanted:
        raise ValueError(f"save a {framework} model as a {wanted} file, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if framework == "keras":
        model.save(path)
        return path
    import torch

    if architecture is not None and architecture.get("model") not in MODELS:
        raise ValueError(f"architecture['model'] must be 'mlp' or 'cnn', got {architecture!r}")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "architecture": architecture, "state_dict": state}, path)
    return path


def load(path: str | Path, build: Callable[[], Any] | None = None) -> Any:
    """The model saved at `path`, ready to predict (PyTorch modules come back in eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path}")
    if path.suffix == ".keras":
        from mnist_kit.device import import_tensorflow

        import_tensorflow()
        import keras

        return keras.models.load_model(path)
    if path.suffix != ".pt":
        raise ValueError(f"expected a .keras or .pt file, got {path.name!r}")
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ValueError(f"{path} was not written by mnist_kit.saving.save")
    model = build() if build is not None else _rebuild(saved.get("architecture"), path)
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def _rebuild(architecture: dict | None, path: Path) -> Any:
    """A kit model built again from its saved recipe."""
    if not architecture:
        raise ValueError(
            f"{path} holds weights without an architecture: pass build=YourModelClass to load()"
        )
    from mnist_kit import torch_models

    recipe = dict(architecture)
    builder = getattr(torch_models, recipe.pop("model"))
    return builder(**{k: tuple(v) if isinstance(v, list) else v for k, v in recipe.items()})
