"""Tests of mnist_kit.torch_kit on real MNIST: inputs, threads, mixed precision, the CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnist_kit import torch_kit, torch_loop, torch_threads
from mnist_kit.data import scale_pixels
from mnist_kit.training import train


@pytest.fixture(scope="module")
def small(mnist):
    """6,000 training and 2,000 validation images from real MNIST, and the test set."""
    (x, y), (x_test, y_test) = mnist
    return (x[:6000], y[:6000]), (x[6000:8000], y[6000:8000]), (x_test, y_test)


def _trained(images, labels, **options):
    """A fresh hidden-32 MLP after one epoch on (images, labels), the same way each time."""
    torch.manual_seed(0)
    model = torch_kit.mlp(hidden=(32,))
    history = torch_kit.fit(
        model, images, labels, epochs=1, batch_size=32, seed=1, verbose=0, threads=1, **options
    )
    return model, history


def test_torch_fit_accepts_tensors_and_float_images(small):
    """Do tensors (float or uint8) train exactly as the numpy uint8 images do, and learn?"""
    (x, y), _, (x_test, y_test) = small
    x, y = x[:2048], y[:2048]
    runs = {
        "numpy uint8": _trained(x, y),
        "float tensor": _trained(
            torch.from_numpy(scale_pixels(x)), torch.from_numpy(y.astype(np.int64))
        ),
        "uint8 tensor": _trained(torch.from_numpy(x), torch.from_numpy(y)),
    }
    reference_model, reference = runs["numpy uint8"]
    expected = torch_kit.predict(reference_model, x_test[:1000])
    for name, (model, history) in runs.items():
        assert history.history == reference.history, name
        np.testing.assert_array_equal(
            torch_kit.predict(model, x_test[:1000]), expected, err_msg=name
        )
    accuracy = torch_kit.evaluate(reference_model, x_test, y_test)[1]
    # Measured 0.79 after these 64 steps of 32 images; chance is 0.1.
    assert accuracy > 0.7, f"one epoch on 2,048 images reached only {accuracy:.3f}"
    assert "val_loss" not in reference.history


class _Clock:
    """A stand-in for time.perf_counter: each step costs what `cost(threads)` says."""

    def __init__(self, cost):
        self.torch, self.cost, self.now = torch, cost, 0.0
        self.used: list[int] = []

    def __call__(self) -> float:
        return self.now

    def step(self, tuner) -> None:
        tuner.before_step()
        threads = self.torch.get_num_threads()
        self.used.append(threads)
        self.now += self.cost(threads)
        tuner.after_step()


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("two_thread_cost", "expected"),
    [(0.5, 2), (0.95, 1), (3.0, 1)],  # twice as fast; only 5% faster; stalled by a busy machine
)
def test_thread_tuner_keeps_the_count_whose_steps_are_measured_fastest(
    monkeypatch, restore_threads, two_thread_cost, expected
):
    """Does the tuner time both counts on real steps and keep 2 only when clearly faster?"""
    monkeypatch.setattr(torch_threads, "_idle_cores", lambda: 2)
    clock = _Clock(lambda threads: 1.0 if threads == 1 else two_thread_cost)
    monkeypatch.setattr(torch_threads.time, "perf_counter", clock)
    tuner = torch_threads.ThreadTuner([1, 2], block=8, rounds=3, retune_every=100)
    for _ in range(60):
        clock.step(tuner)
    assert tuner.chosen == expected
    assert set(clock.used[:16]) == {1, 2}  # both were tried on real steps
    assert set(clock.used[48:]) == {expected}
    if two_thread_cost == 3.0:  # 3x slower: dropped after the first round, not tried again
        assert clock.used[16:] == [1] * 44


def test_thread_tuner_measures_again_when_the_load_changes(monkeypatch, restore_threads):
    """Does a machine that gets busy mid-training move the choice from 2 threads to 1?"""
    monkeypatch.setattr(torch_threads, "_idle_cores", lambda: 2)
    busy = {"now": False}
    clock = _Clock(lambda threads: (3.0 if busy["now"] else 0.5) if threads == 2 else 1.0)
    monkeypatch.setattr(torch_threads.time, "perf_counter", clock)
    tuner = torch_threads.ThreadTuner([1, 2], block=8, rounds=3, retune_every=50)
    for _ in range(60):
        clock.step(tuner)
    assert tuner.chosen == 2
    busy["now"] = True
    for _ in range(100):
        clock.step(tuner)
    assert tuner.chosen == 1 and tuner.history[0] == 2 and set(tuner.history[1:]) == {1}


def test_thread_tuner_tries_no_more_threads_than_idle_cores(monkeypatch, restore_threads):
    """With the other cores busy (load average), is only one thread ever used?"""
    monkeypatch.setattr(torch_threads, "_idle_cores", lambda: 1)
    clock = _Clock(lambda threads: 1.0 if threads == 1 else 0.1)
    monkeypatch.setattr(torch_threads.time, "perf_counter", clock)
    tuner = torch_threads.ThreadTuner([1, 2])
    for _ in range(100):
        clock.step(tuner)
    assert set(clock.used) == {1} and tuner.chosen == 1


def test_torch_fit_records_its_threads_and_restores_the_pool(small, restore_threads):
    """Does fit report the thread count it trained with and leave torch's setting as it was?"""
    (x, y), _, _ = small
    torch.set_num_threads(1)
    history = torch_kit.fit(torch_kit.mlp(), x[:2048], y[:2048], epochs=1, verbose=0, threads=None)
    assert history.params["threads"] == 1  # never more than it was allowed
    assert torch.get_num_threads() == 1
    history = torch_kit.fit(torch_kit.mlp(), x[:512], y[:512], epochs=1, verbose=0, threads=1)
    assert history.params["threads"] == 1


