"""The playground dashboard: controls, Train/Stop, live curves, results, every run, your digit.

Threading (ipywidgets 8.1, ipykernel 7): a running cell blocks widget messages, so
training runs on a background thread (`worker.trainer()`) and the cell that shows the
dashboard returns at once. A display thread (`worker.painter()`) reads the run's LiveState
five times a second and sets widget *values* (progress, HTML, PNG bytes of the curve).
Nothing is printed into Output widgets from threads: since ipykernel 7 such output goes
to whichever cell ran last, not to the widget.
"""

from __future__ import annotations

import base64
import html
import time
from concurrent import futures
from pathlib import Path

import ipywidgets as w

from mnist_kit.history import StopFlag
from mnist_kit.widgets.charts import blank_png, live_curve_png, overlay_png
from mnist_kit.widgets.controls import Controls
from mnist_kit.widgets.live import LiveState
from mnist_kit.widgets.results import DigitPanel, MistakesPanel
from mnist_kit.widgets.runs import RunRecord, runs_table_html, runs_to_csv
from mnist_kit.widgets.session import Session
from mnist_kit.widgets.settings import FRAMEWORKS, Settings, format_seconds
from mnist_kit.widgets.worker import painter, trainer

__all__ = ["Playground", "NO_WIDGETS_TEXT"]

TICK = 0.2  # seconds between widget refreshes: at most 5 updates a second
CURVE_EVERY = 1.0  # seconds between redraws of the live curve (plus one at each epoch's end)
NO_WIDGETS_TEXT = (
    "mnist-kit playground: this dashboard needs a live Jupyter kernel and a front-end with "
    "ipywidgets (JupyterLab, Notebook 7, VS Code). In a static or converted notebook it cannot "
    "render; run the notebook, or call mnist_kit.widgets.static_report() for plain figures."
)


class _Dashboard(w.VBox):
    """The root box; its plain-text form says why nothing shows where widgets cannot render."""

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle:
            bundle["text/plain"] = NO_WIDGETS_TEXT
        return bundle


def _html(name: str, value: str = "") -> w.HTML:
    widget = w.HTML(value)
    widget.add_class(f"mk-{name}")
    return widget


