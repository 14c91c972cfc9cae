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

from mnist_kit.argtypes import positive_float, positive_int

__all__ = ["main", "build_parser"]


class CliError(Exception):
    """An error to show as one line, with the exit code to use."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 128,64, got {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers like 128,64, got {text!r}")
    return values


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print versions, devices, where the data is and whether widgets will render."""
    from mnist_kit import __version__
    from mnist_kit.data import MnistDataError, find_mnist
    from mnist_kit.device import describe_devices

    report: dict = {"mnist_kit": __version__}
    try:
        source = find_mnist(args.path)
        report["data"] = {
            "found": source.kind != "download",
            "kind": source.kind,
            "path": str(source.path),
            "looked_at": source.tried,
        }
    except MnistDataError as exc:
        report["data"] = {"found": False, "error": str(exc)}
    report.update(describe_devices())
    report["jupyter"] = _jupyter_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"mnist-kit {report['mnist_kit']} on Python {report['python']} (numpy {report['numpy']}, {report['cpu_count']} CPU cores)"
    )
    torch_info, tf_info = report["torch"], report["tensorflow"]
    if "error" in torch_info:
        print(f"PyTorch: {torch_info['error']}")
    else:
        gpus = ", ".join(torch_info["cuda"]) or "none"
        print(
            f"PyTorch {torch_info['version']}: CUDA GPUs {gpus}; Apple MPS {'yes' if torch_info['mps'] else 'no'}; "
            f"training on {torch_info['device']} with {torch_info['threads']} threads"
        )
    if "error" in tf_info:
        print(f"TensorFlow: {tf_info['error']}")
    else:
        print(
            f"TensorFlow {tf_info['version']} / Keras {tf_info['keras']}: GPUs {', '.join(tf_info['gpus']) or 'none'}; "
            f"training on {tf_info['device']}"
        )
    data = report["data"]
    if data.get("found"):
        print(f"MNIST: {data['kind']} copy at {data['path']}")
    else:
        print(
            f"MNIST: not found locally ({data.get('error') or '; '.join(data.get('looked_at', []))}); "
            "it will be downloaded on first use if there is internet"
        )
    jupyter = report["jupyter"]
    for name, present in jupyter.items():
        print(f"{name}: {'installed' if present else 'MISSING'}")
    return 0


def _jupyter_report() -> dict:
    from importlib import metadata

    found = {}
    for package in ("ipywidgets", "jupyterlab_widgets", "jupyterlab", "ipykernel", "nbgrader"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = False
    return found


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

    data = load_mnist(args.path)  # fails fast, before any framework loads, if the data is bad
    quiet = args.json or args.quiet
    if not quiet:
        print(
            f"Training the {args.framework} {args.model.upper()} for {args.epochs} epoch(s) at batch size {args.batch_size}...",
            file=sys.stderr,
        )
    result = train(
        args.framework,
        args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        hidden=args.hidden,
        channels=args.channels,
        dropout=args.dropout,
        lr=args.lr,
        optimizer=args.optimizer,
        seed=args.seed,
        train_fraction=args.train_fraction,
        data=data,
        verbose=0 if quiet else 1,
    )
    summary = result.summary()
    if args.plot:
        from mnist_kit.plots import plot_history

        plot_history(result.history).savefig(args.plot, dpi=100, bbox_inches="tight")
        summary["plot"] = args.plot
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{args.framework} {args.model}: {result.params:,} parameters, trained {len(result.history.epoch)} epoch(s) "
            f"in {result.train_seconds:.1f} s on {result.device}"
        )
        print(f"test accuracy: {result.test_accuracy:.4f}  (test loss {result.test_loss:.4f})")
        if args.plot:
            print(f"curves saved to {args.plot}")
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

    data = sub.add_parser("data", help="find, load, verify and summarise MNIST")
    data.add_argument("--path", help="folder with the four IDX .gz files or mnist.npz")
    data.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    data.add_argument("--json", action="store_true", help="print one JSON object")
    data.set_defaults(func=cmd_data)

    train = sub.add_parser("train", help="train a reference model and print its test accuracy")
    train.add_argument("--framework", choices=["keras", "torch"], default="torch")
    train.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    train.add_argument("--epochs", type=positive_int, default=5)
    train.add_argument("--batch-size", type=positive_int, default=32)
    train.add_argument(
        "--hidden", type=_int_list, default=[128, 64], help="MLP hidden sizes, e.g. 128,64"
    )
    train.add_argument(
        "--channels", type=_int_list, default=[32, 64], help="CNN conv channels, e.g. 32,64"
    )
    train.add_argument(
        "--dropout", type=float, default=None, help="dropout rate (CNN default 0.5, MLP 0)"
    )
    train.add_argument(
        "--lr", type=positive_float, default=1e-3, help="learning rate (default 0.001)"
    )
    train.add_argument("--optimizer", choices=["adam", "sgd", "rmsprop", "adagrad"], default="adam")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument(
        "--train-fraction", type=float, default=1.0, help="share of the training images to use"
    )
    train.add_argument("--path", help="MNIST folder (default: the kit's search order)")
    train.add_argument("--plot", metavar="FILE.png", help="save the training curves")
    train.add_argument(
        "--json", action="store_true", help="print exactly one JSON object on stdout"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=cmd_train)

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
        if len(args.channels) != 2:
            parser.error("--channels takes exactly two numbers, e.g. 32,64")
        if not 0 < args.train_fraction <= 1:
            parser.error(f"--train-fraction must be in (0, 1], got {args.train_fraction}")
        if args.dropout is not None and not 0 <= args.dropout < 1:
            parser.error(f"--dropout must be in [0, 1), got {args.dropout}")
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
