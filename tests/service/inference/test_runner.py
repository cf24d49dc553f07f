"""Generator backends on the CPU: each gives the eager fp32 images of the same seeds, inside and behind the app.

Tolerances: the generator's raw output (in [-1, 1]) within 1e-4 of eager fp32 (reordered float sums, fused
kernels); the served 8-bit pixels within one level of eager's (a value that close to a rounding boundary may round
the other way), with at most 1 % of the pixels off by that level.
"""

from __future__ import annotations

import base64
import gc
import io
import logging
import weakref
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from models import latents_for_seeds, load_checkpoint
from service.inference import backends, onnx_runtime
from service.inference import runner as runner_module
from service.inference.backends import BACKENDS, announce_backend, resolve_backend, with_backend
from service.inference.devices import DeviceError, resolve
from service.inference.runner import ForwardOptions, ModelRunner, warm_up_sizes
from tests.service.app_client import make_settings, serve_in_process
from tests.service.toolchain import backend_params, needs_compile_toolchain

CPU = torch.device("cpu")
SEEDS = list(range(100, 107))  # 7: not a warmed-up size


def assert_same_pixels(images: np.ndarray, reference: np.ndarray) -> None:
    assert images.shape == reference.shape and images.dtype == reference.dtype == np.uint8
    diff = np.abs(images.astype(np.int16) - reference.astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.01


@pytest.mark.parametrize("backend", backend_params(BACKENDS))
def test_each_backend_gives_eager_outputs(backend, tiny_image_checkpoint, tiny_points_checkpoint):
    for path in (tiny_image_checkpoint, tiny_points_checkpoint):
        eager = load_checkpoint(path)
        prepared = with_backend(load_checkpoint(path).generator.eval(), backend, (eager.metadata.z_dim,))
        with torch.inference_mode():
            for n in (1, 7):  # batch 1 is compiled apart from the dynamic-batch graph
                z = latents_for_seeds(SEEDS[:n], eager.metadata.z_dim)  # [n, z_dim]
                got, want = prepared(z), eager.generator(z)
                assert got.shape == want.shape
                assert (got - want).abs().max().item() <= 1e-4, (backend, path.name, n)


@pytest.mark.parametrize("backend", backend_params(["auto", "channels_last", "compile", "onnxruntime"]))
def test_the_runner_serves_eager_pixels_with_each_backend(backend, tiny_image_checkpoint):
    eager = ModelRunner(load_checkpoint(tiny_image_checkpoint), CPU, torch.float32)
    runner = ModelRunner(load_checkpoint(tiny_image_checkpoint), CPU, torch.float32, ForwardOptions(backend))
    assert runner.warm_up(warm_up_sizes(8)) > 0
    z = latents_for_seeds(SEEDS, runner.z_dim)  # [7, z_dim]
    with torch.inference_mode():
        assert_same_pixels(runner.generate(z), eager.generate(z))
        for n in (1, 3):
            assert_same_pixels(runner.generate(z[:n]), eager.generate(z[:n]))


@needs_compile_toolchain
def test_compile_warm_up_leaves_nothing_to_compile_while_serving(tiny_image_checkpoint):
    """Batch 1 and one dynamic-batch graph: sizes the warm-up never ran must not compile (seconds per request)."""
    from torch._dynamo.utils import counters

    runner = ModelRunner(load_checkpoint(tiny_image_checkpoint), CPU, torch.float32, ForwardOptions("compile"))
    runner.warm_up(warm_up_sizes(8))
    compiled = counters["stats"]["unique_graphs"]
    with torch.inference_mode():
        for n in (3, 5, 6, 7, 1, 2):
            runner.generate(latents_for_seeds(range(n), runner.z_dim))
    assert counters["stats"]["unique_graphs"] == compiled


def test_auto_is_onnxruntime_on_the_cpu_and_eager_on_cuda(tiny_image_checkpoint, tmp_path):
    cuda = torch.device("cuda")  # a device object only: nothing runs on it
    assert resolve_backend("auto", CPU, onnxruntime_installed=True) == "onnxruntime"
    assert resolve_backend("auto", CPU, onnxruntime_installed=False) == "eager"
    assert resolve_backend("auto", cuda, onnxruntime_installed=True) == "eager"
    assert resolve_backend("auto", torch.device("cuda:1"), onnxruntime_installed=False) == "eager"
    for backend in ("eager", "channels_last", "compile", "onnxruntime"):
        assert resolve_backend(backend, CPU, onnxruntime_installed=False) == backend
    assert make_settings(tmp_path).backend == "auto"  # the default
    assert make_settings(tmp_path, device="cuda", cuda_graphs=True).backend == "auto"  # eager there: graphs apply
    runner = ModelRunner(load_checkpoint(tiny_image_checkpoint), CPU, torch.float32, ForwardOptions("auto"))
    assert runner.backend == "onnxruntime"  # ONNX Runtime is installed here


def test_auto_without_onnxruntime_serves_eager_and_says_so(tiny_image_checkpoint, monkeypatch, caplog):
    monkeypatch.setattr(backends, "onnxruntime_available", lambda: False)
    with caplog.at_level(logging.INFO, logger=backends.__name__):
        assert announce_backend("auto", CPU) == "eager"
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "ONNX Runtime is not installed" in record.getMessage()
    runner = ModelRunner(load_checkpoint(tiny_image_checkpoint), CPU, torch.float32, ForwardOptions("auto"))
    assert runner.backend == "eager"
    caplog.clear()
    monkeypatch.setattr(backends, "onnxruntime_available", lambda: True)
    with caplog.at_level(logging.INFO, logger=backends.__name__):
        assert announce_backend("auto", CPU) == "onnxruntime"
    assert [r.getMessage() for r in caplog.records] == ["generator backend onnxruntime on cpu (auto)"]


def test_the_dynamo_exporter_takes_over_when_the_fast_one_fails(tiny_image_checkpoint, monkeypatch, caplog):
    checkpoint = load_checkpoint(tiny_image_checkpoint)
    z = latents_for_seeds(SEEDS, checkpoint.metadata.z_dim)  # [7, z_dim]
    with caplog.at_level(logging.WARNING, logger=onnx_runtime.__name__):
        onnx_runtime.OnnxRuntimeForward(checkpoint.generator.eval(), (checkpoint.metadata.z_dim,), 1)
    assert not caplog.records  # the fast exporter, quietly

    def failing_trace(module: torch.nn.Module, example: torch.Tensor) -> bytes:
        raise RuntimeError("tracing failed on purpose")

    monkeypatch.setattr(onnx_runtime, "_export_torchscript", failing_trace)
    with caplog.at_level(logging.WARNING, logger=onnx_runtime.__name__):
        forward = onnx_runtime.OnnxRuntimeForward(checkpoint.generator.eval(), (checkpoint.metadata.z_dim,), 1)
    (record,) = caplog.records
    assert "falling back to the dynamo exporter" in record.getMessage()
    assert "tracing failed on purpose" in record.getMessage()
    with torch.inference_mode():
        assert (forward(z) - checkpoint.generator(z)).abs().max().item() <= 1e-4


def test_settings_refuse_backends_off_their_device(tmp_path):
    with pytest.raises(ValueError, match="onnxruntime runs on the CPU only"):
        make_settings(tmp_path, device="cuda", backend="onnxruntime")
    assert make_settings(tmp_path, device="cpu", backend="onnxruntime").backend == "onnxruntime"
    if torch.cuda.is_available():
        with pytest.raises(DeviceError, match="onnxruntime runs on the CPU only"):
            resolve(make_settings(tmp_path, device="auto", backend="onnxruntime"))


def test_cuda_graphs_are_refused_off_cuda(tiny_image_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        ModelRunner(load_checkpoint(tiny_image_checkpoint), CPU, torch.float32, ForwardOptions(cuda_graphs=True))
    with pytest.raises(ValueError, match="CUDA graphs capture an eager generator"):
        ModelRunner(
            load_checkpoint(tiny_image_checkpoint),
            torch.device("cuda"),
            torch.float32,
            ForwardOptions("onnxruntime", cuda_graphs=True),
        )
    with pytest.raises(ValueError, match="cuda_graphs needs a CUDA device"):
        make_settings(tmp_path, device="cpu", cuda_graphs=True)
    with pytest.raises(ValueError, match="use backend eager or channels_last"):
        make_settings(tmp_path, device="auto", cuda_graphs=True, backend="compile")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="cuda_graphs needs a CUDA device"):
            resolve(make_settings(tmp_path, device="auto", cuda_graphs=True))


def _pixels(body: dict) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(image["data"])))) for image in body["images"]]


