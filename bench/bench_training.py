"""Benchmark: the kit's PyTorch `fit` against the usual tutorial loop and against plain Keras.

Prints, measured side by side in one run on this machine:
  1. seconds per MLP epoch (batch 32, 48,000 images): the kit's torch fit vs the tutorial loop
     (torchvision-style per-sample Dataset with ToTensor and Normalize, through DataLoader;
     target: kit >= 5x faster), vs the leanest per-sample Dataset, and vs a floor (bare
     forward/backward/step on pre-cut batches) that bounds what any eager PyTorch loop can do;
  2. the same kit epoch vs plain Keras `model.fit` with the tutorial settings (target >= 3x);
  3. training seconds the kit's PyTorch CNN needs to reach 99.0% test accuracy (target < 60 s; at most 5 epochs).

Run: MNIST_KIT_DATA=../shared/data/mnist python bench/bench_training.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mnist_kit.data import load_mnist, scale_pixels, train_val_split
from mnist_kit.device import import_tensorflow, seed_everything


class _Normalize:
    """What `torchvision.transforms.Normalize((0.1307,), (0.3081,))` does to a 1x28x28 tensor."""

    def __init__(self, mean: float = 0.1307, std: float = 0.3081):
        self.mean, self.std = mean, std

    def __call__(self, image):
        return image.sub(self.mean).div(self.std)


def _pil_to_tensor(picture):
    """What `torchvision.transforms.ToTensor()` does to a greyscale PIL image: float 1xHxW in [0, 1]."""
    import torch

    pixels = torch.from_numpy(np.array(picture, np.uint8, copy=True))
    pixels = pixels.view(picture.size[1], picture.size[0], 1).permute(2, 0, 1).contiguous()
    return pixels.float().div(255)


def tutorial_torch_epoch(
    x: np.ndarray, y: np.ndarray, batch_size: int = 32, style: str = "torchvision"
) -> float:
    """One epoch of the loop PyTorch tutorials write: a per-sample Dataset fed through DataLoader.

    style "torchvision" rebuilds what `datasets.MNIST(transform=Compose([ToTensor(),
    Normalize((0.1307,), (0.3081,))]))` hands out (each image made a PIL image, then the two
    transforms), since torchvision does not import beside torch 2.13.0 here. style "lean" is the
    cheapest per-sample Dataset one could write (numpy slice to tensor, no PIL, no Normalize).
    """
    import torch
    from PIL import Image
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from mnist_kit.torch_kit import mlp

    normalize = _Normalize()

    class MnistDataset(Dataset):
        def __init__(self, images, labels):
            self.images, self.labels = torch.from_numpy(images.copy()), torch.from_numpy(labels)

        def __len__(self):
            return len(self.images)

        def __getitem__(self, i):
            image, label = self.images[i], int(self.labels[i])
            if style == "lean":
                return image.float().div(255).unsqueeze(0), label
            picture = Image.fromarray(image.numpy(), mode="L")
            return normalize(_pil_to_tensor(picture)), label

    loader = DataLoader(MnistDataset(x, y), batch_size=batch_size, shuffle=True)
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    start = time.perf_counter()
    for images, labels in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def bare_torch_epoch(x: np.ndarray, y: np.ndarray, batch_size: int = 32) -> float:
    """The least any eager PyTorch epoch can cost: batches pre-cut, fused Adam, no bookkeeping.

    Forward, loss, backward and optimizer step only, on all cores, with no shuffling, no loss
    or accuracy kept and no progress shown: a floor for the kit's `fit`, not a usable loop.
    """
    import torch
    from torch import nn

    from mnist_kit.torch_kit import mlp

    images = torch.from_numpy(scale_pixels(x).reshape(len(x), -1))
    labels = torch.from_numpy(y.astype(np.int64))
    batches = list(zip(images.split(batch_size), labels.split(batch_size), strict=True))
    model = mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for xb, yb in batches:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(xb), yb).backward()
        optimizer.step()
    return time.perf_counter() - start


def kit_torch_epoch(x: np.ndarray, y: np.ndarray, batch_size: int = 32) -> float:
    from mnist_kit import torch_kit

    model = torch_kit.mlp()
    start = time.perf_counter()
    torch_kit.fit(model, x, y, epochs=1, batch_size=batch_size, verbose=0)
    return time.perf_counter() - start


def keras_epochs(x: np.ndarray, y: np.ndarray, epochs: int = 3) -> list[float]:
    """Plain Keras, tutorial settings: Sequential MLP, Adam, batch 32; seconds per epoch."""
    import_tensorflow()
    import keras

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    times: list[float] = []
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(scale_pixels(x), y, epochs=epochs, batch_size=32, verbose=0, callbacks=[Clock()])
    return times


def cnn_time_to_99(
    x, y, x_test, y_test, max_epochs: int = 5, batch_size: int = 128, lr: float = 3e-3
):
    """Train the kit's CNN epoch by epoch; return training seconds when test accuracy first >= 99%."""
    import torch

    from mnist_kit import torch_kit

    seed_everything(0)
    model = torch_kit.cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = (len(x) + batch_size - 1) // batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=max_epochs * steps
    )

    class StepSchedule(torch_kit.Callback):
        def on_batch_end(self, batch, logs):
            schedule.step()

    trained, log = 0.0, []
    for epoch in range(max_epochs):
        start = time.perf_counter()
        torch_kit.fit(
            model,
            x,
            y,
            epochs=1,
            batch_size=batch_size,
            optimizer=optimizer,
            callbacks=[StepSchedule()],
            verbose=0,
        )
        trained += time.perf_counter() - start
        accuracy = torch_kit.evaluate(model, x_test, y_test)[1]
        log.append((epoch + 1, round(trained, 1), round(accuracy, 4)))
        if accuracy >= 0.99:
            return trained, log
    return None, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="12,000 images for parts 1-2, skip part 3"
    )
    args = parser.parse_args()
    (x_all, y_all), (x_test, y_test) = load_mnist()
    (x, y), _ = train_val_split(x_all, y_all, val_fraction=0.2, seed=42)
    if args.quick:
        x, y = x[:12000], y[:12000]
    seed_everything(0)
    # Interleaved and best of two, so a burst of other work on the machine hits every side alike.
    times: dict[str, list[float]] = {"kit": [], "torchvision": [], "lean": [], "bare": []}
    for _ in range(2):
        times["kit"].append(kit_torch_epoch(x, y))
        times["torchvision"].append(tutorial_torch_epoch(x, y, style="torchvision"))
        times["lean"].append(tutorial_torch_epoch(x, y, style="lean"))
        times["bare"].append(bare_torch_epoch(x, y))
    kit, tutorial, lean, bare = (min(times[k]) for k in ("kit", "torchvision", "lean", "bare"))
    keras_times = keras_epochs(x, y)
    keras_times = [keras_times[0], min(keras_times[1:])]  # first epoch (tracing), best later one
    results = {
        "images_per_epoch": len(x),
        "kit_torch_mlp_epoch_s": round(kit, 2),
        "tutorial_dataloader_mlp_epoch_s": round(tutorial, 2),
        "lean_dataloader_mlp_epoch_s": round(lean, 2),
        "bare_torch_floor_epoch_s": round(bare, 2),
        "keras_fit_mlp_first_epoch_s": round(keras_times[0], 2),
        "keras_fit_mlp_later_epoch_s": round(keras_times[1], 2),
        "speedup_vs_dataloader": round(tutorial / kit, 1),
        "speedup_vs_lean_dataloader": round(lean / kit, 1),
        "speedup_vs_keras_fit": round(keras_times[1] / kit, 1),
        "best_possible_vs_dataloader": round(tutorial / bare, 1),
        "best_possible_vs_keras_fit": round(keras_times[1] / bare, 1),
    }
    print(f"MLP 784-128-64-10, batch 32, {len(x):,} images per epoch (best of two)")
    print(f"  kit torch fit                  {kit:6.2f} s/epoch")
    print(
        f"  tutorial loop, torchvision-style {tutorial:4.2f} s/epoch"
        f"   -> kit is {tutorial / kit:.1f}x faster (target >= 5x)"
    )
    print(
        f"  tutorial loop, lean Dataset    {lean:6.2f} s/epoch   -> kit is {lean / kit:.1f}x faster"
    )
    print(
        f"  plain Keras model.fit          {keras_times[1]:6.2f} s/epoch"
        f" (first epoch {keras_times[0]:.2f} s)   -> kit is {keras_times[1] / kit:.1f}x faster"
        " (target >= 3x)"
    )
    print(
        f"  floor: bare PyTorch steps      {bare:6.2f} s/epoch   -> no eager PyTorch loop can be more"
        f" than {tutorial / bare:.1f}x the tutorial loop or {keras_times[1] / bare:.1f}x Keras here"
    )
    if not args.quick:
        seconds, log = cnn_time_to_99(x, y, x_test, y_test)
        results["cnn_epochs_log"] = log
        results["cnn_seconds_to_99"] = None if seconds is None else round(seconds, 1)
        print("CNN (225,034 parameters), batch 128, Adam with one-cycle LR peaking at 3e-3:")
        for epoch, trained, accuracy in log:
            print(f"  epoch {epoch}: {trained:6.1f} s of training, test accuracy {accuracy:.4f}")
        verdict = (
            "did not reach 99.0%"
            if seconds is None
            else f"reached 99.0% after {seconds:.1f} s of training"
        )
        print(f"  -> {verdict} (target < 60 s)")
    print("JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
