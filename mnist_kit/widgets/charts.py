"""PNG pictures for the dashboard's Image widgets, drawn off the main thread without pyplot.

The live curve is drawn here (it has points inside an epoch); the rest come from
`mnist_kit.plots`, wrapped so the dashboard only ever sees PNG bytes.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["to_png", "live_curve_png", "overlay_png", "gallery_png", "prediction_png", "blank_png"]

LIVE_SIZE = (7.6, 2.5)  # inches; at 90 dpi about 680 x 225 px, the dashboard's right column


def to_png(fig: Figure, dpi: int = 90, width_px: int | None = None) -> bytes:
    """Render a Figure to PNG bytes, optionally scaled to a pixel width; the figure is then dropped."""
    if width_px is not None:
        dpi = max(30, int(width_px / fig.get_figwidth()))
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    fig.clear()
    return buffer.getvalue()


def blank_png(text: str, width: float = LIVE_SIZE[0], height: float = LIVE_SIZE[1]) -> bytes:
    """A placeholder picture holding one grey sentence."""
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", color="#777", fontsize=12, wrap=True)
    return to_png(fig)


def live_curve_png(snapshot: dict, title: str = "") -> bytes:
    """Loss and accuracy so far: running training values within epochs, validation at epoch ends."""
    fig = Figure(figsize=LIVE_SIZE, layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    train = np.array(snapshot["train_points"], dtype=np.float64).reshape(-1, 3)
    val = np.array(snapshot["val_points"], dtype=np.float64).reshape(-1, 3)
    epochs = max(1, snapshot.get("epochs") or 1)
    for ax, column, name in ((ax_loss, 1, "loss"), (ax_acc, 2, "accuracy")):
        if len(train):
            ax.plot(
                train[:, 0], train[:, column], "-", color="C0", lw=1.5, label="training (running)"
            )
        if len(val):
            ax.plot(val[:, 0], val[:, column], "o--", color="C1", ms=5, label="validation")
        ax.set_xlim(-0.02 * epochs, 1.03 * epochs)  # room for the points at the edges
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if len(train) or len(val):
            last = val[-1, column] if len(val) else train[-1, column]
            ax.annotate(
                f"{last:.3f}",
                xy=(1, 1),
                xycoords="axes fraction",
                ha="right",
                va="bottom",
                fontsize=9,
                color="C1" if len(val) else "C0",
            )
    if len(train) or len(val):
        ax_acc.legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    return to_png(fig)


def overlay_png(records: list, max_runs: int = 8) -> bytes:
    """The newest runs' curves on shared axes, one colour per run, drawn like the live curve."""
    shown = [r for r in records if r.curve.get("train")][-max_runs:]
    if not shown:
        return blank_png("Curves of every run appear here after the first one.", 8, 1.2)
    fig = Figure(figsize=(9.8, 3.0), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for i, record in enumerate(shown):
        colour = f"C{i % 10}"
        train = np.array(record.curve["train"], dtype=np.float64).reshape(-1, 3)
        val = np.array(record.curve.get("val", []), dtype=np.float64).reshape(-1, 3)
        for ax, column in ((ax_loss, 1), (ax_acc, 2)):
            ax.plot(train[:, 0], train[:, column], "-", color=colour, lw=1, alpha=0.6)
            if len(val):
                ax.plot(val[:, 0], val[:, column], "o--", color=colour, ms=4, lw=1.5)
        accuracy = "" if record.test_accuracy is None else f" ({record.test_accuracy:.1%})"
        ax_acc.plot([], [], "o--", color=colour, label=f"{record.label}{accuracy}")
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_title(f"{name}: thin = training (running), dots = validation", fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax_acc.legend(
        fontsize=8,
        loc="center left",
        bbox_to_anchor=(1.02, 0.5),
        title="run (test acc.)",
        title_fontsize=8,
    )
    if len(records) > len(shown):
        fig.suptitle(f"the newest {len(shown)} of {len(records)} runs", fontsize=9)
    return to_png(fig, width_px=980)


def gallery_png(
    images: np.ndarray,
    probabilities: np.ndarray,
    labels: np.ndarray,
    pair: tuple[int, int] | None = None,
    n: int = 24,
) -> bytes:
    """Misclassified test digits, most confident first; only true->predicted `pair` when given."""
    from mnist_kit.plots import plot_misclassified

    if pair is not None:
        true, predicted = pair
        keep = (labels == true) & (probabilities.argmax(axis=1) == predicted)
        count = int(keep.sum())
        if count == 0:
            return blank_png(f"No test {true} was taken for a {predicted}.", 6, 1.2)
        # Every other image counts as right, so the gallery keeps the test-set numbering (#i).
        shown = np.where(
            keep[:, None], probabilities, np.eye(10, dtype=probabilities.dtype)[labels]
        )
        fig = plot_misclassified(images, shown, labels, n=n, cols=8)
        fig.suptitle(
            f"{count} test images of a {true} predicted as {predicted}"
            + (f" (showing the {n} most confident)" if count > n else "")
        )
    else:
        fig = plot_misclassified(images, probabilities, labels, n=n, cols=8)
    return to_png(fig, width_px=900)


def prediction_png(
    image: np.ndarray, probabilities: np.ndarray, true_label: int | None = None
) -> bytes:
    """A digit beside its ten probability bars."""
    from mnist_kit.plots import plot_prediction

    return to_png(plot_prediction(image, probabilities, true_label), width_px=560)
