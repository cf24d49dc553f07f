# One entry point for set-up, tests and serving. Everything installs itself into .venv.
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
MODELS_DIR ?= bundled_models
HOST       ?= 127.0.0.1
PORT       ?= 8000

.PHONY: venv sysdeps test reliability serve clean

# System tools the deployment tests drive for real: docker-compose (validates the compose files),
# nginx (the load balancer) and prometheus (scrapes a live server). Installed from Debian's packages when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
sysdeps:
	@missing=""; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(BIN)/python:
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
