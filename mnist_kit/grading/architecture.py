"""A model as one list of layers, whatever framework built it, compared with the expected one.

Both frameworks become the same `Layer` records ("Dense(128, relu)", "Conv2D(32, 3x3, relu)";
model_layers.py reads them from a Keras model or an exported PyTorch program), so one
architecture test serves Keras models and `nn.Module`s, and its message reads the same.
`align` pairs the model's layers with the expected ones (an edit distance, so one missing or
extra layer does not shift the comparison of all the others) and `Places` names the model's
layers the way the assignment's own list numbers them: "a Dense(64, relu) is missing between
layer 3 and the output", "layer 4 has 32 units; expected 64".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "Layer",
    "Spec",
    "Step",
    "Places",
    "parse_spec",
    "parse_layers",
    "align",
    "tidy",
    "layer_list",
]

WEIGHTED = ("Dense", "Conv2D")
TORCH_NAMES = {"Dense": "Linear", "Conv2D": "Conv2d", "MaxPooling2D": "MaxPool2d", "AveragePooling2D": "AvgPool2d",
               "BatchNormalization": "BatchNorm"}  # fmt: skip


@dataclass(frozen=True)
class Layer:
    """One layer as the grader sees it, whatever framework built it."""

    kind: str  # Dense, Conv2D, MaxPooling2D, Flatten, Dropout, BatchNormalization, Activation, ...
    size: int | None = None  # units of a Dense layer, filters of a Conv2D layer
    kernel: tuple[int, int] | None = None  # Conv2D kernel or pooling window
    activation: str | None = None  # for Dense/Conv2D: "linear" when there is none
    rate: float | None = None  # Dropout rate

    def __str__(self) -> str:
        return self.show("keras")

    def show(self, framework: str = "keras") -> str:
        """The layer in the words of `framework` ("Dense(64, relu)" or "Linear(64, relu)")."""
        kind = TORCH_NAMES.get(self.kind, self.kind) if framework == "torch" else self.kind
        parts: list[str] = []
        if self.size is not None:
            parts.append(str(self.size))
        if self.kernel is not None:
            parts.append(f"{self.kernel[0]}x{self.kernel[1]}")
        if self.rate is not None:
            parts.append(f"{self.rate:g}")
        if self.activation and self.activation != "linear":
            parts.append(self.activation)
        return f"{kind}({', '.join(parts)})" if parts else kind


def _parse_layer(item: str) -> Layer:
    kind, _, rest = item.partition("(")
    args = [a.strip() for a in rest.rstrip(")").split(",") if a.strip()]
    fields: dict[str, Any] = {}
    for arg in args:
        if "x" in arg and arg.replace("x", "").isdigit():
            a, b = arg.split("x")
            fields["kernel"] = (int(a), int(b))
        elif arg.isdigit():
            fields["size"] = int(arg)
        elif arg.replace(".", "", 1).isdigit():
            fields["rate"] = float(arg)
        else:
            fields["activation"] = arg
    if kind.strip() in WEIGHTED:
        fields.setdefault("activation", "linear")
    return Layer(kind.strip(), **fields)


@dataclass(frozen=True)
class Spec:
    """The expected layers and the number each one has in the assignment's numbered list."""

    layers: list[Layer]
    items: list[int]  # item of the list that holds each layer
    grouped: bool  # some item of the list holds several layers


def parse_spec(text: str) -> Spec:
    """Expected layers from a compact spec, numbered like the assignment's list.

    Items are separated by ";" and several layers of one item are joined by "+". A leading
    "Input" is an item of the list but no layer: it is never compared, it only shifts the
    numbers. "Input; Flatten; Dense(128, relu)" numbers Flatten 2 and Dense(128, relu) 3;
    "Input; Conv2D(32, 3x3, relu) + MaxPooling2D(2x2); ..." puts both layers in item 2.
    """
    layers: list[Layer] = []
    items: list[int] = []
    grouped = False
    entries = [part.strip() for part in text.split(";") if part.strip()]
    for number, entry in enumerate(entries, start=1):
        parts = [part.strip() for part in entry.split("+") if part.strip()]
        grouped = grouped or len(parts) > 1
        for part in parts:
            if part.partition("(")[0].strip() != "Input":
                layers.append(_parse_layer(part))
                items.append(number)
    return Spec(layers, items, grouped)


