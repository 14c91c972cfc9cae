"""How far above its accuracy threshold does each reference solution land, seed after seed?

    python tools/seed_study.py                      # assignments 2, 3, 4 and 6, seeds 0-9
    python tools/seed_study.py --only 02 --seeds 12 --json docs/seed-study.json

For every seed, the solution notebook's own seed line (`keras.utils.set_random_seed(42)` or
`torch.manual_seed(42)`) is set to that seed and the notebook is graded by the kit's real
grader (sandboxed kernel, the grader's own accuracy measurement). The data split keeps the
notebook's seed: it is part of the recipe, not of the luck. Prints, per model, the mean,
standard deviation and minimum accuracy the grader measured, the threshold in the suite and
its margin in standard deviations. Needs MNIST (MNIST_KIT_DATA); about 2-3 minutes per seed
for all four assignments on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from mnist_kit.grading.assignments import find_assignment
from mnist_kit.grading.engine import Grader

ROOT = Path(__file__).resolve().parents[1]
SEED_LINE = re.compile(r"(set_random_seed|manual_seed)\(42\)")
STUDIED = ("02-keras-mlp", "03-keras-cnn", "04-pytorch", "06-beyond-99")


def seeded_copy(name: str, seed: int, folder: Path) -> Path:
    """The solution notebook of `name` with its framework seed set to `seed`."""
    nb = nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)
    changed = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source, count = SEED_LINE.subn(rf"\g<1>({seed})", cell.source)
            changed += count
    if changed != 1:
        raise SystemExit(f"{name}: expected one framework seed line, found {changed}")
    path = folder / f"{name}-seed{seed}.ipynb"
    nbformat.write(nb, path)
    return path


def thresholds(name: str) -> dict[str, float]:
    """model name -> accuracy threshold, read from the assignment's visible suite."""
    from mnist_kit.grading.assignments import suite_module

    suite = suite_module(find_assignment(name))
    found = getattr(suite, "THRESHOLDS", None)
    if found is None:
        found = {"model": suite.THRESHOLD}
    return dict(found)


def study(grader: Grader, seeds: list[int]) -> dict:
    name = grader.assignment.name
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            started = time.perf_counter()
            result = grader.grade(seeded_copy(name, seed, Path(folder)))
            accuracy = {
                key.removesuffix(".test_accuracy"): value
                for key, value in result.measurements.items()
                if key.endswith(".test_accuracy")
            }
            runs.append(
                {
                    "seed": seed,
                    "score": result.score,
                    "max_score": result.max_score,
                    "accuracy": accuracy,
                    "seconds": round(time.perf_counter() - started, 1),
                    "error": result.error,
                }
            )
            shown = ", ".join(f"{k} {v:.4f}" for k, v in accuracy.items())
            print(
                f"  {name} seed {seed}: {result.score:g}/{result.max_score:g}  {shown}", flush=True
            )
    return {"assignment": name, "runs": runs, "summary": summarise(runs, name)}


def summarise(runs: list[dict], name: str) -> dict:
    """Per model: mean, std, min and max accuracy over the seeds, against today's threshold."""
    summary = {}
    for model, threshold in thresholds(name).items():
        values = [run["accuracy"][model] for run in runs if model in run["accuracy"]]
        if len(values) < 2:
            continue
        mean, std = statistics.mean(values), statistics.stdev(values)
        summary[model] = {
            "threshold": threshold,
            "n": len(values),
            "mean": round(mean, 5),
            "std": round(std, 5),
            "min": min(values),
            "max": max(values),
            "margin_sigma": round((mean - threshold) / std, 2) if std else None,
            "min_minus_threshold": round(min(values) - threshold, 5),
        }
    return summary


