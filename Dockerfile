# syntax=docker/dockerfile:1
#
# Serving image, CPU by default:
#   docker build -t wgan-serve .
# CUDA (torch's CUDA wheels carry the CUDA runtime; the host needs the NVIDIA driver and container toolkit):
#   docker build -t wgan-serve:cuda --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#
# Run: docker run -p 8000:8000 wgan-serve   (serves the bundled model; mount your own at /models)
#
# Training image (target `train`; add the CUDA build argument above for GPUs), for `docker compose --profile train`
# and the Kubernetes jobs in deploy/k8s/training:
#   docker build --target train -t wgan-serve:train .
#   docker run --rm -v "$PWD/runs:/runs" wgan-serve:train --config configs/mnist5k.yaml --out /runs/mnist5k

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a virtual environment with the serving dependencies only --------------------------------------
FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md requirements-serve.lock ./
COPY models ./models
COPY service ./service
COPY deploy/install.sh ./deploy/install.sh
# The same install script the Makefile and CI use; only the `serve` extra (no training or test packages), at
# the exact versions and hashes of requirements-serve.lock. torch alone comes from TORCH_INDEX_URL, at the lock's
# version: the CPU and CUDA builds are different files with different hashes (see deploy/install.sh).
RUN TORCH_INDEX_URL="${TORCH_INDEX_URL}" sh deploy/install.sh /opt/venv/bin/python serve requirements-serve.lock

# ---- train-build: a virtual environment with the training dependencies --------------------------------------
FROM ${PYTHON_IMAGE} AS train-build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md requirements.lock ./
COPY models ./models
COPY training ./training
COPY deploy/install.sh ./deploy/install.sh
# The same script again, with the `train` extra from requirements.lock: the lock that covers training (it also
# pins the serving and test packages, which the script installs with it).
RUN TORCH_INDEX_URL="${TORCH_INDEX_URL}" sh deploy/install.sh /opt/venv/bin/python train requirements.lock

# ---- train: wgan-train (and torchrun) as a non-root user; runs and checkpoints go to a mounted /runs ---------
FROM ${PYTHON_IMAGE} AS train
RUN groupadd --system --gid 10001 wgan \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin wgan
COPY --from=train-build /opt/venv /opt/venv
COPY configs/ /app/configs/
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
VOLUME ["/runs"]
# `docker stop` interrupts wgan-train as Ctrl-C does: a single-process run saves its resume state, then exits.
STOPSIGNAL SIGINT
ENTRYPOINT ["wgan-train"]

# ---- runtime: the environment, the bundled model, a non-root user ------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 wgan \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin wgan
COPY --from=build /opt/venv /opt/venv
COPY bundled_models/ /models/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    WGAN_MODELS_DIR=/models \
    WGAN_HOST=0.0.0.0 \
    WGAN_PORT=8000
USER 10001:10001
EXPOSE 8000
VOLUME ["/models"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WGAN_PORT', '8000') + '/readyz', timeout=2)"]
# Exec form: wgan-serve is PID 1 and receives SIGTERM itself, so `docker stop` drains in-flight requests.
STOPSIGNAL SIGTERM
ENTRYPOINT ["wgan-serve"]
