"""Training curves: one run, several runs side by side, and an optimizer comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from mnist_kit import config
from mnist_kit.history import as_history_dict
from mnist_kit.plots._common import new_figure

__all__ = ["plot_history", "plot_optimizers", "compare_optimizers", "OPTIMIZERS"]

# The kit's optimizers, plain SGD first: the baseline the others are compared with.
OPTIMIZERS = ("sgd", *(name for name in config.OPTIMIZERS if name != "sgd"))


def _is_single_history(value: Any) -> bool:
    # A plain metrics dict maps names to lists of floats; a dict of runs maps names to histories.
    if isinstance(value, Mapping):
        return all(isinstance(v, Sequence) and not isinstance(v, str) for v in value.values())
    return hasattr(value, "history")


def _runs(history_or_list: Any, labels: Sequence[str] | None) -> list[tuple[str, dict]]:
    if _is_single_history(history_or_list):
        runs = [history_or_list]
    elif isinstance(history_or_list, Mapping):
        labels = list(history_or_list) if labels is None else labels
        runs = list(history_or_list.values())
    else:
        runs = list(history_or_list)
    if not runs:
        raise ValueError(
            "no histories to plot: pass a History, a dict of metric lists, or a list of them"
        )
    if labels is None:
        labels = [""] if len(runs) == 1 else [f"run {i + 1}" for i in range(len(runs))]
    if len(labels) != len(runs):
        raise ValueError(
            f"got {len(runs)} histories but {len(labels)} labels; give one label per run"
        )
    return [(str(label), as_history_dict(run)) for label, run in zip(labels, runs, strict=True)]


def plot_history(
    history_or_list: Any,
    labels: Sequence[str] | None = None,
    metrics: Sequence[str] = ("accuracy", "loss"),
) -> Figure:
    """Training (solid) and validation (dashed) curves, one panel per metric, runs overlaid.

    Args:
        history_or_list: a Keras History, an `mnist_kit.history.History`, a dict of metric
            lists, a list of those (runs to compare), or a dict mapping run names to them.
        labels: one name per run for the legend.
        metrics: which metrics get a panel; "val_<metric>" is drawn too when recorded.

    Raises:
        ValueError: a metric no run recorded, or labels that do not match the runs.
    """
    runs = _runs(history_or_list, labels)
    for metric in metrics:
        if not any(metric in h for _, h in runs):
            recorded = sorted({key for _, h in runs for key in h})
            raise ValueError(f"no run recorded {metric!r}; recorded metrics: {', '.join(recorded)}")
    several = len(runs) > 1
    fig = new_figure(5.2 * len(metrics), 3.8 + (0.25 * len(runs) if several else 0))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    colours = [f"C{i % 10}" for i in range(len(runs))]
    for ax, metric in zip(axes, metrics, strict=True):
        handles = []
        for colour, (label, h) in zip(colours, runs, strict=True):
            for key, style, part in ((metric, "-", "train"), (f"val_{metric}", "--", "val")):
                values = h.get(key)
                if not values:
                    continue
                epochs = range(1, len(values) + 1)
                legend = f"{label}: " if label else ""
                legend += f"{part} (last {values[-1]:.4f})"
                (line,) = ax.plot(
                    epochs, values, style, color=colour, marker="o", markersize=3, label=legend
                )
                handles.append(line)
        ax.set_title(metric.replace("_", " ").capitalize())
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if several:  # many entries: below the panel, where they cover no curve
            ax.legend(
                handles=handles,
                fontsize=8,
                ncols=2,
                loc="upper center",
                bbox_to_anchor=(0.5, -0.16),
            )
        else:
            ax.legend(handles=handles, fontsize=8)
    return fig


def plot_optimizers(
    histories: Mapping[str, Any], metrics: Sequence[str] = ("accuracy", "loss")
) -> Figure:
    """Curves of the same model trained with several optimizers, e.g. from `compare_optimizers`."""
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError(
            "pass a dict mapping optimizer names to histories, e.g. compare_optimizers(...)"
        )
    fig = plot_history(list(histories.values()), labels=list(histories), metrics=metrics)
    fig.suptitle(f"Same model, {len(histories)} optimizers: " + ", ".join(histories))
    return fig


def compare_optimizers(
    framework: str = "torch",
    names: Sequence[str] = OPTIMIZERS,
    epochs: int = 3,
    train_fraction: float = 0.2,
    model: str = "mlp",
    lr: float | Mapping[str, float] = 1e-3,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Train the same model once per optimizer (same seed and data) and return name -> History.

    `lr` is one learning rate for all, or a dict per optimizer name; other keyword
    arguments (`data=`, `seed=`, `batch_size=` ...) go to `mnist_kit.training.train`.
    """
    from mnist_kit.training import train

    if not names:
        raise ValueError("names is empty; list optimizers such as ('sgd', 'adam')")
    train_kwargs.setdefault("verbose", 0)
    histories = {}
    for name in names:
        rate = lr[name] if isinstance(lr, Mapping) else lr
        result = train(
            framework,
            model,
            epochs=epochs,
            train_fraction=train_fraction,
            optimizer=name,
            lr=rate,
            **train_kwargs,
        )
        histories[name] = result.history
    return histories
