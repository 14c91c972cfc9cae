"""The playground without widgets: detect where they cannot render, and draw static figures."""

from __future__ import annotations

from mnist_kit.history import StopFlag
from mnist_kit.widgets.live import LiveState
from mnist_kit.widgets.session import Session
from mnist_kit.widgets.settings import Settings

__all__ = ["widgets_available", "static_report"]


def widgets_available() -> tuple[bool, str]:
    """Whether a Jupyter kernel (with comms to a front-end) is running us, and if not, why."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False, "IPython is not installed"
    shell = get_ipython()
    if shell is None:
        return False, "plain Python, no IPython kernel"
    if getattr(shell, "kernel", None) is None:
        return False, "IPython in a terminal has no Jupyter front-end"
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False, "ipywidgets is not installed (pip install ipywidgets)"
    return True, ""


def static_report(settings: Settings | None = None, session: Session | None = None) -> dict:
    """Train once and return {"history", "mistakes", "confusion"} matplotlib Figures.

    The same run the dashboard would do, for places with no widgets; each figure shows
    as a picture when it is a notebook cell's value, or save it with `fig.savefig(path)`.
    """
    from mnist_kit.plots import plot_confusion_matrix, plot_history, plot_misclassified

    settings = settings or Settings()
    session = session or Session()
    record = session.run(settings, LiveState(), StopFlag())
    if record.status == "failed":
        raise RuntimeError(f"the training failed: {record.error}")
    (_, _), (x_test, y_test) = session.load_data()
    latest = session.latest
    figures = {
        "history": plot_history(record.history, labels=[record.label]),
        "mistakes": plot_misclassified(x_test, latest.probabilities, y_test, n=24, cols=8),
        "confusion": plot_confusion_matrix(y_test, latest.predicted),
    }
    print(
        f"Run {record.label}: test accuracy {record.test_accuracy:.2%} "
        f"in {record.train_seconds:.1f} s"
    )
    return figures
