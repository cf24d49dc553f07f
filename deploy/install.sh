#!/bin/sh
# Installs the project into an existing Python environment: first the exact versions of a lock file, each
# checked against its hashes, then the project itself.
#
#   deploy/install.sh PYTHON EXTRAS LOCK [editable]
#
# PYTHON   the interpreter of the target environment (e.g. .venv/bin/python)
# EXTRAS   comma-separated extras: serve, train, dev
# LOCK     the lock that covers those extras: requirements.lock (train,serve,dev) or requirements-serve.lock
#          (serve); `make lock` writes both
# editable install the project in editable mode (development); otherwise a normal install (images)
# TORCH_INDEX_URL (environment, optional): take torch from this index (the PyTorch CPU or CUDA wheel index, when
#   building an image) instead of the lock's CPU build; the version stays the lock's.
#
# The Makefile (and so CI) and the Dockerfile both install through this script.
set -eu

USAGE="usage: install.sh PYTHON EXTRAS LOCK [editable]"
PY="${1:?$USAGE}"
EXTRAS="${2:?$USAGE}"
LOCK="${3:?$USAGE}"
MODE="${4:-}"
PIP="$PY -m pip install --quiet --no-cache-dir --disable-pip-version-check"

# e.g. 2.13.0+cpu
TORCH=$(sed -n 's/^torch==\([^ \\]*\).*/\1/p' "$LOCK")
if [ -z "$TORCH" ]; then
    echo "install.sh: $LOCK pins no torch; regenerate it with 'make lock'" >&2
    exit 2
fi

# --no-deps: the lock already names every dependency, so nothing outside it is resolved or fetched.
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    # torch stays outside the hash check here: each build of one version (CPU, each CUDA) is a different file
    # with its own hash, and the CUDA builds bring nvidia-* and triton wheels of their own that the lock (made
    # with the CPU build) does not name. Everything else is installed from the lock as usual; torch then comes
    # from the index, at the lock's version, and its own dependencies are already in place.
    LOCKED=$(mktemp)
    trap 'rm -f "$LOCKED"' EXIT
    awk '/^torch==/ { skip = 1; next } skip && /^[ \t]/ { next } { skip = 0; print }' "$LOCK" >"$LOCKED"
    $PIP --require-hashes --no-deps -r "$LOCKED"
    $PIP "torch==${TORCH%%+*}" --index-url "$TORCH_INDEX_URL"
else
    $PIP --require-hashes --no-deps -r "$LOCK"
fi

# The project itself, built with the lock's setuptools (no build isolation) and with --no-index: every
# requirement of the extras must already be installed, so one that the lock lacks fails here instead of being
# fetched at whatever version is newest.
if [ "$MODE" = "editable" ]; then
    $PIP --no-index --no-build-isolation -e ".[${EXTRAS}]"
else
    $PIP --no-index --no-build-isolation ".[${EXTRAS}]"
fi
$PY -m pip check
