"""PyTorch side of the kit: reference models and a Keras-like `fit`/`evaluate`/`predict`.

Introduced in course/06-pytorch.ipynb. The names match `mnist_kit.keras_kit`, and `fit`
returns the same `History`. Data stay in memory as one uint8 tensor on the device and are
batched from shuffled chunks, with no per-sample Python work (no Dataset or DataLoader):
an MLP epoch at batch 32 costs little more than the bare forward/backward/step calls, about
3.7x faster than the tutorial loop on a 2-core CPU (bench/bench_training.py).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from mnist_kit.data import scale_pixels
from mnist_kit.device import torch_device
from mnist_kit.training import Callback, History, StopFlag

__all__ = [
    "mlp",
    "cnn",
    "keras_init_",
    "fit",
    "evaluate",
    "predict",
    "count_params",
    "device_name",
    "release",
]

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}
SMALL_STEP_WORK = 20_000_000  # parameters x batch size below which one CPU thread is fastest
CHUNK_ROWS = 2048  # training images gathered from the shuffled set at a time
EVAL_BATCH = 2048  # large batches for inference: no gradients, so memory is small


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


def device_name(model: nn.Module | None = None) -> str:
    """The device a model lives on (or the one the kit would pick)."""
    if model is not None:
        for param in model.parameters():
            return str(param.device)
    return str(torch_device())


def _as_pixels(x, device) -> torch.Tensor:
    """Images (N, 28, 28) or (N, 1, 28, 28) as a (N, 1, 28, 28) tensor on `device`.

    uint8 images stay uint8 (a quarter of the memory, and no pass over the whole set before
    training starts); `_as_float` scales each batch to [0, 1] as it is used, to exactly the
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


def _as_float(batch: torch.Tensor) -> torch.Tensor:
    """A batch from `_as_pixels` as float32 in [0, 1]."""
    return batch.float().div_(255.0) if batch.dtype == torch.uint8 else batch


def _as_labels(y, device) -> torch.Tensor:
    if isinstance(y, torch.Tensor):
        return y.long().to(device)
    return torch.from_numpy(np.asarray(y).astype(np.int64)).to(device)


def _model_device(model: nn.Module, device) -> torch.device:
    if device is not None:
        return torch.device(device)
    params = list(model.parameters())
    if params and params[0].device.type != "cpu":
        return params[0].device
    return torch_device()


def _autocast(device: torch.device, amp: bool):
    """bfloat16/float16 autocast on CUDA when asked; a no-op context elsewhere."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


@torch.no_grad()
def _measure(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    for start in range(0, len(images), EVAL_BATCH):
        logits = model(_as_float(images[start : start + EVAL_BATCH])).float()
        target = labels[start : start + EVAL_BATCH]
        loss_sum += nn.functional.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(1) == target).sum()
    model.train(was_training)
    n = max(1, len(images))
    return loss_sum.item() / n, correct.item() / n


def fit(
    model: nn.Module,
    x,
    y,
    *,
    epochs: int = 5,
    batch_size: int = 32,
    validation_data: tuple | None = None,
    lr: float = 1e-3,
    optimizer: str | torch.optim.Optimizer = "adam",
    callbacks: Sequence[Callback] = (),
    stop: StopFlag | None = None,
    verbose: int = 1,
    shuffle: bool = True,
    device=None,
    amp: bool = False,
    scheduler: str | None = None,
    seed: int | None = None,
    threads: int | None = None,
) -> History:
    """Train `model` on in-memory images with cross-entropy and return a Keras-shaped History.

    Args:
        model: a module returning 10 logits per image.
        x, y: images (N, 28, 28) uint8 or float in [0, 1], as numpy arrays or tensors; labels 0-9.
        validation_data: `(x_val, y_val)` measured after every epoch ("val_loss", "val_accuracy").
        optimizer: "adam", "sgd", "rmsprop", "adagrad", or an optimizer you built.
        callbacks: `mnist_kit.training.Callback`s (live curves, progress widgets).
        stop: a `StopFlag`; training ends after the batch during which it was requested.
        verbose: 1 shows a tqdm bar per epoch (a widget in notebooks), 0 is silent.
        amp: mixed precision, used only on CUDA GPUs.
        scheduler: "onecycle" for a one-cycle learning-rate schedule peaking at `lr`, else constant.
        threads: CPU threads to use. By default all cores for convolutions; for small dense
            steps the first steps are timed with 1, 2 and all cores and the fastest is kept
            (`ThreadTuner`; on a busy machine one thread wins, on an idle one often two).
        seed: seeds the shuffling when given; otherwise it follows torch's global seed.

    Raises:
        ValueError: mismatched lengths, an unknown optimizer, or bad epochs/batch size.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels; they must match")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be at least 1, got {epochs} and {batch_size}")
    device = _model_device(model, device)
    model.to(device)
    images, labels = _as_pixels(x, device), _as_labels(y, device)
    val = None
    if validation_data is not None:
        val = (_as_pixels(validation_data[0], device), _as_labels(validation_data[1], device))
    if isinstance(optimizer, str):
        if optimizer.lower() not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
            )
        opt = _make_optimizer(optimizer.lower(), model, lr)
    else:
        opt = optimizer
    steps = (len(images) + batch_size - 1) // batch_size
    sched = None
    if scheduler == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps)
    # Shuffling follows torch's global seed (so seed_everything makes runs repeat) unless `seed` is given.
    generator = None
    if shuffle:
        generator = torch.Generator(device="cpu")
        generator.manual_seed(
            seed if seed is not None else int(torch.randint(0, 2**62, (1,)).item())
        )
    previous_threads = torch.get_num_threads()
    tuner = None
    if device.type == "cpu":
        choices = [threads] if threads else _thread_choices(model, batch_size, previous_threads)
        tuner = ThreadTuner(choices)
    try:
        return _fit_loop(
            model, images, labels, val, opt, sched, generator, epochs, batch_size, callbacks,
            stop, verbose, amp, tuner,
        )  # fmt: skip
    finally:
        torch.set_num_threads(previous_threads)


