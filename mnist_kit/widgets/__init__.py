"""The MNIST playground: sliders, live curves and a Stop button around real training.

In a notebook: `from mnist_kit.widgets import playground; playground()` (course/09-playground.ipynb).
Where widgets cannot render (plain Python, IPython in a terminal), `playground()` says so
and trains once with the given settings, returning static figures instead.
ipywidgets is imported only when the dashboard is built.
"""

from __future__ import annotations

from mnist_kit.widgets.digit import DigitImageError, prepare_digit
from mnist_kit.widgets.runs import RunRecord, runs_to_csv
from mnist_kit.widgets.session import Session
from mnist_kit.widgets.settings import Settings, count_params
from mnist_kit.widgets.static import static_report, widgets_available

__all__ = [
    "playground",
    "Playground",
    "Settings",
    "Session",
    "RunRecord",
    "count_params",
    "prepare_digit",
    "DigitImageError",
    "runs_to_csv",
    "static_report",
    "widgets_available",
]


def playground(log_dir: str | None = None, **settings) -> dict | None:
    """Show the playground dashboard in this notebook cell (keyword arguments set the sliders).

    Example: `playground(neurons=64, epochs=2, framework="keras")`; see `Settings` for the names.
    `log_dir="runs"` logs every run there for TensorBoard (`%tensorboard --logdir runs`).
    Without a Jupyter kernel it prints why and returns `static_report(...)`'s figures.
    """
    start = Settings(**settings)
    ok, reason = widgets_available()
    if not ok:
        print(
            f"The playground's widgets cannot render here ({reason}). "
            "Training once with these settings and drawing static plots instead."
        )
        return static_report(start)
    from IPython.display import display

    from mnist_kit.widgets.dashboard import Playground

    display(Playground(settings=start, log_dir=log_dir).widget)
    return None


def __getattr__(name: str):
    # Playground pulls in ipywidgets; load it only when asked for.
    if name == "Playground":
        from mnist_kit.widgets.dashboard import Playground

        return Playground
    raise AttributeError(f"module 'mnist_kit.widgets' has no attribute {name!r}")
