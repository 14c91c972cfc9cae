#!/usr/bin/env bash
# Install mnist-kit and everything its lessons, grader and tests need, into the current Python.
# PyTorch 2.13.0 goes first, on its own: a bare "torch" requirement would let pip pick a multi-GB
# CUDA build. On a machine with an NVIDIA GPU, install the CUDA build you want before running this.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install --quiet "torch==2.13.0"
fi
"$PY" -m pip install --quiet -e ".[dev]"

# Browser tests drive Debian's Chromium; the grader sandboxes with bubblewrap. Both are optional
# for students; install them where apt is available and we are root.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=""
  command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
  command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
  if [ -n "$missing" ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
fi
# nbgrader's and ipywidgets' front-end parts for JupyterLab.
"$PY" -m jupyter labextension list 2>&1 | grep -q "jupyterlab_widgets" || echo "note: the JupyterLab widgets extension was not found; widgets will not render"
echo "mnist-kit installed: run 'mnist-kit doctor' to see what it found."