def parse_layers(text: str) -> list[Layer]:
    """Expected layers from a compact spec: "Flatten; Dense(128, relu); Dense(10)"."""
    return parse_spec(text).layers


@dataclass(frozen=True)
class Step:
    """One step of an alignment: what became of a model's layer and an expected one.

    op is "same", "changed" (same kind, other settings), "replaced" (another kind),
    "missing" (expected, not in the model), "extra" (in the model, not expected) or
    "swapped" (model layers have, have+1 are expected layers want+1, want).
    """

    op: str
    have: int | None  # index in the model's layers (None when missing)
    want: int | None  # index in the expected layers (None when extra)


INDEL = 1.0  # a missing or an extra layer
OTHER_KIND = 1.5  # a layer of another kind in place of the expected one (cheaper than both)
SWAP = 1.0  # two neighbouring layers in the wrong order
_FIELDS = ("size", "kernel", "activation", "rate")


def _cost(a: Layer, b: Layer) -> float:
    """0 for equal layers, 0.1 per different setting for the same kind, OTHER_KIND otherwise."""
    if a.kind != b.kind:
        return OTHER_KIND
    return 0.1 * sum(getattr(a, f) != getattr(b, f) for f in _FIELDS)


def align(have: list[Layer], want: list[Layer]) -> list[Step]:
    """The cheapest way to turn the expected layers into the model's, as steps in order.

    A Levenshtein-style edit distance with swaps of neighbours (a classic dynamic programme,
    "optimal string alignment"): a same-kind layer with other settings is a cheap change,
    another kind costs more, a missing or an extra layer costs INDEL.
    """
    n, m = len(have), len(want)
    inf = float("inf")
    # cost[i][j]: cheapest alignment of have[:i] with want[:j]
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 or j == 0:
                cost[i][j] = INDEL * (i + j)
                continue
            options = [
                cost[i - 1][j - 1] + _cost(have[i - 1], want[j - 1]),
                cost[i - 1][j] + INDEL,
                cost[i][j - 1] + INDEL,
            ]
            if _swappable(have, want, i, j):
                options.append(cost[i - 2][j - 2] + SWAP + _swap_cost(have, want, i, j))
            cost[i][j] = min(options)
    steps: list[Step] = []
    i, j = n, m
    while i > 0 or j > 0:  # walk back, preferring a pairing to a gap on ties
        here = cost[i][j]
        if i and j and _close(here, cost[i - 1][j - 1] + _cost(have[i - 1], want[j - 1])):
            a, b = have[i - 1], want[j - 1]
            op = "same" if a == b else "changed" if a.kind == b.kind else "replaced"
            steps.append(Step(op, i - 1, j - 1))
            i, j = i - 1, j - 1
        elif _swappable(have, want, i, j) and _close(
            here, cost[i - 2][j - 2] + SWAP + _swap_cost(have, want, i, j)
        ):
            steps.append(Step("swapped", i - 2, j - 2))
            i, j = i - 2, j - 2
        elif i and _close(here, cost[i - 1][j] + INDEL):
            steps.append(Step("extra", i - 1, None))
            i -= 1
        else:
            steps.append(Step("missing", None, j - 1))
            j -= 1
    return steps[::-1]


def _swappable(have: list[Layer], want: list[Layer], i: int, j: int) -> bool:
    return (
        i >= 2
        and j >= 2
        and have[i - 2].kind != have[i - 1].kind
        and have[i - 2].kind == want[j - 1].kind
        and have[i - 1].kind == want[j - 2].kind
    )


def _swap_cost(have: list[Layer], want: list[Layer], i: int, j: int) -> float:
    return _cost(have[i - 2], want[j - 1]) + _cost(have[i - 1], want[j - 2])


