# One entry point for set-up, tests and serving. Everything installs itself into .venv.
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
MODELS_DIR ?= bundled_models
HOST       ?= 127.0.0.1
PORT       ?= 8000

.PHONY: venv sysdeps test reliability serve clean

# System packages, installed from Debian's when missing (apt-get; sudo unless root):
# - before the venv is made: python3.X-venv, since Debian's Python leaves out ensurepip and `python3 -m venv`
#   fails without it;
# - for the tests (`sysdeps`): docker-compose (validates the compose files), nginx (the load balancer) and
#   prometheus (scrapes a live server), which the deployment tests drive for real; g++ and Python's C headers
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

# deploy/install.sh is the one install path, shared with the Dockerfile: pinned torch first, then the project.
$(VENV)/.installed: pyproject.toml deploy/install.sh | $(BIN)/python
	sh deploy/install.sh $(BIN)/python train,serve,dev editable
	touch $@

venv: $(VENV)/.installed

test: sysdeps venv
	$(BIN)/python -m pytest -q

# The whole reliability suite at full size: 20,000 seeded requests at concurrency 128 (and a small-queue run),
# over 1,000 schemathesis cases per server, hostile input, hot reload, shutdown. Figures print as JSON lines.
reliability: venv
	$(BIN)/python -m pytest tests/reliability -m '' -s -q

serve: venv
	$(BIN)/wgan-serve --models-dir $(MODELS_DIR) --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) build *.egg-info
