# One entry point for set-up, tests and serving. Everything installs itself into .venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_VERSION := 2.13.0
MODELS_DIR ?= bundled_models
PORT ?= 8000

.PHONY: venv test serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	# The pinned CPU build of torch first, so nothing pulls a CUDA build.
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -e '.[train,serve,dev]'
	touch $@

venv: $(VENV)/.installed

test: venv
	$(BIN)/python -m pytest -q

serve: venv
	$(BIN)/wgan-serve --models-dir $(MODELS_DIR) --host 127.0.0.1 --port $(PORT)

clean:
	rm -rf $(VENV) build *.egg-info
