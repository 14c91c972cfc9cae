"""Tests of mnist_kit.widgets without a kernel: settings, runs, digits, threads, memory.

The dashboard's widgets are built for real (ipywidgets works without a front-end); the
training behind them is a fake backend except in the memory tests, which train for real.
The real front-end is tested in tests/test_playground_browser.py.
"""

from __future__ import annotations

import csv
import datetime
import io
import time
from pathlib import Path

import numpy as np
import pytest

from mnist_kit.training import History, RunResult, StopFlag
from mnist_kit.widgets import (
    DigitImageError,
    RunRecord,
    Session,
    Settings,
    count_params,
    prepare_digit,
    runs_to_csv,
    widgets_available,
)
from mnist_kit.widgets.live import POINTS_PER_EPOCH, LiveCallback, LiveState
from mnist_kit.widgets.runs import runs_table_html
from mnist_kit.widgets.settings import estimate_seconds, steps_per_epoch, train_images

# ----- a stand-in backend: same calls as torch_kit/keras_kit, no framework ---------------------


class FakeBackend:
    """Predicts from the true label with a fixed share of mistakes; records every release."""

    def __init__(self) -> None:
        self.released: list[object] = []
        self.models = 0

    def mlp(self, hidden=(128,), dropout=0.0):
        self.models += 1
        return {"kind": "mlp", "hidden": hidden}

    cnn = mlp

    def fit(self, model, x, y, *, epochs, batch_size, callbacks=(), stop=None, **_):
        fake_fit(epochs, -(-len(x) // batch_size), callbacks, stop, delay=0.0005)
        return History({"loss": [1.0]})

    def predict(self, model, x):
        x = np.asarray(x)
        guess = (x.reshape(len(x), -1).sum(axis=1) // 997) % 10  # arbitrary but deterministic
        return np.eye(10, dtype=np.float32)[guess] * 0.9 + 0.01

    def release(self, model):
        self.released.append(model)


def fake_fit(epochs, steps, callbacks, stop, delay):
    """Call the Callback hooks the way both backends do, honouring the stop flag per batch."""
    for cb in callbacks:
        cb.on_train_begin({"epochs": epochs, "steps": steps})
    history, stopped = History(), False
    for epoch in range(epochs):
        for cb in callbacks:
            cb.on_epoch_begin(epoch)
        for step in range(steps):
            time.sleep(delay)
            logs = {"loss": 1.0 / (1 + epoch * steps + step), "accuracy": 0.5 + 0.4 * step / steps}
            for cb in callbacks:
                cb.on_batch_end(step, logs)
            if stop is not None and stop.requested:
                stopped = True
                break
        logs = {**logs, "val_loss": logs["loss"], "val_accuracy": logs["accuracy"]}
        history.append(logs)
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if stopped:
            break
    history.stopped_early = stopped
    for cb in callbacks:
        cb.on_train_end({"stopped": stopped})
    return history


def make_fake_train(backend: FakeBackend, delay: float = 0.0005):
    """A stand-in for training.train with the same keyword arguments."""

    def train(
        framework,
        model,
        *,
        epochs,
        batch_size,
        train_fraction,
        callbacks,
        stop,
        hidden,
        channels,
        data,
        **_,
    ):
        shown = {"epochs": epochs, "batch_size": batch_size, "train_fraction": train_fraction}
        settings = Settings(framework=framework, model=model, **shown)
        net = backend.mlp(hidden)
        start = time.perf_counter()
        history = fake_fit(epochs, steps_per_epoch(settings), callbacks, stop, delay)
        x_test, y_test = data[1]
        accuracy = float((backend.predict(net, x_test).argmax(1) == y_test).mean())
        return RunResult(
            framework,
            model,
            net,
            history,
            count_params(settings),
            epochs,
            batch_size,
            accuracy,
            1.0,
            time.perf_counter() - start,
            "cpu",
            history.stopped_early,
        )

    return train


@pytest.fixture
def fake(mnist):
    """A Session whose training is the fake backend, on the real MNIST arrays."""
    backend = FakeBackend()
    session = Session(
        load_data=lambda: mnist,
        train_fn=make_fake_train(backend),
        load_backend=lambda name: backend,
    )
    session.fake_backend = backend
    return session


# ----- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (Settings(layers=2, neurons=128), 784 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10),
        (Settings(model="cnn", filters=32), 225_034),  # the kit's documented CNN
        (Settings(layers=1, neurons=32), 784 * 32 + 32 + 32 * 10 + 10),
    ],
)
def test_parameter_count_without_a_framework(settings, expected):
    """Is the parameter count shown before training the one of the kit's models?"""
    assert count_params(settings) == expected


@pytest.mark.parametrize(
    "settings", [Settings(layers=3, neurons=40), Settings(model="cnn", filters=8)]
)
def test_parameter_count_agrees_with_pytorch(settings):
    """Does the framework-free count match torch_kit.count_params on the real model?"""
    from mnist_kit import torch_kit

    model = (
        torch_kit.mlp(settings.hidden)
        if settings.model == "mlp"
        else torch_kit.cnn(settings.channels)
    )
    assert count_params(settings) == torch_kit.count_params(model)


def test_steps_follow_the_training_split():
    """Does 20% of the 48,000 training images at batch 128 make 75 batches per epoch?"""
    settings = Settings(train_fraction=0.2, batch_size=128)
    assert train_images(settings) == 9600
    assert steps_per_epoch(settings) == 75


def test_estimate_adds_steps_and_evaluation():
    """Is the estimate steps x time per step plus the validation and test passes?"""
    settings = Settings(train_fraction=0.2, batch_size=128, epochs=2)
    assert estimate_seconds(settings, 0.01, 0.0) == pytest.approx(150 * 0.01)
    assert estimate_seconds(settings, 0.0, 1e-5) == pytest.approx((2 * 12_000 + 20_000) * 1e-5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"framework": "jax"}, "framework"),
        ({"optimizer": "lion"}, "optimizer"),
        ({"train_fraction": 0.0}, "train_fraction"),
        ({"dropout": 1.0}, "dropout"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_bad_settings_are_explained(changes, message):
    """Does an impossible setting raise a ValueError that names it?"""
    with pytest.raises(ValueError, match=message):
        Settings(**changes)


# ----- the run table and CSV --------------------------------------------------------------------


def _records():
    done = RunRecord(
        1,
        Settings(neurons=64),
        "finished",
        history={"loss": [0.5]},
        test_accuracy=0.95,
        train_seconds=3.0,
        epochs_done=3,
    )
    stopped = RunRecord(
        2,
        Settings(neurons=256),
        "stopped",
        history={"loss": [0.7]},
        test_accuracy=0.90,
        train_seconds=1.2,
        epochs_done=0.4,
    )
    return [done, stopped]


def test_csv_has_one_row_per_run():
    """Does the CSV export hold every run with its settings, accuracy and status?"""
    rows = list(csv.DictReader(io.StringIO(runs_to_csv(_records()))))
    assert [r["neurons"] for r in rows] == ["64", "256"]
    assert [r["status"] for r in rows] == ["finished", "stopped"]
    assert rows[0]["test_accuracy"] == "0.95" and rows[1]["epochs_done"] == "0.4"


def test_table_marks_stopped_runs():
    """Does the run table show one row per run and say which run was stopped?"""
    table = runs_table_html(_records())
    assert table.count("<tr>") == 3  # header + two runs
    assert "stopped at epoch 0.40" in table


# ----- your own digit -----------------------------------------------------------------------


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploaded_photo_becomes_an_mnist_digit(mnist):
    """Is a big, off-centre, dark-on-white digit turned back into a centred MNIST-like image?"""
    (_, _), (x_test, _) = mnist
    digit = x_test[0]
    from PIL import Image

    big = np.asarray(Image.fromarray(digit).resize((140, 140), Image.BILINEAR))
    paper = np.full((300, 260), 255, np.uint8)
    paper[20:160, 100:240] = 255 - big  # dark ink on white, far from the centre
    prepared = prepare_digit(_png(paper))
    assert prepared.shape == (28, 28) and prepared.dtype == np.uint8
    ys, xs = np.indices(prepared.shape)
    mass = prepared.astype(float) / prepared.sum()
    assert abs((ys * mass).sum() - 14) < 1.0 and abs((xs * mass).sum() - 14) < 1.0
    correlation = np.corrcoef(prepared.ravel(), digit.ravel())[0, 1]
    assert correlation > 0.8


def test_blank_or_broken_uploads_are_explained():
    """Does a blank picture or a non-image file give a DigitImageError saying what to do?"""
    with pytest.raises(DigitImageError, match="blank"):
        prepare_digit(_png(np.full((50, 50), 255, np.uint8)))
    with pytest.raises(DigitImageError, match="PNG"):
        prepare_digit(b"not an image")


# ----- live progress ----------------------------------------------------------------------


def test_live_curve_keeps_a_bounded_number_of_points():
    """Does a 3-epoch run of 1,000 batches keep about 100 curve points per epoch, not 3,000?"""
    live = LiveState()
    fake_fit(3, 1000, [LiveCallback(live)], None, delay=0)
    snap = live.snapshot()
    assert len(snap["train_points"]) <= 3 * POINTS_PER_EPOCH + 1
    assert [p[0] for p in snap["val_points"]] == [1.0, 2.0, 3.0]
    assert snap["first_point_seconds"] is not None


def test_stop_is_noticed_at_the_next_batch():
    """Does the callback record when training halted after Stop, and at which fraction of the epoch?"""
    live, stop = LiveState(), StopFlag()

    class StopAt(LiveCallback):
        def on_batch_end(self, batch, logs):
            if batch == 24:
                live.request_stop()
                stop.request()
            super().on_batch_end(batch, logs)

    fake_fit(2, 100, [StopAt(live, stop)], stop, delay=0)
    snap = live.snapshot()
    assert snap["halted"] and snap["stop_latency"] < 0.5
    assert live.epochs_done == pytest.approx(0.25)


# ----- the session -----------------------------------------------------------------------------


def test_each_run_releases_the_previous_model(fake):
    """Is the previous model released before the next one trains, keeping one model alive?"""
    first = fake.run(Settings(epochs=1, train_fraction=0.05), LiveState(), StopFlag())
    model = fake.latest.model
    second = fake.run(Settings(epochs=1, train_fraction=0.05), LiveState(), StopFlag())
    assert first.status == second.status == "finished"
    assert fake.fake_backend.released == [model]
    assert [r.number for r in fake.runs] == [1, 2]
    assert first.confusion.sum() == 10_000


def test_a_failing_run_is_recorded_with_its_message(mnist):
    """Does an error inside training become a 'failed' run with the message, not a dead thread?"""

    def broken(*_a, **_k):
        raise ValueError("out of cheese")

    session = Session(
        load_data=lambda: mnist, train_fn=broken, load_backend=lambda _: FakeBackend()
    )
    record = session.run(Settings(), LiveState(), StopFlag())
    assert record.status == "failed" and "out of cheese" in record.error


def test_estimate_times_real_calls_of_the_backend(fake):
    """Does the estimate come from timed batches and scale with the number of epochs?"""
    one = fake.estimate(Settings(epochs=1, train_fraction=0.2))
    assert one.steps_timed >= 3 and one.step_seconds > 0
    assert "ms per batch" in one.text()
    three = Settings(epochs=3, train_fraction=0.2)
    assert estimate_seconds(three, one.step_seconds, one.eval_seconds_per_image) > one.seconds


def test_worker_runs_jobs_in_order_and_keeps_errors_on_their_future():
    """Does one daemon thread run jobs in turn, keep a failure on its Future, and go on?"""
    import threading

    from mnist_kit.widgets.worker import Worker

    worker, ran = Worker("test-worker"), []
    first = worker.submit(lambda: ran.append(threading.current_thread().name) or 1)
    broken = worker.submit(lambda: 1 / 0)
    last = worker.submit(lambda: ran.append(threading.current_thread().name) or 3)
    assert last.result(timeout=5) == 3 and first.result() == 1
    assert isinstance(broken.exception(), ZeroDivisionError)
    assert ran == ["test-worker", "test-worker"] and worker._thread.daemon


# ----- the dashboard, built for real without a front-end ---------------------------------------


@pytest.fixture
def dashboard(fake, tmp_path):
    from mnist_kit.widgets import Playground

    quick = Settings(epochs=1, train_fraction=0.05)  # 2,400 images: the fake backend is fast anyway
    return Playground(quick, session=fake, csv_path=tmp_path / "runs.csv", preload=False)


def test_train_button_trains_in_the_background_and_fills_the_results(dashboard):
    """Does Train return at once, and does the run then show accuracy, table, gallery and curve?"""
    dashboard.controls.neurons.value = 32
    dashboard.controls.epochs.value = 1
    dashboard.controls.train_fraction.value = 0.2
    dashboard.train_button.click()
    # The click has returned while the run is still going: the cell is not blocked by training.
    assert dashboard.train_button.disabled and not dashboard.stop_button.disabled
    assert dashboard.wait(timeout=30)
    record = dashboard.session.runs[-1]
    assert record.status == "finished" and record.settings.neurons == 32
    assert (
        "mk-accuracy" in dashboard.status.value
        and f"{record.test_accuracy:.2%}" in dashboard.status.value
    )
    assert "mk-has-points" in dashboard.curve._dom_classes
    assert dashboard.runs_table.value.count("<tr>") == 2
    assert not dashboard.train_button.disabled and dashboard.stop_button.disabled
    assert dashboard.mistakes.cells[(3, 3)].description == str(record.confusion[3, 3])


def test_stop_button_halts_mid_epoch_and_keeps_the_run(dashboard):
    """Does Stop end a long epoch within a second and record the run as stopped?"""
    dashboard.session.train_fn = make_fake_train(dashboard.session.fake_backend, delay=0.01)
    dashboard.controls.batch_size.value = 8  # 300 batches of 10 ms: 3 s in the epoch
    dashboard.train()
    deadline = time.perf_counter() + 10
    while dashboard._live.snapshot()["batch"] < 20 and time.perf_counter() < deadline:
        time.sleep(0.05)
    dashboard.stop_button.click()
    assert dashboard.wait(timeout=30)
    assert dashboard._live.snapshot()["stop_latency"] < 1.0  # click to the last batch's end
    record = dashboard.session.runs[-1]
    assert record.status == "stopped" and 0 < record.epochs_done < 1
    assert "was stopped" in dashboard.status.value
    assert "stopped at epoch" in dashboard.runs_table.value


def test_progress_updates_are_throttled(dashboard):
    """Are progress-bar updates capped near 5 a second even when batches take 1 ms?"""
    dashboard.session.train_fn = make_fake_train(dashboard.session.fake_backend, delay=0.001)
    dashboard.controls.batch_size.value = 16
    dashboard.controls.train_fraction.value = 1.0  # 3,000 batches of 1 ms or more: several seconds
    stamps: list[float] = []
    dashboard.progress.observe(lambda _c: stamps.append(time.perf_counter()), names="value")
    dashboard.train()
    assert dashboard.wait(timeout=60)
    span = max(stamps[-1] - stamps[0], 1e-9)
    assert len(stamps) >= 3
    assert (len(stamps) - 1) / span <= 5.5


def test_a_failed_run_is_shown_and_the_buttons_come_back(dashboard):
    """When training raises, does the status show the message and can the learner train again?"""

    def broken(*_a, **_k):
        raise ValueError("learning rate too spicy")

    dashboard.session.train_fn = broken
    dashboard.train()
    assert dashboard.wait(timeout=30)
    assert (
        "failed" in dashboard.status.value and "learning rate too spicy" in dashboard.status.value
    )
    assert not dashboard.train_button.disabled and not dashboard.controls.epochs.disabled


def test_confusion_cell_click_shows_that_pair(dashboard):
    """Does clicking a confusion-matrix cell show how many digits of that pair were confused?"""
    dashboard.train()
    assert dashboard.wait(timeout=30)
    confusion = dashboard.session.runs[-1].confusion
    off = confusion * (1 - np.eye(10, dtype=int))
    t, p = np.unravel_index(off.argmax(), off.shape)
    before = dashboard.mistakes.gallery.value
    dashboard.mistakes.cells[(t, p)].click()
    assert (
        f"<b>{confusion[t, p]}</b> test images of a {t} taken for a {p}"
        in dashboard.mistakes.caption.value
    )
    assert dashboard.mistakes.gallery.value != before


def test_export_writes_every_run(dashboard):
    """Does Export CSV write a file with one row per run and offer a download link?"""
    for neurons in (64, 256):
        dashboard.controls.neurons.value = neurons
        dashboard.train()
        assert dashboard.wait(timeout=30)
    path = dashboard.export_csv()
    rows = list(csv.DictReader(Path(path).open()))
    assert [r["neurons"] for r in rows] == ["64", "256"]
    assert "data:text/csv;base64," in dashboard.export_text.value


def test_uploaded_digit_gets_probabilities(dashboard, mnist):
    """Does an uploaded PNG get a prediction from the newest model, and before any run a hint?"""
    (_, _), (x_test, _) = mnist
    upload = {
        "name": "seven.png",
        "type": "image/png",
        "size": 1,
        "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
        "content": memoryview(_png(255 - x_test[0])),
    }
    dashboard.digit.upload.value = (upload,)
    assert "press Train first" in dashboard.digit.text.value
    dashboard.train()
    assert dashboard.wait(timeout=30)
    dashboard.digit.upload.value = ({**upload, "name": "again.png"},)
    assert "reads your upload again.png as" in dashboard.digit.text.value


def test_without_a_kernel_the_dashboard_says_why():
    """In plain Python, do we learn that widgets cannot render, and does the text form say so?"""
    from mnist_kit.widgets.dashboard import NO_WIDGETS_TEXT, _Dashboard

    ok, reason = widgets_available()
    assert not ok and "no IPython kernel" in reason
    assert _Dashboard()._repr_mimebundle_()["text/plain"] == NO_WIDGETS_TEXT


def test_static_fallback_draws_the_figures(fake):
    """Does the static fallback train once and return the curve, mistakes and confusion figures?"""
    from mnist_kit.widgets import static_report

    figures = static_report(Settings(epochs=1, train_fraction=0.05), session=fake)
    assert set(figures) == {"history", "mistakes", "confusion"}
    assert all(fig.axes for fig in figures.values())


# ----- memory over many runs (real training) ----------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# A model left alive costs every run: the 4x512 MLP below holds 1.2 M parameters, about 14 MB
# with Adam's two moments. Keras 3.15 on TensorFlow 2.21 keeps ~23 MB per model.fit of this
# model even after clear_session(free_memory=True) and with no Python object left alive; plain
# Keras without the kit does the same, run_eagerly=True avoids it but trains 4x slower (see
# tensorflow/tensorflow#61791). The Keras case is a strict xfail over 12 runs (its leak shows
# at once, and each run costs seconds of tracing): it starts failing when TensorFlow is fixed.
KERAS_LEAK = pytest.mark.xfail(
    strict=True, reason="TensorFlow keeps each fitted Keras model's memory"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("framework", "runs"), [("torch", 20), pytest.param("keras", 12, marks=KERAS_LEAK)]
)
def test_twenty_trainings_do_not_grow_memory(framework, runs, mnist, tmp_path):
    """Do repeated real trainings through the dashboard release each model (RSS flat after warm-up)?"""
    from mnist_kit.widgets import Playground

    (x_train, y_train), (x_test, y_test) = mnist
    small = ((x_train[:12000], y_train[:12000]), (x_test[:2000], y_test[:2000]))
    start = Settings(framework=framework, layers=4, neurons=512, epochs=1, train_fraction=0.05)
    pg = Playground(
        start,
        session=Session(load_data=lambda: small),
        preload=False,
        csv_path=tmp_path / "runs.csv",
    )
    sizes = []
    for _ in range(runs):
        pg.train()
        assert pg.wait(timeout=300)
        assert pg.session.runs[-1].status == "finished", pg.session.runs[-1].error
        sizes.append(_rss_mb())
    # After 5 warm-up runs RSS steps between two or three levels as the allocator reuses memory;
    # the peaks of runs 6-10 and of the last five runs compare like with like.
    early, late = max(sizes[5:10]), max(sizes[-5:])
    per_run = (late - early) / (runs - 10)
    print(
        f"\n{framework}: RSS after each run (MB) {[round(s) for s in sizes]}; "
        f"{per_run:.1f} MB per run after warm-up"
    )
    assert per_run < 5.0, f"{per_run:.1f} MB per run: {[round(s) for s in sizes]}"