def test_torch_uint8_and_float_images_train_identically(small):
    """Is scaling each uint8 batch on the fly exactly the same as passing scaled floats?"""
    (x, y), (x_val, y_val), _ = small
    results = []
    for images in (x[:1024], scale_pixels(x[:1024])):
        torch.manual_seed(0)
        model = torch_kit.mlp(hidden=(32,))
        history = torch_kit.fit(
            model, images, y[:1024], epochs=1, batch_size=64, seed=1, verbose=0, threads=1,
            validation_data=(x_val, y_val),
        )  # fmt: skip
        results.append((history.history, torch_kit.predict(model, x_val)))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        torch_kit.fit(torch_kit.mlp(), x[:10].reshape(10, -1), y[:10], verbose=0)


@pytest.mark.slow
def test_torch_cnn_reaches_985_in_three_epochs(mnist):
    """Does the reference PyTorch CNN reach 98.5% test accuracy in 3 epochs at batch 128?"""
    result = train("torch", "cnn", epochs=3, batch_size=128, data=mnist, verbose=0)
    assert result.params == 225_034
    assert result.test_accuracy >= 0.985, f"torch CNN test accuracy {result.test_accuracy:.4f}"


# ----- mixed precision ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "bf16", "expected"),
    [
        ("cuda", True, (torch.bfloat16, False)),  # Ampere and later: bfloat16, no scaling
        ("cuda", False, (torch.float16, True)),  # older GPUs: float16 needs a GradScaler
        ("cpu", False, (torch.bfloat16, False)),  # the CPU autocasts to bfloat16 only
        ("mps", False, (None, False)),  # elsewhere: full float32
    ],
)
def test_amp_picks_bfloat16_float16_with_scaling_or_nothing(monkeypatch, device, bf16, expected):
    """Does each kind of device get the mixed precision it can train with?"""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert torch_loop.choose_amp(torch.device(device)) == expected


def test_amp_on_the_cpu_trains_in_bfloat16_and_learns(small, monkeypatch):
    """With amp=True on the CPU, does the model run in bfloat16 and still learn?"""
    (x, y), _, (x_test, y_test) = small
    seen = []
    forward = torch.nn.Linear.forward

    def spy(layer, inputs):
        out = forward(layer, inputs)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.Linear, "forward", spy)
    model, history = _trained(x[:2048], y[:2048], amp=True)
    monkeypatch.undo()
    assert set(seen) == {torch.bfloat16}
    assert torch_kit.evaluate(model, x_test, y_test)[1] > 0.7  # as in float32: 0.79
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay float32


def test_float16_loss_scaling_steps_and_learns(small, monkeypatch):
    """Does the GradScaler path (what older CUDA GPUs get) scale, step and update, and learn?"""
    (x, y), _, (x_test, y_test) = small
    monkeypatch.setattr(torch_kit, "choose_amp", lambda device: (torch.float16, True))
    scaled = []
    original = torch.amp.GradScaler.update

    def update(scaler, *args):
        scaled.append(scaler.get_scale())
        return original(scaler, *args)

    monkeypatch.setattr(torch.amp.GradScaler, "update", update)
    model, history = _trained(x[:2048], y[:2048], amp=True)
    assert len(scaled) == 64 and scaled[0] == 2.0**16  # one update per step, from 65536
    assert torch_kit.evaluate(model, x_test, y_test)[1] > 0.7  # as in float32: 0.79
