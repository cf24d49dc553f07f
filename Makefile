# One entry point for set-up, tests and serving. Everything installs itself into .venv.
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
MODELS_DIR ?= bundled_models
HOST       ?= 127.0.0.1
PORT       ?= 8000

.PHONY: venv test serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip

# deploy/install.sh is the one install path, shared with the Dockerfile: pinned torch first, then the project.
$(VENV)/.installed: pyproject.toml deploy/install.sh | $(BIN)/python
	sh deploy/install.sh $(BIN)/python train,serve,dev editable
	touch $@

venv: $(VENV)/.installed

test: venv
	$(BIN)/python -m pytest -q

serve: venv
	$(BIN)/wgan-serve --models-dir $(MODELS_DIR) --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) build *.egg-info
