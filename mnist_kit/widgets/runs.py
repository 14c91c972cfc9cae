"""The session's record of runs: one row per training, shown as a table and exported as CSV."""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field

import numpy as np

from mnist_kit.widgets.settings import FRAMEWORKS, Settings, count_params, format_seconds

__all__ = ["RunRecord", "CSV_COLUMNS", "runs_table_html", "runs_to_csv"]

CSV_COLUMNS = (
    "run",
    "status",
    "framework",
    "model",
    "layers",
    "neurons",
    "filters",
    "params",
    "epochs",
    "epochs_done",
    "batch_size",
    "lr",
    "optimizer",
    "dropout",
    "train_fraction",
    "test_accuracy",
    "val_accuracy",
    "train_seconds",
    "error",
)


@dataclass
class RunRecord:
    """One finished (or stopped, or failed) training and what it measured; no model inside."""

    number: int
    settings: Settings
    status: str  # "finished", "stopped" or "failed"
    history: dict = field(default_factory=dict)
    test_accuracy: float | None = None
    train_seconds: float = 0.0
    epochs_done: float = 0.0  # fractional when stopped mid-epoch
    params: int | None = None
    confusion: np.ndarray | None = None  # 10x10 counts on the test set
    error: str = ""
    curve: dict = field(
        default_factory=dict
    )  # "train"/"val": (epoch position, loss, accuracy) points

    def __post_init__(self) -> None:
        if self.status not in ("finished", "stopped", "failed"):
            raise ValueError(f"status must be finished, stopped or failed, got {self.status!r}")
        if self.params is None:
            self.params = count_params(self.settings)

    @property
    def label(self) -> str:
        return f"#{self.number} {self.settings.describe()}"

    @property
    def val_accuracy(self) -> float | None:
        values = self.history.get("val_accuracy") or []
        return values[-1] if values else None

    def row(self) -> dict:
        """The run as one flat row (the CSV's columns)."""
        s = self.settings
        mlp = s.model == "mlp"
        return {
            "run": self.number,
            "status": self.status,
            "framework": s.framework,
            "model": s.model,
            "layers": s.layers if mlp else "",
            "neurons": s.neurons if mlp else "",
            "filters": "" if mlp else s.filters,
            "params": self.params,
            "epochs": s.epochs,
            "epochs_done": round(self.epochs_done, 2),
            "batch_size": s.batch_size,
            "lr": s.lr,
            "optimizer": s.optimizer,
            "dropout": s.dropout,
            "train_fraction": s.train_fraction,
            "test_accuracy": "" if self.test_accuracy is None else round(self.test_accuracy, 4),
            "val_accuracy": "" if self.val_accuracy is None else round(self.val_accuracy, 4),
            "train_seconds": round(self.train_seconds, 2),
            "error": self.error,
        }


def runs_to_csv(records: list[RunRecord]) -> str:
    """Every run as CSV text with a header row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(record.row())
    return out.getvalue()


def _status_cell(record: RunRecord) -> str:
    if record.status == "stopped":
        return f'<span style="color:#b35c00">stopped at epoch {record.epochs_done:.2f}</span>'
    if record.status == "failed":
        return f'<span style="color:#c00" title="{html.escape(record.error)}">failed</span>'
    return "finished"


def runs_table_html(records: list[RunRecord]) -> str:
    """An HTML table of the runs, newest first, best test accuracy in bold."""
    if not records:
        return "<p style='color:#666'>No runs yet: press <b>Train</b>.</p>"
    scored = [r.test_accuracy for r in records if r.test_accuracy is not None]
    best = max(scored) if scored else None
    head = (
        "Run",
        "Model",
        "Framework",
        "Params",
        "Epochs",
        "Batch",
        "LR",
        "Optimizer",
        "Dropout",
        "Data",
        "Test acc.",
        "Time",
        "Status",
    )
    rows = []
    for r in reversed(records):
        s = r.settings
        acc = "" if r.test_accuracy is None else f"{r.test_accuracy:.2%}"
        if best is not None and r.test_accuracy == best:
            acc = f"<b>{acc}</b>"
        cells = (
            f"#{r.number}",
            html.escape(s.describe()),
            FRAMEWORKS[s.framework],
            f"{r.params:,}",
            f"{s.epochs}",
            f"{s.batch_size}",
            f"{s.lr:.0e}",
            s.optimizer,
            f"{s.dropout:.2f}",
            f"{s.train_fraction:.0%}",
            acc,
            format_seconds(r.train_seconds),
            _status_cell(r),
        )
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    style = (
        "<style>.mk-table{border-collapse:collapse;font-size:12px}"
        ".mk-table td,.mk-table th{border-bottom:1px solid #ddd;padding:2px 8px;text-align:right}"
        ".mk-table th{background:#f3f3f3}</style>"
    )
    header = "<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>"
    return f"{style}<table class='mk-table'>{header}<tbody>{''.join(rows)}</tbody></table>"
