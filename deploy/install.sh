#!/bin/sh
# Installs the project into an existing Python environment: the pinned torch build first (so nothing
# pulls a CUDA build by accident), then the project with the requested extras.
#
#   deploy/install.sh PYTHON EXTRAS [editable]
#
# PYTHON   the interpreter of the target environment (e.g. .venv/bin/python)
# EXTRAS   comma-separated extras: serve, train, dev
# editable install the project in editable mode (development); otherwise a normal install (images)
# TORCH_INDEX_URL (environment, optional): where torch comes from, e.g. the PyTorch CPU or CUDA wheel index
#   when building an image; unset, pip's configured index is used.
#
# The Makefile (and so CI) and the Dockerfile both install through this script.
set -eu

PY="${1:?usage: install.sh PYTHON EXTRAS [editable]}"
EXTRAS="${2:?usage: install.sh PYTHON EXTRAS [editable]}"
MODE="${3:-}"
TORCH_VERSION="2.13.0"
PIP="$PY -m pip install --quiet --no-cache-dir --disable-pip-version-check"

if [ -n "${TORCH_INDEX_URL:-}" ]; then
    $PIP "torch==${TORCH_VERSION}" --index-url "$TORCH_INDEX_URL"
else
    $PIP "torch==${TORCH_VERSION}"
fi

if [ "$MODE" = "editable" ]; then
    $PIP -e ".[${EXTRAS}]"
else
    $PIP ".[${EXTRAS}]"
fi
