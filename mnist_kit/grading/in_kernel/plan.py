"""The grader's entry points in the student's kernel: run the plan the engine wrote, and
`check()`'s one model or probe at a time; a failure becomes an `error` entry, never an exception."""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mnist_kit.grading.in_kernel.errors import error_text
from mnist_kit.grading.in_kernel.models import export_model
from mnist_kit.grading.in_kernel.probes import run_probe

__all__ = ["run_plan", "export_named", "probe_named", "PROBE_SECONDS"]

PROBE_SECONDS = 120  # one probe may not run longer than this


class ProbeTimeout(Exception):
    """A probe ran past its time limit."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise ProbeTimeout in the main thread after `seconds` (no limit off the main thread)."""
    usable = hasattr(signal, "setitimer") and _in_main_thread()
    if not usable:
        yield
        return

    def _alarm(signum, frame):
        raise ProbeTimeout(f"stopped after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def export_named(name: str, namespace: dict, out: Path) -> dict[str, Any]:
    """Export the model called `name`; a failure becomes an `error` entry, never an exception."""
    if name not in namespace:
        return {"error": f"no variable named `{name}`: build it and run its cell"}
    try:
        with _time_limit(PROBE_SECONDS):
            return export_model(namespace[name], name, out)
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the student, not raised
        return {"error": error_text(exc)}


def probe_named(
    kind: str, settings: dict, arrays: dict, namespace: dict, out: Path, key: str
) -> dict[str, Any]:
    """Run one probe; a failure becomes an `error` entry, never an exception."""
    try:
        with _time_limit(PROBE_SECONDS):
            return {"error": None, **run_probe(kind, settings, arrays, namespace, out, key)}
    except Exception as exc:  # noqa: BLE001
        return {"error": error_text(exc)}


def run_plan(plan_dir: str | Path, out_dir: str | Path, namespace: dict) -> dict:
    """Export every model and run every probe listed in `plan_dir/plan.json`; write manifest.json."""
    plan_dir, out = Path(plan_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = json.loads((plan_dir / "plan.json").read_text())
    manifest: dict[str, Any] = {"models": {}, "probes": {}}
    for name in plan["models"]:
        manifest["models"][name] = export_named(name, namespace, out)
    for probe in plan["probes"]:
        key = probe["key"]
        with np.load(plan_dir / f"{key}.in.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        manifest["probes"][key] = probe_named(
            probe["kind"], probe["settings"], arrays, namespace, out, key
        )
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
