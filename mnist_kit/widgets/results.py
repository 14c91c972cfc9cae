"""The panels shown after a run: clickable confusion matrix, mistakes gallery, and your own digit."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w
import numpy as np

from mnist_kit.analysis import most_confused_pairs
from mnist_kit.widgets.charts import blank_png, gallery_png, prediction_png
from mnist_kit.widgets.digit import prepare_digit
from mnist_kit.widgets.session import Session

__all__ = ["MistakesPanel", "DigitPanel"]

ALL_MISTAKES = "all"


def _cell_colour(count: int, diagonal: bool, top: int) -> str:
    """White to green on the diagonal, white to red elsewhere, by share of the largest count."""
    if count == 0:
        return "#ffffff"
    share = min(1.0, count / max(1, top)) ** 0.5
    if diagonal:
        return f"rgb({int(255 - 150 * share)},{int(255 - 60 * share)},{int(255 - 150 * share)})"
    return f"rgb(255,{int(235 - 175 * share)},{int(235 - 175 * share)})"


class MistakesPanel:
    """A 10x10 grid of buttons (the confusion matrix), a pair dropdown, and the gallery image."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.summary = w.HTML("<p style='color:#666'>Results appear here after a run.</p>")
        self.summary.add_class("mk-result")
        self.cells: dict[tuple[int, int], w.Button] = {}
        grid: list[w.Widget] = [w.HTML("<b>true ↓ pred →</b>", layout=w.Layout(width="92px"))]
        grid += [w.HTML(f"<center><b>{p}</b></center>") for p in range(10)]
        for t in range(10):
            grid.append(w.HTML(f"<b>true {t}</b>"))
            for p in range(10):
                cell = w.Button(
                    description="",
                    tooltip=f"true {t}, predicted {p}",
                    layout=w.Layout(width="40px", height="24px", padding="0"),
                )
                cell.add_class(f"mk-cell-{t}-{p}")
                cell.on_click(lambda _b, t=t, p=p: self.show_pair((t, p)))
                self.cells[(t, p)] = cell
                grid.append(cell)
        self.grid = w.GridBox(
            grid,
            layout=w.Layout(
                grid_template_columns="92px " + "42px " * 10, grid_gap="2px 0px", width="520px"
            ),
        )
        self.grid.add_class("mk-confusion")
        self.pair = w.Dropdown(
            options=[("All mistakes, most confident first", ALL_MISTAKES)],
            description="Show",
            layout=w.Layout(width="400px"),
        )
        self.pair.add_class("mk-pair")
        self.pair.observe(lambda change: self.show_pair(change["new"]), names="value")
        self.gallery = w.Image(
            format="png",
            value=blank_png("The misclassified digits appear here.", 7, 1.2),
            layout=w.Layout(width="900px"),
        )
        self.gallery.add_class("mk-gallery")
        self.caption = w.HTML()
        self.caption.add_class("mk-gallery-caption")
        hint = w.HTML("<span style='color:#666'>Click a cell to see those digits.</span>")
        self.box = w.VBox(
            [
                self.summary,
                w.HBox([self.grid, w.VBox([hint, self.pair, self.caption])]),
                self.gallery,
            ]
        )

    def update(self, confusion: np.ndarray | None) -> None:
        """Refill the grid and the pair list from a run's 10x10 confusion matrix."""
        if confusion is None:
            for cell in self.cells.values():
                cell.description, cell.style.button_color = "", "#ffffff"
            self.pair.options = [("All mistakes, most confident first", ALL_MISTAKES)]
            return
        off = confusion * (1 - np.eye(10, dtype=confusion.dtype))
        top_off, top_diag = int(off.max()), int(np.diag(confusion).max())
        for (t, p), cell in self.cells.items():
            count = int(confusion[t, p])
            cell.description = str(count) if count else ""
            cell.style.button_color = _cell_colour(count, t == p, top_diag if t == p else top_off)
            cell.tooltip = f"true {t}, predicted {p}: {count} images"
        pairs = most_confused_pairs(confusion, k=10)
        options = [("All mistakes, most confident first", ALL_MISTAKES)]
        options += [(f"true {t} taken for {p} ({n})", (t, p)) for t, p, n in pairs]
        with self.pair.hold_trait_notifications():
            self.pair.options = options
            self.pair.value = ALL_MISTAKES
        self.show_pair(ALL_MISTAKES)

    def show_pair(self, pair) -> None:
        """Show the misclassified test digits of one (true, predicted) pair, or all of them."""
        latest = self.session.latest
        if latest is None:
            self.caption.value = "<span style='color:#666'>No model yet: train one first.</span>"
            return
        if pair != ALL_MISTAKES and pair[0] == pair[1]:
            count = int(latest.record.confusion[pair])
            self.caption.value = f"{count} test images of a {pair[0]} were recognised correctly."
            return
        (_, _), (x_test, y_test) = self.session.load_data()
        chosen = None if pair == ALL_MISTAKES else tuple(pair)
        self.gallery.value = gallery_png(x_test, latest.probabilities, y_test, pair=chosen)
        if chosen is None:
            wrong = int((latest.predicted != y_test).sum())
            self.caption.value = f"All {wrong:,} mistakes on the {len(y_test):,} test images."
        else:
            count = int(latest.record.confusion[chosen])
            self.caption.value = (
                f"<b>{count}</b> test images of a {chosen[0]} taken for a {chosen[1]}."
            )


