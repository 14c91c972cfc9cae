"""`mnist-kit doctor`: what this machine gives the kit (versions, devices, data, Jupyter)."""

from __future__ import annotations

import json

__all__ = ["doctor"]


def doctor(path: str | None = None, as_json: bool = False) -> int:
    """Print versions, devices, where the data is and whether widgets will render."""
    from mnist_kit import __version__
    from mnist_kit.data import MnistDataError, find_mnist
    from mnist_kit.device import describe_devices

    report: dict = {"mnist_kit": __version__}
    try:
        source = find_mnist(path)
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
    if as_json:
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
