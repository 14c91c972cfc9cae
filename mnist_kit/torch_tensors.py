"""MNIST arrays as PyTorch tensors on a device, and one model measured on them."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mnist_kit.data import scale_pixels
from mnist_kit.device import torch_device

__all__ = ["EVAL_BATCH", "as_pixels", "as_float", "as_labels", "model_device", "measure"]

EVAL_BATCH = 2048  # large batches for inference: no gradients, so memory is small


def as_pixels(x, device) -> torch.Tensor:
    """Images (N, 28, 28) or (N, 1, 28, 28) as a (N, 1, 28, 28) tensor on `device`.

    uint8 images stay uint8 (a quarter of the memory, and no pass over the whole set before
    training starts); `as_float` scales each batch to [0, 1] as it is used, to exactly the
    values `scale_pixels` gives. Float images must already lie in [0, 1].
    """
    if isinstance(x, torch.Tensor):
        images = x if x.dtype == torch.uint8 else x.float()
    else:
        x = np.asarray(x)
        if x.dtype != np.uint8:
            x = scale_pixels(x)  # checks the range
        elif not x.flags.writeable:
            x = x.copy()  # torch wants a writable array to share
        images = torch.from_numpy(np.ascontiguousarray(x))
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4:
        raise ValueError(
            f"expected images shaped (N, 28, 28) or (N, 1, 28, 28), got {tuple(images.shape)}"
        )
    return images.to(device)


def as_float(batch: torch.Tensor) -> torch.Tensor:
    """A batch from `as_pixels` as float32 in [0, 1]."""
    return batch.float().div_(255.0) if batch.dtype == torch.uint8 else batch


def as_labels(y, device) -> torch.Tensor:
    """Labels 0-9 as an int64 tensor on `device`."""
    if isinstance(y, torch.Tensor):
        return y.long().to(device)
    return torch.from_numpy(np.asarray(y).astype(np.int64)).to(device)


def model_device(model: nn.Module, device) -> torch.device:
    """`device` when given, else the GPU the model is on, else the kit's best device."""
    if device is not None:
        return torch.device(device)
    params = list(model.parameters())
    if params and params[0].device.type != "cpu":
        return params[0].device
    return torch_device()


@torch.no_grad()
def measure(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on tensors from `as_pixels`/`as_labels`."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    for start in range(0, len(images), EVAL_BATCH):
        logits = model(as_float(images[start : start + EVAL_BATCH])).float()
        target = labels[start : start + EVAL_BATCH]
        loss_sum += nn.functional.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(1) == target).sum()
    model.train(was_training)
    n = max(1, len(images))
    return loss_sum.item() / n, correct.item() / n
