"""The `mnist-kit` command: doctor, data, train, grade and report.

Errors print one line on stderr and exit non-zero; no tracebacks unless --debug.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

from mnist_kit.argtypes import number, whole_number
from mnist_kit.config import (
    FRAMEWORKS,
    MODELS,
    OPTIMIZERS,
    SettingError,
    TrainConfig,
    load_backend,
)

__all__ = ["main", "build_parser"]


class CliError(Exception):
    """An error to show as one line, with the exit code to use."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def _int_list(text: str) -> list[int]:
    """Comma-separated whole numbers ("128,64"); their range is `TrainConfig`'s to check."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 128,64, got {text!r}"
        )
    return values


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The run that `train`'s flags describe; a SettingError names the setting that is wrong."""
    return TrainConfig(
        framework=args.framework,
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        hidden=args.hidden,
        channels=args.channels,
        dropout=args.dropout,
        lr=args.lr,
        optimizer=args.optimizer,
        seed=args.seed,
        train_fraction=args.train_fraction,
    )


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print versions, devices, where the data is and whether widgets will render."""
    from mnist_kit.doctor import doctor

    return doctor(args.path, args.json)


def cmd_data(args: argparse.Namespace) -> int:
    """Find, load, verify and summarise MNIST."""
    import numpy as np

    from mnist_kit.data import find_mnist, load_mnist

    source = find_mnist(args.path)
    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = load_mnist(
        args.path, verbose=False, download=not args.no_download
    )
    seconds = time.perf_counter() - start
    summary = {
        "source": source.kind,
        "path": str(source.path),
        "load_seconds": round(seconds, 3),
        "x_train": [list(x_train.shape), str(x_train.dtype)],
        "x_test": [list(x_test.shape), str(x_test.dtype)],
        "train_class_counts": np.bincount(y_train, minlength=10).tolist(),
        "test_class_counts": np.bincount(y_test, minlength=10).tolist(),
        "pixel_range": [int(x_train.min()), int(x_train.max())],
        "mean_pixel": round(float(x_train.mean()) / 255, 4),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"MNIST from {summary['path']} ({summary['source']}), loaded in {seconds:.2f} s")
    print(
        f"  train: {x_train.shape[0]} images {x_train.shape[1]}x{x_train.shape[2]} {x_train.dtype}; "
        f"test: {x_test.shape[0]} images"
    )
    print(f"  train images per digit 0-9: {summary['train_class_counts']}")
    print(f"  test images per digit 0-9:  {summary['test_class_counts']}")
    print(
        f"  pixels {summary['pixel_range'][0]}-{summary['pixel_range'][1]}, mean {summary['mean_pixel']:.4f} of white"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a reference model with the tutorial recipe and report its test accuracy."""
    from mnist_kit.data import load_mnist
    from mnist_kit.training import train

    config = getattr(args, "config", None) or _train_config(args)  # main() made it already
    data = load_mnist(args.path)  # fails fast, before any framework loads, if the data is bad
    quiet = args.json or args.quiet
    if not quiet:
        print(
            f"Training the {config.framework} {config.model.upper()} for {config.epochs} epoch(s) at batch size {config.batch_size}...",
            file=sys.stderr,
        )
    if args.save:
        wanted = ".keras" if config.framework == "keras" else ".pt"
        if Path(args.save).suffix != wanted:
            raise CliError(
                f"--save: a {config.framework} model is saved as a {wanted} file, got {args.save}"
            )
    result = train(
        config=config, data=data, verbose=0 if quiet else 1, tensorboard=args.tensorboard
    )
    summary = result.summary()
    if args.save:
        from mnist_kit.saving import save

        save(result.model, args.save, architecture=config.architecture())
        summary["saved"] = args.save
    if args.tensorboard:
        summary["tensorboard"] = args.tensorboard
    if args.plot:
        from mnist_kit.plots import plot_history

        plot_history(result.history).savefig(args.plot, dpi=100, bbox_inches="tight")
        summary["plot"] = args.plot
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{config.framework} {config.model}: {result.params:,} parameters, trained {len(result.history.epoch)} epoch(s) "
            f"in {result.train_seconds:.1f} s on {result.device}"
        )
        print(f"test accuracy: {result.test_accuracy:.4f}  (test loss {result.test_loss:.4f})")
        if args.plot:
            print(f"curves saved to {args.plot}")
        if args.save:
            print(f"model saved to {args.save}; try: mnist-kit predict {args.save} digit.png")
        if args.tensorboard:
            print(
                f"TensorBoard logs in {args.tensorboard}: tensorboard --logdir {args.tensorboard}"
            )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """The digit a saved model reads in each image, with the ten probabilities."""
    from mnist_kit.digits import prepare_digit
    from mnist_kit.saving import framework_of, load

    try:
        model = load(args.model)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    images = []
    for name in args.images:
        try:
            images.append(prepare_digit(name))
        except (OSError, ValueError) as exc:
            raise CliError(f"{name}: {exc}") from None
    import numpy as np

    backend = load_backend(framework_of(model))
    probabilities = backend.predict(model, np.stack(images))
    rows = [
        {"image": name, "digit": int(p.argmax()), "probabilities": [round(float(v), 4) for v in p]}
        for name, p in zip(args.images, probabilities, strict=True)
    ]
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            shown = "  ".join(f"{d}: {v:.2f}" for d, v in enumerate(row["probabilities"]))
            print(f"{row['image']}: {row['digit']}   ({shown})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Where the class stands: scores, questions, most-failed tests and accuracies of a gradebook."""
    from dataclasses import asdict

    from mnist_kit.grading.class_report import class_stats, read_class, text_summary, write_html

    try:
        stats = class_stats(read_class(args.gradebook))
        if args.html:
            write_html(stats, args.html)
    except (OSError, ValueError) as exc:  # a missing or unreadable file, not a gradebook
        raise CliError(str(exc)) from None
    if args.json:
        report = {"gradebook": args.gradebook, "html": args.html}
        print(json.dumps({**report, "assignments": {n: asdict(s) for n, s in stats.items()}}))
        return 0
    print(text_summary(stats))
    if args.html:
        print(f"report written to {args.html}")
    return 0


def _grading_module():
    try:
        if importlib.util.find_spec("mnist_kit.grading.cli") is None:
            return None
    except ImportError:
        return None
    from mnist_kit.grading import cli as grading_cli

    return grading_cli


def _add_train_parser(sub) -> None:
    """`mnist-kit train`: every flag a `TrainConfig` field, with its default (ranges: main())."""
    train = sub.add_parser("train", help="train a reference model and print its test accuracy")
    defaults = TrainConfig()
    train.add_argument("--framework", choices=list(FRAMEWORKS), default=defaults.framework)
    train.add_argument("--model", choices=list(MODELS), default=defaults.model)
    train.add_argument("--epochs", type=whole_number, default=defaults.epochs)
    train.add_argument("--batch-size", type=whole_number, default=defaults.batch_size)
    train.add_argument(
        "--hidden",
        type=_int_list,
        default=list(defaults.hidden),
        help="MLP hidden sizes, e.g. 128,64",
    )
    train.add_argument(
        "--channels",
        type=_int_list,
        default=list(defaults.channels),
        help="CNN conv channels, e.g. 32,64",
    )
    train.add_argument(
        "--dropout",
        type=float,
        default=defaults.dropout,
        help="dropout rate (CNN default 0.5, MLP 0)",
    )
    train.add_argument(
        "--lr", type=number, default=defaults.lr, help=f"learning rate (default {defaults.lr})"
    )
    train.add_argument("--optimizer", choices=list(OPTIMIZERS), default=defaults.optimizer)
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument(
        "--train-fraction",
        type=float,
        default=defaults.train_fraction,
        help="share of the training images to use",
    )
    train.add_argument("--path", help="MNIST folder (default: the kit's search order)")
    train.add_argument("--plot", metavar="FILE.png", help="save the training curves")
    train.add_argument(
        "--save", metavar="FILE", help="save the trained model (.keras for Keras, .pt for PyTorch)"
    )
    train.add_argument("--tensorboard", metavar="DIR", help="log each epoch for TensorBoard here")
    train.add_argument(
        "--json", action="store_true", help="print exactly one JSON object on stdout"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all sub-commands."""
    parser = argparse.ArgumentParser(
        prog="mnist-kit", description="Deep learning on MNIST with Keras and PyTorch."
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    doctor = sub.add_parser("doctor", help="versions, devices, data location, Jupyter widgets")
    doctor.add_argument("--path", help="MNIST folder to check (default: the kit's search order)")
    doctor.add_argument("--json", action="store_true", help="print one JSON object")
    doctor.set_defaults(func=cmd_doctor)

    predict = sub.add_parser("predict", help="read digits in images with a saved model")
    predict.add_argument("model", metavar="MODEL", help="a model saved by train --save")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="photos or drawings of digits")
    predict.add_argument("--json", action="store_true", help="one JSON object per image")
    predict.set_defaults(func=cmd_predict)

    data = sub.add_parser("data", help="find, load, verify and summarise MNIST")
    data.add_argument("--path", help="folder with the four IDX .gz files or mnist.npz")
    data.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    data.add_argument("--json", action="store_true", help="print one JSON object")
    data.set_defaults(func=cmd_data)

    _add_train_parser(sub)

    grading = _grading_module()
    grade = sub.add_parser("grade", help="grade submitted notebooks (see docs/teachers.md)")
    if grading is not None:
        grading.add_arguments(grade)
        grade.set_defaults(func=grading.run)
    else:
        grade.set_defaults(
            func=lambda a: (_ for _ in ()).throw(
                CliError("grading is not available in this install")
            )
        )

    report = sub.add_parser("report", help="where the class stands, from a gradebook")
    report.add_argument("gradebook", metavar="GRADEBOOK.csv", help="written by mnist-kit grade")
    report.add_argument("--html", metavar="FILE.html", help="also write a one-page HTML report")
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mnist-kit` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        try:
            args.config = _train_config(args)
        except SettingError as err:  # named after its flag: "--train-fraction must be in (0, 1]"
            parser.error(f"--{err.name.replace('_', '-')} {err.problem}")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("mnist-kit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line, not a traceback
        if args.debug or os.environ.get("MNIST_KIT_DEBUG"):
            raise
        from mnist_kit.data import MnistDataError

        code = (
            exc.code if isinstance(exc, CliError) else (3 if isinstance(exc, MnistDataError) else 1)
        )
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"mnist-kit {args.command}: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