def _make_optimizer(name: str, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Build a named optimizer, fused into one kernel where PyTorch offers it (about 2x faster steps)."""
    cls = OPTIMIZERS[name]
    if name in ("adam", "sgd", "adagrad"):
        try:
            return cls(model.parameters(), lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass  # older PyTorch, or a device without a fused kernel
    return cls(model.parameters(), lr=lr)


def _thread_choices(model: nn.Module, batch_size: int, available: int) -> list[int]:
    """Thread counts worth trying: all cores for big steps; for small ones, 1, 2 and all.

    Splitting a small step (this MLP at batch 32) over threads saves little compute and costs
    hand-offs; whether it pays depends on how busy the machine is, so `ThreadTuner` measures.
    """
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    if has_conv or count_params(model) * batch_size > SMALL_STEP_WORK:
        return [available]
    return sorted({1, min(2, available), available})


def _idle_cores() -> int:
    """Cores this process may use that other work is not already taking (1-minute load average).

    Counts this process itself as running: on an idle 2-core machine training here, the load
    is about 1 and both cores count as ours. Where the load is unknown (Windows), all cores.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    return max(1, min(cores, int(cores - load + 1.5)))


class ThreadTuner:
    """Picks the CPU thread count by timing real training steps with each candidate.

    No count is tried that needs more cores than the load average leaves idle (`_idle_cores`).
    The others take turns in blocks of `block` steps for up to `rounds` rounds (so a burst of
    other work on the machine hits each alike); the first step of a block pays for the switch
    and is not counted. A candidate 1.5x slower than the best after a round drops out at once
    (when the cores are busy, extra threads stall every step), and more threads must be at
    least 10% faster to win. The choice is measured again after `retune_every` steps, then
    after twice as many each time it stands, as the machine's load changes. No step is
    wasted: every one trains the model.
    """

    def __init__(
        self, candidates: Sequence[int], block: int = 8, rounds: int = 3, retune_every: int = 500
    ):
        self.all = sorted(set(candidates))
        self.block, self.rounds, self.retune_every = block, rounds, retune_every
        self.chosen: int | None = None
        self.history: list[int] = []  # every choice made, in order
        self._start_tuning()

    def _start_tuning(self) -> None:
        free = _idle_cores()
        self.active = [c for c in self.all if c <= free] or self.all[:1]
        self.times: dict[int, list[float]] = {c: [] for c in self.all}
        self._turn, self._within, self._round = 0, 0, 0
        self._tuning = len(self.active) > 1
        self._until_retune = self.retune_every
        torch.set_num_threads(self.active[0])
        if not self._tuning:
            self._choose(self.active[0])

    def _choose(self, count: int) -> None:
        if self.chosen is not None:
            same = count == self.chosen
            self.retune_every = self.retune_every * 2 if same else self.retune_every
        self.chosen = count
        self.history.append(count)
        torch.set_num_threads(count)
        self._tuning = False
        self._until_retune = self.retune_every

    def before_step(self) -> None:
        self._started = time.perf_counter()

    def after_step(self) -> None:
        if not self._tuning:
            if len(self.all) > 1:
                self._until_retune -= 1
                if self._until_retune <= 0:
                    self._start_tuning()
            return
        if self._within:  # the block's first step paid for the switch
            self.times[self.active[self._turn]].append(time.perf_counter() - self._started)
        self._within += 1
        if self._within < self.block:
            return
        self._within, self._turn = 0, self._turn + 1
        if self._turn == len(self.active):  # a round is complete
            self._turn, self._round = 0, self._round + 1
            means = {c: float(np.mean(self.times[c])) for c in self.active}
            fastest = min(means.values())
            self.active = [c for c in self.active if means[c] <= 1.5 * fastest]
            if self._round == self.rounds or len(self.active) == 1:
                best = self.active[0]
                for count in self.active[1:]:
                    if means[count] < 0.9 * means[best]:
                        best = count
                self._choose(best)
                return
        torch.set_num_threads(self.active[self._turn])


class _RunningStats:
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


def _fit_loop(
    model, images, labels, val, opt, sched, generator, epochs, batch_size, callbacks, stop,
    verbose, amp, tuner,
) -> History:  # fmt: skip
    """The training loop proper (see `fit`); `generator` None means no shuffling."""
    from tqdm.auto import tqdm

    n, device = len(images), images.device
    steps = (n + batch_size - 1) // batch_size
    history = History(params={"epochs": epochs, "steps": steps, "batch_size": batch_size})
    for cb in callbacks:
        cb.on_train_begin({"epochs": epochs, "steps": steps})
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        for cb in callbacks:
            cb.on_epoch_begin(epoch)
        model.train()
        order = torch.arange(n) if generator is None else torch.randperm(n, generator=generator)
        order = order.to(device)
        stats = _RunningStats()
        bar = tqdm(total=steps, desc=f"Epoch {epoch + 1}/{epochs}", disable=not verbose, leave=True)
        last_bar = time.monotonic()
        stopped = False
        # Batches are cut from chunks of about CHUNK_ROWS shuffled images, gathered and scaled
        # in one go: one indexing call per chunk instead of one per batch.
        chunk_rows = max(batch_size, CHUNK_ROWS // batch_size * batch_size)
        for step in range(steps):
            offset = step * batch_size % chunk_rows
            if offset == 0:
                index = order[step * batch_size : step * batch_size + chunk_rows]
                chunk_x, chunk_y = _as_float(images[index]), labels[index]
            if tuner is not None:
                tuner.before_step()
            xb, yb = chunk_x[offset : offset + batch_size], chunk_y[offset : offset + batch_size]
            with _autocast(device, amp):
                logits = model(xb)
                loss = loss_fn(logits.float() if amp else logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if tuner is not None:
                tuner.after_step()
            stats.add(loss, logits, yb)
            now = time.monotonic()
            if callbacks or (verbose and now - last_bar > 0.1):
                running = stats.means()
                for cb in callbacks:
                    cb.on_batch_end(step, running)
                if verbose:
                    bar.update(step + 1 - bar.n)
                    bar.set_postfix(
                        loss=f"{running['loss']:.4f}",
                        acc=f"{running['accuracy']:.4f}",
                        refresh=False,
                    )
                    last_bar = now
            if stop is not None and stop.requested:
                stopped = True
                break
        logs = stats.means()
        seen = stats.seen
        if val is not None:
            logs["val_loss"], logs["val_accuracy"] = _measure(model, *val)
        if verbose:
            bar.update((step + 1 if stopped else steps) - bar.n)
            bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
            bar.close()
        history.stopped_early = stopped
        if seen:
            history.append(logs)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
        if stopped:
            break
    model.eval()
    if tuner is not None:
        history.params["threads"] = tuner.chosen or torch.get_num_threads()
    for cb in callbacks:
        cb.on_train_end({"stopped": history.stopped_early})
    return history


def evaluate(model: nn.Module, x, y, device=None) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of `model` on (x, y)."""
    device = _model_device(model, device)
    model.to(device)
    return _measure(model, _as_pixels(x, device), _as_labels(y, device))


@torch.no_grad()
def predict(model: nn.Module, x, device=None) -> np.ndarray:
    """Class probabilities (N, 10) as a numpy array (softmax of the model's logits)."""
    device = _model_device(model, device)
    model.to(device)
    images = _as_pixels(x, device)
    was_training = model.training
    model.eval()
    parts = [
        torch.softmax(model(_as_float(images[i : i + EVAL_BATCH])).float(), dim=1).cpu()
        for i in range(0, len(images), EVAL_BATCH)
    ]
    model.train(was_training)
    return torch.cat(parts).numpy() if parts else np.zeros((0, 10), np.float32)


def release(model: nn.Module | None = None) -> None:
    """Free a model's memory (and cached GPU blocks); drop your own references to it too."""
    import gc

    if model is not None:
        model.to("cpu")
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
