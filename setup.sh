#!/usr/bin/env bash
# Install mnist-kit and everything its lessons, grader and tests need, into the current Python.
# PyTorch 2.13.0 goes first, on its own: on PyPI the Linux x86_64 wheel of torch is a CUDA build
# of several GB. Without an NVIDIA GPU we ask PyTorch's CPU-only index first (about 190 MB) and
# fall back to the plain install where that index cannot be reached (an offline mirror, which
# then serves whatever torch wheel it holds). With a GPU, the plain install gets the CUDA build.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

TORCH="torch==2.13.0"
if ! "$PY" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "$PY" -m pip install --quiet "$TORCH"
  else
    "$PY" -m pip install --quiet --retries 0 --timeout 15 \
        --index-url https://download.pytorch.org/whl/cpu "$TORCH" \
      || { echo "PyTorch's CPU index is unreachable: installing $TORCH from the default index";
           "$PY" -m pip install --quiet "$TORCH"; }
  fi
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