def markdown(results: list[dict]) -> str:
    """The study as the Markdown page docs/seed-study.md."""
    lines = [
        "# Seed study: is each accuracy threshold safe for a correct answer?",
        "",
        "Made by `python tools/seed_study.py --json docs/seed-study.json`, then",
        "`python tools/seed_study.py --from-json docs/seed-study.json --markdown docs/seed-study.md`.",
        "Each reference solution was graded by the kit's real grader once per seed, with the",
        "notebook's framework seed set to that seed; accuracy is the grader's own measurement on",
        "the 10,000 MNIST test images. A threshold is kept at least 3 standard deviations below the",
        "mean and below the minimum.",
        "",
        "| assignment | model | seeds | mean | std | min | max | threshold | margin (std) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for model, s in result["summary"].items():
            lines.append(
                f"| {result['assignment']} | `{model}` | {s['n']} | {s['mean']:.4f} | {s['std']:.4f} | "
                f"{s['min']:.4f} | {s['max']:.4f} | {s['threshold']} | {s['margin_sigma']} |"
            )
    lines += [
        "",
        "Per seed (score out of the maximum under the thresholds of the day it ran; accuracy of each",
        "model):",
        "",
    ]
    for result in results:
        runs = "; ".join(
            f"{run['seed']}: {run['score']:g}/{run['max_score']:g} "
            + " ".join(f"{v:.4f}" for v in run["accuracy"].values())
            for run in result["runs"]
        )
        lines.append(f"- {result['assignment']}: {runs}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="assignments (default: 02 03 04 06)")
    parser.add_argument("--seeds", type=int, default=10, help="how many seeds (0..N-1)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--markdown", type=Path, help="also write the results as Markdown here")
    parser.add_argument(
        "--from-json",
        type=Path,
        nargs="*",
        help="summarise earlier --json files instead of grading",
    )
    args = parser.parse_args()
    if args.from_json:
        results = [r for path in args.from_json for r in json.loads(path.read_text())]
        for result in results:  # thresholds as the suites hold them now
            result["summary"] = summarise(result["runs"], result["assignment"])
        finish(results, args)
        return
    names = [find_assignment(n).name for n in args.only] if args.only else list(STUDIED)
    graders = [Grader(name) for name in names]  # every module loaded before the long run starts
    results = []
    for grader in graders:
        print(f"{grader.assignment.name}: {args.seeds} seeds", flush=True)
        results.append(study(grader, list(range(args.seeds))))
        if args.json:  # after each assignment, so a long run loses nothing
            args.json.write_text(json.dumps(merged(args.json, results), indent=1) + "\n")
    if args.json:
        results = json.loads(args.json.read_text())  # the page shows every assignment studied
    finish(results, args)


HAND_WRITTEN = "(written by hand)"  # a Markdown section whose heading says so is kept as it is


def merged(path: Path, results: list[dict]) -> list[dict]:
    """The results already in `path` with these assignments' entries replaced (or added)."""
    old = json.loads(path.read_text()) if path.exists() else []
    new = {r["assignment"]: r for r in results}
    kept = [new.pop(r["assignment"], r) for r in old]
    return kept + list(new.values())


def write_markdown(path: Path, results: list[dict]) -> None:
    """Write the page, keeping its hand-written sections (from the first such heading on)."""
    text = markdown(results)
    old = path.read_text() if path.exists() else ""
    start = next(
        (m.start() for m in re.finditer(r"^## .*$", old, re.M) if HAND_WRITTEN in m.group()), None
    )
    path.write_text(text if start is None else text + "\n" + old[start:])


def finish(results: list[dict], args: argparse.Namespace) -> None:
    if args.markdown:
        write_markdown(args.markdown, results)
    print(
        f"\n{'assignment':<14}{'model':<11}{'n':>3}{'mean':>8}{'std':>8}{'min':>8}{'thresh':>8}{'margin':>8}"
    )
    for result in results:
        for model, s in result["summary"].items():
            margin = f"{s['margin_sigma']:.1f}s" if s["margin_sigma"] is not None else "-"
            print(
                f"{result['assignment']:<14}{model:<11}{s['n']:>3}{s['mean']:>8.4f}{s['std']:>8.4f}"
                f"{s['min']:>8.4f}{s['threshold']:>8.3f}{margin:>8}"
            )


if __name__ == "__main__":
    main()
