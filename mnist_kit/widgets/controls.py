"""The playground's input widgets: sliders and dropdowns that read back as one `Settings`."""

from __future__ import annotations

import ipywidgets as w

from mnist_kit.widgets.settings import (
    BATCH_SIZES,
    FRAMEWORKS,
    MODELS,
    OPTIMIZERS,
    Settings,
    count_params,
    steps_per_epoch,
    train_images,
)

__all__ = ["Controls"]

STYLE = {"description_width": "120px"}
WIDTH = "355px"


def _tag(widget: w.DOMWidget, name: str) -> w.DOMWidget:
    """Give a widget a CSS class `mk-<name>`, the handle the browser test finds it by."""
    widget.add_class(f"mk-{name}")
    return widget


def _common() -> dict:
    """Style and a fresh Layout for one control (a Layout shared by several would hide them all)."""
    return {"style": dict(STYLE), "layout": w.Layout(width=WIDTH)}


class Controls:
    """Every setting a learner can change, laid out as one column."""

    def __init__(self, start: Settings) -> None:
        # Long: one block per control, in the order they are shown.
        self.framework = _tag(
            w.Dropdown(
                options=[(label, key) for key, label in FRAMEWORKS.items()],
                value=start.framework,
                description="Framework",
                **_common(),
            ),
            "framework",
        )
        self.model = _tag(
            w.Dropdown(
                options=[(label, key) for key, label in MODELS.items()],
                value=start.model,
                description="Model",
                **_common(),
            ),
            "model",
        )
        self.optimizer = _tag(
            w.Dropdown(
                options=list(OPTIMIZERS),
                value=start.optimizer,
                description="Optimizer",
                **_common(),
            ),
            "optimizer",
        )
        self.layers = _tag(
            w.IntSlider(value=start.layers, min=1, max=4, description="Hidden layers", **_common()),
            "layers",
        )
        self.neurons = _tag(
            w.IntSlider(
                value=start.neurons,
                min=8,
                max=512,
                step=8,
                description="Neurons per layer",
                **_common(),
            ),
            "neurons",
        )
        self.filters = _tag(
            w.IntSlider(
                value=start.filters, min=8, max=64, step=8, description="Conv filters", **_common()
            ),
            "filters",
        )
        self.epochs = _tag(
            w.IntSlider(value=start.epochs, min=1, max=20, description="Epochs", **_common()),
            "epochs",
        )
        self.batch_size = _tag(
            w.SelectionSlider(
                options=list(BATCH_SIZES),
                value=start.batch_size,
                description="Batch size",
                **_common(),
            ),
            "batch",
        )
        self.lr = _tag(
            w.FloatLogSlider(
                value=start.lr,
                base=10,
                min=-4,
                max=0,
                step=0.1,
                readout_format=".0e",
                description="Learning rate",
                **_common(),
            ),
            "lr",
        )
        self.dropout = _tag(
            w.FloatSlider(
                value=start.dropout,
                min=0.0,
                max=0.8,
                step=0.05,
                readout_format=".2f",
                description="Dropout",
                **_common(),
            ),
            "dropout",
        )
        self.train_fraction = _tag(
            w.FloatSlider(
                value=start.train_fraction,
                min=0.05,
                max=1.0,
                step=0.05,
                readout_format=".0%",
                description="Share of data",
                **_common(),
            ),
            "fraction",
        )
        self.size = _tag(w.HTML(), "size")
        self.all = (
            self.framework,
            self.model,
            self.optimizer,
            self.layers,
            self.neurons,
            self.filters,
            self.epochs,
            self.batch_size,
            self.lr,
            self.dropout,
            self.train_fraction,
        )
        for control in self.all:
            control.observe(self._changed, names="value")
        self._changed()

    def settings(self) -> Settings:
        """The settings the controls show right now."""
        return Settings(
            framework=self.framework.value,
            model=self.model.value,
            layers=int(self.layers.value),
            neurons=int(self.neurons.value),
            filters=int(self.filters.value),
            epochs=int(self.epochs.value),
            batch_size=int(self.batch_size.value),
            lr=float(f"{self.lr.value:.3g}"),  # the log slider's steps are not exact floats
            dropout=round(float(self.dropout.value), 3),
            optimizer=self.optimizer.value,
            train_fraction=round(float(self.train_fraction.value), 3),
        )

    def set_enabled(self, enabled: bool) -> None:
        for control in self.all:
            control.disabled = not enabled

    def observe(self, handler) -> None:
        """Call `handler()` whenever any setting changes."""
        for control in self.all:
            control.observe(lambda _change: handler(), names="value")

    def _changed(self, _change=None) -> None:
        cnn = self.model.value == "cnn"
        self.layers.layout.display = "none" if cnn else None
        self.neurons.layout.display = "none" if cnn else None
        self.filters.layout.display = None if cnn else "none"
        s = self.settings()
        self.size.value = (
            f"<div style='font-size:13px;line-height:1.5'><b>{count_params(s):,}</b> parameters"
            f" · {train_images(s):,} training images<br>{steps_per_epoch(s):,} batches per epoch"
            f" · {steps_per_epoch(s) * s.epochs:,} in all</div>"
        )

    def box(self) -> w.VBox:
        return w.VBox(list(self.all) + [self.size], layout=w.Layout(width="365px"))