@pytest.mark.anyio
@pytest.mark.parametrize("backend", backend_params(["auto", "compile", "onnxruntime"]))
async def test_the_app_serves_the_same_images_with_each_backend(models_dir, backend):
    """Loaded and warmed up on the loading thread, run on the engine's worker thread, as in production."""
    request = {"model": "digits", "seed": 40, "n": 5}
    answers = {}
    for name in ("eager", backend):
        async with serve_in_process(make_settings(models_dir, backend=name, max_batch_size=8)) as client:
            response = await client.post("/v1/sample", json=request)
            assert response.status_code == 200, response.text
            answers[name] = _pixels(response.json())
    for got, want in zip(answers[backend], answers["eager"], strict=True):
        assert_same_pixels(got, want)


class _GraphsOnTheCpu:
    """Stands in for GraphedForward on the CPU: keeps the forward it is given, as the CUDA graphs do."""

    def __init__(self, forward, item_shape, input_dtype, buckets, device, label_shape=None):
        self.forward, self.buckets, self.closed = forward, buckets, False

    def __call__(self, batch):
        return self.forward(batch)

    def close(self):
        self.closed = True


def test_a_retired_runner_with_graphs_is_freed_without_a_full_collection(tiny_image_checkpoint, monkeypatch):
    # The graphs hold the forward they captured; if that forward were a bound method of the runner, the runner would
    # sit in a reference cycle that only the cyclic collector frees (rare after the server's gc.freeze()).
    monkeypatch.setattr(runner_module, "GraphedForward", _GraphsOnTheCpu)
    runner = ModelRunner(load_checkpoint(tiny_image_checkpoint), CPU, torch.float32, ForwardOptions(cuda_graphs=True))
    graphs: Any = runner._graphed  # the stand-in, by the monkeypatch
    assert isinstance(graphs, _GraphsOnTheCpu)
    with torch.inference_mode():
        assert graphs(torch.zeros(2, runner.z_dim)).shape[0] == 2
    ref = weakref.ref(runner)
    gc.disable()
    try:
        runner.close()
        assert graphs.closed and runner._graphed is None
        with pytest.raises(RuntimeError, match="has retired"):
            runner.generate(torch.zeros(1, runner.z_dim))
        del runner
        assert ref() is None
    finally:
        gc.enable()


def test_a_runner_without_graphs_is_freed_by_reference_counting(tiny_image_checkpoint):
    runner = ModelRunner(load_checkpoint(tiny_image_checkpoint), CPU, torch.float32)
    with torch.inference_mode():
        runner.generate(torch.zeros(3, runner.z_dim))
    ref = weakref.ref(runner)
    gc.disable()
    try:
        del runner
        assert ref() is None
    finally:
        gc.enable()
