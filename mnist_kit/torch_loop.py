"""The PyTorch training loop behind `torch_kit.fit`, and how mixed precision is chosen per device."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mnist_kit.history import Callback, History, StopFlag
from mnist_kit.torch_tensors import as_float, measure
from mnist_kit.torch_threads import ThreadTuner

__all__ = ["FitRun", "choose_amp", "fit_loop", "CHUNK_ROWS"]

CHUNK_ROWS = 2048  # training images gathered from the shuffled set at a time


def choose_amp(device: torch.device) -> tuple[torch.dtype | None, bool]:
    """The autocast dtype for mixed precision on `device` (None: none), and whether a GradScaler is needed.

    bfloat16 keeps float32's range, so its gradients need no scaling: used on CUDA GPUs that
    support it and on the CPU. Older GPUs get float16, whose small gradients underflow to zero
    unless the loss is scaled up first (`torch.amp.GradScaler`). Other devices train in float32.
    """
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, False
        return torch.float16, True
    if device.type == "cpu":
        return torch.bfloat16, False
    return None, False


@dataclass
class FitRun:
    """One `fit` call, prepared: the data on the device, how to step, and who is listening."""

    model: nn.Module
    images: torch.Tensor  # (N, 1, 28, 28) from `as_pixels`, on the training device
    labels: torch.Tensor
    val: tuple[torch.Tensor, torch.Tensor] | None  # measured after every epoch
    optimizer: torch.optim.Optimizer
    epochs: int
    batch_size: int
    scheduler: Any = None  # stepped after every batch
    generator: torch.Generator | None = None  # shuffles each epoch; None keeps the order
    amp_dtype: torch.dtype | None = None  # autocast to this (see `choose_amp`); None: float32
    scaler: torch.amp.GradScaler | None = None  # with float16 only
    tuner: ThreadTuner | None = None  # picks the CPU thread count; None on GPUs
    callbacks: Sequence[Callback] = ()
    stop: StopFlag | None = None
    verbose: int = 1  # 1: a tqdm bar per epoch

    @property
    def steps(self) -> int:
        return (len(self.images) + self.batch_size - 1) // self.batch_size


class RunningStats:
    """An epoch's training loss and accuracy so far, added up lazily.

    Each step only keeps its loss and predicted classes (two cheap tensor operations instead
    of six); they are summed when someone asks, and at least every `every` steps so the lists
    stay short.
    """

    def __init__(self, every: int = 256):
        self.every = every
        self.losses: list[torch.Tensor] = []
        self.predicted: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        self.losses.append(loss.detach())
        self.predicted.append(logits.detach().argmax(1))
        self.targets.append(targets)
        if len(self.losses) >= self.every:
            self._sum()

    def _sum(self) -> None:
        if not self.losses:
            return
        sizes = [len(t) for t in self.targets]
        losses = torch.stack(self.losses).double().cpu()
        self.loss_sum += float((losses * torch.tensor(sizes, dtype=torch.float64)).sum())
        self.correct += int((torch.cat(self.predicted) == torch.cat(self.targets)).sum())
        self.seen += sum(sizes)
        self.losses, self.predicted, self.targets = [], [], []

    def means(self) -> dict[str, float]:
        self._sum()
        seen = max(1, self.seen)
        return {"loss": self.loss_sum / seen, "accuracy": self.correct / seen}


def _step(run: FitRun, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, loss, backward and optimizer step on one batch; returns the logits and the loss."""
    if run.tuner is not None:
        run.tuner.before_step()
    autocast = (
        contextlib.nullcontext()
        if run.amp_dtype is None
        else torch.autocast(run.images.device.type, dtype=run.amp_dtype)
    )
    with autocast:
        logits = run.model(xb)
        loss = nn.functional.cross_entropy(logits if run.amp_dtype is None else logits.float(), yb)
    run.optimizer.zero_grad(set_to_none=True)
    if run.scaler is None:
        loss.backward()
        run.optimizer.step()
    else:
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
    if run.scheduler is not None:
        run.scheduler.step()
    if run.tuner is not None:
        run.tuner.after_step()
    return logits, loss


def _train_epoch(run: FitRun, epoch: int) -> tuple[dict[str, float], int, bool]:
    """One pass over the shuffled images: the epoch's logs, the images it saw, whether it was stopped."""
    from tqdm.auto import tqdm

    n, bs, steps = len(run.images), run.batch_size, run.steps
    run.model.train()
    order = torch.arange(n) if run.generator is None else torch.randperm(n, generator=run.generator)
    order = order.to(run.images.device)
    stats = RunningStats()
    bar = tqdm(total=steps, desc=f"Epoch {epoch + 1}/{run.epochs}", disable=not run.verbose)
    last_bar, stopped = time.monotonic(), False
    # Batches are cut from chunks of about CHUNK_ROWS shuffled images, gathered and scaled
    # in one go: one indexing call per chunk instead of one per batch.
    chunk_rows = max(bs, CHUNK_ROWS // bs * bs)
    for step in range(steps):
        offset = step * bs % chunk_rows
        if offset == 0:
            index = order[step * bs : step * bs + chunk_rows]
            chunk_x, chunk_y = as_float(run.images[index]), run.labels[index]
        yb = chunk_y[offset : offset + bs]
        logits, loss = _step(run, chunk_x[offset : offset + bs], yb)
        stats.add(loss, logits, yb)
        now = time.monotonic()
        if run.callbacks or (run.verbose and now - last_bar > 0.1):
            running = stats.means()
            for cb in run.callbacks:
                cb.on_batch_end(step, running)
            if run.verbose:
                bar.update(step + 1 - bar.n)
                bar.set_postfix(
                    loss=f"{running['loss']:.4f}", acc=f"{running['accuracy']:.4f}", refresh=False
                )
                last_bar = now
        if run.stop is not None and run.stop.requested:
            stopped = True
            break
    logs = stats.means()
    if run.val is not None:
        logs["val_loss"], logs["val_accuracy"] = measure(run.model, *run.val)
    if run.verbose:
        bar.update((step + 1 if stopped else steps) - bar.n)
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
        bar.close()
    return logs, stats.seen, stopped


def fit_loop(run: FitRun) -> History:
    """Train for `run.epochs`, or until a stop is requested; return the Keras-shaped History."""
    steps = run.steps
    history = History(params={"epochs": run.epochs, "steps": steps, "batch_size": run.batch_size})
    for cb in run.callbacks:
        cb.on_train_begin({"epochs": run.epochs, "steps": steps})
    for epoch in range(run.epochs):
        for cb in run.callbacks:
            cb.on_epoch_begin(epoch)
        logs, seen, stopped = _train_epoch(run, epoch)
        history.stopped_early = stopped
        if seen:
            history.append(logs)
            for cb in run.callbacks:
                cb.on_epoch_end(epoch, logs)
        if stopped:
            break
    run.model.eval()
    if run.tuner is not None:
        history.params["threads"] = run.tuner.chosen or torch.get_num_threads()
    for cb in run.callbacks:
        cb.on_train_end({"stopped": history.stopped_early})
    return history