def _close(a: float, b: float) -> bool:
    return abs(a - b) < 1e-9


def pairs(steps: list[Step]) -> list[tuple[int, int]]:
    """(model index, expected index) of every aligned pair of layers, in order; swaps give two."""
    result: list[tuple[int, int]] = []
    for step in steps:
        if step.op == "swapped":
            result += [(step.have, step.want + 1), (step.have + 1, step.want)]
        elif step.have is not None and step.want is not None:
            result.append((step.have, step.want))
    return result


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


class Places:
    """Names of the model's layers and of the gaps between them, as the assignment counts them.

    Three ways, after the assignment's text: a list with one layer per item ("layer 4": the
    student's own layer, counted the way the list counts, so after a "keras.Input" item the
    first layer is layer 2 and "layer 4" is the fourth line of their Sequential); a list
    whose items hold several layers ("the Conv2D of item 3"); and a PyTorch module, whose
    text numbers nothing and whose modules (nn.ReLU among them) are not our layers, so the
    layer is named by kind ("your second Linear").
    """

    def __init__(self, spec: Spec, have: list[Layer], steps: list[Step], framework: str):
        self.spec, self.have, self.framework = spec, have, framework
        self.matched = dict(pairs(steps))  # model index -> expected index
        self.style = "torch" if framework == "torch" else "items" if spec.grouped else "numbers"
        self.first = spec.items[0] if spec.items else 1

    def _kind(self, layer: Layer) -> str:
        return Layer(layer.kind).show(self.framework)

    def layer(self, i: int) -> str:
        """ "layer 4", "the Conv2D of item 3" or "your second Linear"."""
        mine = self.have[i]
        if self.style == "numbers":
            return f"layer {self.first + i}"
        if self.style == "torch":
            count = sum(x.kind == mine.kind for x in self.have[: i + 1])
            nth = _ORDINALS[count - 1] if count <= len(_ORDINALS) else f"#{count}"
            return f"your {nth} {self._kind(mine)}"
        if i in self.matched:
            j = self.matched[i]
            item = self.spec.items[j]
            if mine.kind != self.spec.layers[j].kind:  # another kind: say where it stands
                nth = self.spec.items[:j].count(item)
                return f"the {_ORDINALS[min(nth, len(_ORDINALS) - 1)]} layer of item {item}"
            return f"the {self._kind(mine)} of item {item}"
        before = [k for k in range(i) if k in self.matched]
        where = f" after {self.layer(before[-1])}" if before else " at the start"
        return f"the {mine.show(self.framework)}{where}"

    def extra(self, i: int) -> str:
        """The subject of "... is extra": "layer 5, Dense(32, relu),"."""
        if self.style == "items":
            return self.layer(i)
        return f"{self.layer(i)}, {self.have[i].show(self.framework)},"

    def gap(self, i: int) -> str:
        """Where a layer is missing, before the model's layer i: "between layer 3 and the output"."""
        last = len(self.have) - 1
        after = self.layer(i - 1) if i > 0 else None
        before = ("the output" if i == last and after else self.layer(i)) if i <= last else None
        if after and before:
            return f"between {after} and {before}"
        if after:
            return f"after {after}"
        return f"before {before}" if before else "from the model"


def layer_list(layers: list[Layer], framework: str = "keras") -> str:
    """ "Flatten, Dense(128, relu), Dense(10)"."""
    return ", ".join(layer.show(framework) for layer in layers)


def tidy(layers: list[Layer]) -> list[Layer]:
    """Fold a separate activation into the Dense/Conv2D before it; merge repeated Flattens."""
    result: list[Layer] = []
    for layer in layers:
        previous = result[-1] if result else None
        if (
            layer.kind == "Activation"
            and previous is not None
            and previous.kind in WEIGHTED
            and previous.activation in (None, "linear")
        ):
            result[-1] = replace(previous, activation=layer.activation)
        elif layer.kind == "Flatten" and previous is not None and previous.kind == "Flatten":
            continue
        elif layer.kind == "Activation" and layer.activation == "linear":
            continue
        else:
            result.append(layer)
    return result
