# One entry point for set-up, tests and serving. Everything installs itself into .venv.
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
MODELS_DIR ?= bundled_models
HOST       ?= 127.0.0.1
PORT       ?= 8000

.PHONY: venv sysdeps lint test reliability serve lock clean gpu-wheels gpu-check

# System packages, installed from Debian's when missing (apt-get; sudo unless root):
# - before the venv is made: python3.X-venv, since Debian's Python leaves out ensurepip and `python3 -m venv`
#   fails without it;
# - for the tests (`sysdeps`): docker-compose (validates the compose files), nginx (the load balancer) and
#   prometheus (scrapes a live server), which the deployment tests drive for real; chromium and chromium-driver,
#   the real browser the playground's tests drive through Selenium; g++ and Python's C headers
#   (python3.X-dev), which the `compile` generator backend needs: inductor builds its C++ kernels against
#   Python.h. Without them those tests are skipped with a reason that names the missing tool.
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PY_VER    := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
HAS_PY_H  := import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("include"), "Python.h")))
# Installs the packages named in the shell variable `missing`, if any.
APT_MISSING = if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

sysdeps:
	@missing=""; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	command -v "$${CXX:-g++}" >/dev/null 2>&1 || missing="$$missing g++"; \
	$(PYTHON) -c '$(HAS_PY_H)' || missing="$$missing python$(PY_VER)-dev"; \
	$(APT_MISSING)

$(BIN)/python:
	@[ -n "$(PY_VER)" ] || { echo "$(PYTHON) does not run: the set-up needs Python 3.11 (Debian: python3)"; exit 1; }
	@missing=""; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || missing=" python$(PY_VER)-venv"; \
	$(APT_MISSING)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip

# deploy/install.sh is the one install path, shared with the Dockerfile: the exact versions of the lock (hashes
# checked), then the project itself.
$(VENV)/.installed: pyproject.toml requirements.lock deploy/install.sh | $(BIN)/python
	sh deploy/install.sh $(BIN)/python train,serve,dev requirements.lock editable
	touch $@

venv: $(VENV)/.installed

# The gates, configured in pyproject.toml: ruff's lint rules and its formatting, then mypy (strict on the packages).
# `make test` runs them before the tests, so a lint or type error fails the build like a failing test does.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: sysdeps venv lint
	$(BIN)/python -m pytest -q

# The whole reliability suite at full size: 20,000 seeded requests at concurrency 128 (and a small-queue run),
# over 1,000 schemathesis cases per server, hostile input, hot reload, shutdown. Figures print as JSON lines.
reliability: venv
	$(BIN)/python -m pytest tests/reliability -m '' -s -q

serve: venv
	$(BIN)/wgan-serve --models-dir $(MODELS_DIR) --host $(HOST) --port $(PORT)

# The locks: every package with its exact version and hashes, for Python 3.11 on Linux x86_64 (what CI runs).
# requirements.lock holds the extras `make venv` installs (train, serve, dev); requirements-serve.lock the
# image's (serve). After editing the dependencies in pyproject.toml, run `make lock` and commit both files: pins
# already in a lock are kept where pyproject.toml still allows them. `make lock LOCK_ARGS=--upgrade` moves every
# package to its newest release, `LOCK_ARGS="--upgrade-package NAME"` one of them; then run `make test`.
# pip-compile resolves through pip, so it sees the indexes and local wheels of pip's own configuration; that must
# offer torch's CPU build (here a local wheel; elsewhere add LOCK_ARGS="--extra-index-url
# https://download.pytorch.org/whl/cpu"), or the recipe stops rather than lock PyPI's CUDA build. pip-compile runs
# from a throwaway environment, never from .venv.
PIP_TOOLS  := pip-tools==7.6.2
LOCK_ENV   := build/lock-env
LOCK_ARGS  ?=
# --unsafe-package wgan-serve: the dev extra names the project itself (wgan-serve[onnx]); the project is installed
# from the work tree, not from the lock. Naming it replaces pip-tools' default list, so setuptools (a build
# dependency: the project is built without build isolation) is pinned like any other package. pip-compile then
# warns that wgan-serve is not pinned: expected.
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_ENV)/bin/pip-compile --quiet --generate-hashes \
	--all-build-deps --strip-extras --unsafe-package wgan-serve --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock:
	rm -rf $(LOCK_ENV)
	$(PYTHON) -m venv $(LOCK_ENV)
	$(LOCK_ENV)/bin/python -m pip install --quiet --disable-pip-version-check $(PIP_TOOLS)
	$(PIP_COMPILE) --extra train --extra serve --extra dev --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra serve --output-file requirements-serve.lock pyproject.toml
	rm -rf $(LOCK_ENV)
	@for lock in requirements.lock requirements-serve.lock; do \
		grep -q '^torch==[^ ]*+cpu ' $$lock || { echo "$$lock: torch is not the CPU build; see the Makefile"; exit 1; }; \
	done

clean:
	rm -rf $(VENV) build *.egg-info

# The GPU check (benchmarks/gpu_check.py, docs/gpu.md): `make gpu-wheels` where PyPI is reachable downloads the
# serving stack as Python 3.12 wheels into build/gpu-wheels; `make gpu-check OUT=DIR` on the GPU machine runs every
# CUDA step under its own limit (8 minutes in all); `make gpu-check-dry OUT=DIR` runs the same steps on the CPU.
gpu-wheels:
	$(BIN)/python benchmarks/gpu_check.py --download

gpu-check:
	python3 benchmarks/gpu_check.py

gpu-check-dry: venv
	$(BIN)/python benchmarks/gpu_check.py --dry