class Playground:
    """An MNIST training dashboard; show it with `display(pg)` or as a cell's last value.

    Args:
        settings: where the controls start.
        session: the engine (data, training, runs); a fresh one by default.
        csv_path: where "Export CSV" writes, relative to the kernel's folder (the notebook's).
        preload: start loading MNIST in the background as soon as the dashboard is built.
        log_dir: log every run under this folder for TensorBoard (`Session`'s log_dir).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        session: Session | None = None,
        csv_path: str | Path = "playground_runs.csv",
        preload: bool = True,
        log_dir: str | None = None,
    ) -> None:
        self.session = session or Session(log_dir=log_dir)
        self.csv_path = Path(csv_path)
        self.controls = Controls(settings or Settings())
        self._busy_job: futures.Future | None = None  # the display job of a run, or an estimate
        self._live: LiveState | None = None
        self._stop: StopFlag | None = None
        self._estimated: Settings | None = None
        self._build()
        self.controls.observe(self._settings_changed)
        if preload:
            trainer().submit(self._preload)

    # ----- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        # Long: every widget of the layout, built in the order a learner reads them.
        self.train_button = w.Button(description="Train", button_style="success", icon="play")
        self.stop_button = w.Button(
            description="Stop", button_style="danger", icon="stop", disabled=True
        )
        self.estimate_button = w.Button(
            description="Estimate", icon="clock", tooltip="Time a few real batches of this model"
        )
        for name, button in (
            ("train", self.train_button),
            ("stop", self.stop_button),
            ("estimate", self.estimate_button),
        ):
            button.add_class(f"mk-{name}")
            button.layout.width = "120px" if name == "estimate" else "110px"
        self.train_button.on_click(lambda _b: self.train())
        self.stop_button.on_click(lambda _b: self.stop())
        self.estimate_button.on_click(lambda _b: self.estimate())
        self.estimate_text = _html(
            "estimate-text",
            "<span style='color:#666'>Estimate times a few real batches of this model.</span>",
        )
        self.status = _html("status", "<b>Ready.</b> Move the sliders, then press <b>Train</b>.")
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="98%"))
        self.progress.add_class("mk-progress")
        self.progress_text = _html("progress-text", "&nbsp;")
        self.curve = w.Image(
            format="png",
            value=blank_png("Curves appear here while training."),
            layout=w.Layout(width="98%"),
        )
        self.curve.add_class("mk-curve")
        self.mistakes = MistakesPanel(self.session)
        self.digit = DigitPanel(self.session)
        self.runs_table = _html("runs", runs_table_html([]))
        self.overlay = w.Image(
            format="png",
            value=blank_png("Curves of every run appear here.", 8, 1.2),
            layout=w.Layout(width="980px"),
        )
        self.overlay.add_class("mk-overlay")
        self.export_button = w.Button(description="Export CSV", icon="download")
        self.export_button.add_class("mk-export")
        self.export_button.on_click(lambda _b: self.export_csv())
        self.export_text = _html("export-link")
        runs_tab = w.VBox(
            [self.runs_table, w.HBox([self.export_button, self.export_text]), self.overlay]
        )
        self.tabs = w.Tab(
            children=[self.mistakes.box, runs_tab, self.digit.box],
            titles=("Mistakes", "All runs", "Your digit"),
        )
        self.tabs.add_class("mk-tabs")

        buttons = w.HBox(
            [self.train_button, self.stop_button, self.estimate_button, self.estimate_text]
        )
        left = w.VBox([self.controls.box()], layout=w.Layout(width="370px", flex="0 0 370px"))
        right = w.VBox(
            [buttons, self.status, self.progress, self.progress_text, self.curve],
            layout=w.Layout(flex="1 1 auto", min_width="420px", padding="0 0 0 10px"),
        )
        title = w.HTML("<h3 style='margin:0 0 4px 0'>MNIST playground</h3>")
        self.widget = _Dashboard(
            [title, w.HBox([left, right]), self.tabs], layout=w.Layout(max_width="1200px")
        )
        self.widget.add_class("mk-playground")

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def show(self) -> None:
        """Display the dashboard in the current cell's output."""
        from IPython.display import display

        display(self.widget)

    # ----- state ----------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.controls.settings()

    @property
    def running(self) -> bool:
        return self._busy_job is not None and not self._busy_job.done()

    def _preload(self) -> None:
        try:
            self.session.load_data()
        except Exception:  # noqa: BLE001 - the first Train reports it with the message
            pass

    def _settings_changed(self) -> None:
        if self._estimated is not None and self._estimated != self.settings:
            self.estimate_text.value = (
                "<span style='color:#888'>Settings changed: press <b>Estimate</b> again.</span>"
            )
            self._estimated = None

    def _set_busy(self, busy: bool) -> None:
        self.train_button.disabled = busy
        self.estimate_button.disabled = busy
        self.stop_button.disabled = not busy

    # ----- actions --------------------------------------------------------------------------
    def train(self) -> None:
        """Start training with the current settings in a background thread (no-op if one runs)."""
        if self.running:
            return
        try:
            settings = self.settings
        except ValueError as err:
            self.status.value = f"<span style='color:#c00'>{err}</span>"
            return
        live, stop = LiveState(), StopFlag()
        self._live, self._stop = live, stop
        self._set_busy(True)
        self.controls.set_enabled(False)
        number = len(self.session.runs) + 1
        self.status.value = (
            f"<b>Run #{number}</b>: {settings.describe()} with "
            f"{FRAMEWORKS[settings.framework]}, {settings.epochs} epoch(s)…"
        )
        self.curve.remove_class("mk-has-points")
        self.curve.value = blank_png("Waiting for the first batch…")
        self.progress.value, self.progress.bar_style = 0, ""
        self.progress_text.value = "Starting…"
        job = trainer().submit(lambda: self.session.run(settings, live, stop))
        self._busy_job = painter().submit(lambda: self._follow(settings, live, job))

    def stop(self) -> None:
        """Ask the running training to stop after its current batch; it keeps what it learned."""
        if self._live is None or self._stop is None or not self.running:
            return
        self._live.request_stop()
        self._stop.request()
        self.stop_button.disabled = True
        self.progress_text.value = "<b>Stopping after this batch…</b>"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run (and its display) is finished; True if it finished."""
        job = self._busy_job
        return job is None or not futures.wait([job], timeout).not_done

    def estimate(self) -> None:
        """Time a few real batches in the background and show the predicted training time."""
        if self.running:
            return
        settings = self.settings
        self._set_busy(True)
        self.stop_button.disabled = True
        self.estimate_text.value = "Timing a few batches…"

        def work() -> None:
            try:
                estimate = self.session.estimate(settings)
                self.estimate_text.value = f"<b>{estimate.text()}</b>"
                self._estimated = settings
            except Exception as err:  # noqa: BLE001 - shown to the learner, not lost in a thread
                self.estimate_text.value = (
                    f"<span style='color:#c00'>Could not estimate: {err}</span>"
                )
            finally:
                self._set_busy(False)
                self.stop_button.disabled = True

        self._busy_job = trainer().submit(work)

    def export_csv(self) -> Path:
        """Write every run to `csv_path` and offer it as a download link; returns the path."""
        text = runs_to_csv(self.session.runs)
        self.csv_path.write_text(text, encoding="utf-8")
        data = base64.b64encode(text.encode()).decode()
        self.export_text.value = (
            f"<a download='{self.csv_path.name}' href='data:text/csv;base64,{data}'>Download "
            f"{self.csv_path.name}</a> <span style='color:#666'>(also saved as "
            f"{self.csv_path.resolve()})</span>"
        )
        return self.csv_path

    # ----- the follower thread ------------------------------------------------------------
    def _follow(self, settings: Settings, live: LiveState, job: futures.Future) -> None:
        """Mirror the run's progress into the widgets until it ends, then show its results."""
        title = f"Run #{len(self.session.runs) + 1}: {settings.describe()}"
        seen, drawn_points, drawn_val, drawn_at = -1, 0, 0, 0.0
        try:
            while True:
                finished = job.done()
                snap = live.snapshot()
                if snap["version"] != seen:
                    seen = snap["version"]
                    self._show_progress(snap)
                    points, vals = len(snap["train_points"]), len(snap["val_points"])
                    due = time.perf_counter() - drawn_at >= CURVE_EVERY
                    if (
                        (points and not drawn_points)
                        or vals != drawn_val
                        or (points != drawn_points and due)
                    ):
                        self.curve.value = live_curve_png(snap, title)
                        if not drawn_points:
                            self.curve.add_class("mk-has-points")
                        drawn_points, drawn_val, drawn_at = points, vals, time.perf_counter()
                if finished:
                    break
                time.sleep(TICK)
            error = job.exception()
            record = None if error is not None else job.result()
            if record is not None:
                self._show_result(record, live.snapshot(), title)
            status = (
                self._result_text(record)
                if record is not None
                else f"<span style='color:#c00'>The run ended without a record: {error}</span>"
            )
        except Exception as err:  # noqa: BLE001 - a drawing error must not leave buttons dead
            status = f"<span style='color:#c00'>Display error: {type(err).__name__}: {err}</span>"
        finally:
            self._set_busy(False)
            self.controls.set_enabled(True)
        self.status.value = status  # last: when the accuracy shows, everything else is ready

    def _show_progress(self, snap: dict) -> None:
        if snap["steps"]:
            self.progress.max = snap["steps"]
            self.progress.value = min(snap["batch"], snap["steps"])
        if snap["halted"]:
            latency = snap["stop_latency"]
            took = f" {latency:.2f} s after the click" if latency is not None else ""
            text = (
                f"<b>Stopped{took}</b>, in epoch {snap['epoch'] + 1} at batch {snap['batch']}. "
                "Measuring what it learned…"
            )
        elif snap["stop_requested"]:
            text = "<b>Stopping after this batch…</b>"
        elif snap["phase"] == "training" and snap["steps"]:
            running = snap["running"]
            metrics = ""
            if "loss" in running:
                metrics = (
                    f" · loss {running['loss']:.4f} · accuracy {running.get('accuracy', 0):.1%}"
                )
            text = (
                f"Epoch {snap['epoch'] + 1} of {snap['epochs']} · batch {snap['batch']} of "
                f"{snap['steps']}{metrics}"
            )
        else:
            text = snap["phase"]
        self.progress_text.value = text

    def _show_result(self, record: RunRecord, snap: dict, title: str) -> None:
        """Fill the curve, mistakes, run table and overlay with a finished run."""
        if snap["train_points"]:
            self.curve.value = live_curve_png(snap, title)
        if record.status != "failed":
            self.mistakes.summary.value = (
                f"<b>Run #{record.number}</b> ({record.settings.describe()}): "
                f"{int(record.confusion.sum() - record.confusion.trace()):,} of "
                f"{int(record.confusion.sum()):,} test digits misclassified."
            )
            self.mistakes.update(record.confusion)
        self.runs_table.value = runs_table_html(self.session.runs)
        self.overlay.value = overlay_png(self.session.runs)
        self.progress.bar_style = {"finished": "success", "stopped": "warning"}.get(
            record.status, "danger"
        )
        self.progress_text.value = self._details_text(record, snap)

    @staticmethod
    def _result_text(record: RunRecord) -> str:
        if record.status == "failed":
            return (
                f"<b>Run #{record.number} failed:</b> "
                f"<span style='color:#c00'>{html.escape(record.error)}</span>"
            )
        verb = (
            "finished"
            if record.status == "finished"
            else f"was stopped at epoch {record.epochs_done:.2f}"
        )
        return (
            f"<b>Run #{record.number} {verb}</b>: test accuracy "
            f"<b class='mk-accuracy'>{record.test_accuracy:.2%}</b> in "
            f"{format_seconds(record.train_seconds)}."
        )

    @staticmethod
    def _details_text(record: RunRecord, snap: dict) -> str:
        parts = [
            f"{record.params:,} parameters",
            f"{record.epochs_done:.2f} of {record.settings.epochs} epochs",
        ]
        latency, first, began = (
            snap["stop_latency"],
            snap["first_point_seconds"],
            snap["began_seconds"],
        )
        if latency is not None:
            parts.append(f"Stop took effect {latency:.2f} s after the click")
        if first is not None and began is not None:
            parts.append(
                f"first curve point {first:.1f} s after Train ({began:.1f} s of it loading)"
            )
        return f"<span style='color:#555'>{' · '.join(parts)}</span>"