class DigitPanel:
    """Upload a picture of a digit (or pick a test digit) and see the newest model's probabilities."""

    def __init__(self, session: Session, on_error: Callable[[str], None] | None = None) -> None:
        self.session = session
        self.upload = w.FileUpload(
            accept="image/*",
            multiple=False,
            description="Upload a digit",
            layout=w.Layout(width="190px"),
        )
        self.upload.add_class("mk-upload")
        self.upload.observe(self._uploaded, names="value")
        self.random = w.Button(
            description="A random test digit", icon="random", layout=w.Layout(width="190px")
        )
        self.random.add_class("mk-random")
        self.random.on_click(lambda _b: self.show_test_digit())
        self.text = w.HTML(
            "<span style='color:#666'>A PNG of one digit, dark on white or light on "
            "black; it is cropped, scaled to 20x20 and centred like MNIST.</span>"
        )
        self.text.add_class("mk-digit-text")
        self.picture = w.Image(
            format="png",
            value=blank_png("Your digit appears here.", 6.5, 1.2),
            layout=w.Layout(width="560px"),
        )
        self.picture.add_class("mk-digit-plot")
        self.rng = np.random.default_rng()
        self.box = w.VBox([w.HBox([self.upload, self.random]), self.text, self.picture])

    def _say(self, message: str, error: bool = False) -> None:
        colour = "#c00" if error else "#222"
        self.text.value = f"<span style='color:{colour}'>{message}</span>"

    def _uploaded(self, change) -> None:
        files = change["new"]
        if not files:
            return
        upload = files[0]
        self.upload.value = ()  # so that choosing the same file again counts as a new upload
        try:
            image = prepare_digit(bytes(upload["content"]))
            probabilities = self.session.predict_digit(image)
        except ValueError as err:
            self._say(str(err), error=True)
            return
        self._show(image, probabilities, None, f"your upload {upload['name']}")

    def show_test_digit(self, index: int | None = None) -> None:
        """Predict one test image (a random one unless `index` is given)."""
        (_, _), (x_test, y_test) = self.session.load_data()
        index = int(self.rng.integers(len(x_test))) if index is None else int(index)
        try:
            probabilities = self.session.predict_digit(x_test[index])
        except ValueError as err:
            self._say(str(err), error=True)
            return
        self._show(x_test[index], probabilities, int(y_test[index]), f"test image #{index}")

    def _show(
        self, image: np.ndarray, probabilities: np.ndarray, label: int | None, what: str
    ) -> None:
        guess = int(np.argmax(probabilities))
        number = self.session.latest.record.number if self.session.latest else "?"
        self.picture.value = prediction_png(image, probabilities, label)
        self._say(
            f"Run #{number} reads {what} as <b class='mk-digit-guess'>{guess}</b> "
            f"({probabilities[guess]:.1%} sure)."
        )
