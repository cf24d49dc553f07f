"""A class-conditional generator on every backend: the latents and the class weights in, eager's pixels out.

Tolerances as in test_runner.py: 8-bit pixels within one level of eager's, at most 1 % of them off.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from models import latents_for_seeds, load_checkpoint
from service.inference import runner as runner_module
from service.inference.runner import ForwardOptions, ModelRunner, warm_up_sizes
from service.inputs.labels import one_hot
from tests.service.inference.test_runner import assert_same_pixels
from tests.service.toolchain import backend_params

CPU = torch.device("cpu")
SEEDS = [3, 3, 4, 5, 6, 7, 8]  # 7: not a warmed-up size; seed 3 twice, with two classes


def weights() -> torch.Tensor:
    """Class weights [7, 10]: one-hot rows, and two rows between two classes."""
    w = one_hot([7, 1, 0, 9, 2, 2, 5], 10)
    w[5] = torch.zeros(10).index_fill_(0, torch.tensor([2, 3]), 0.5)
    w[6] = 0.25 * one_hot([5], 10)[0] + 0.75 * one_hot([6], 10)[0]
    return w


@pytest.mark.parametrize("backend", backend_params(["auto", "eager", "channels_last", "compile", "onnxruntime"]))
def test_each_backend_serves_eager_pixels_of_a_conditional_model(backend, tiny_conditional_checkpoint):
    eager = ModelRunner(load_checkpoint(tiny_conditional_checkpoint), CPU, torch.float32)
    runner = ModelRunner(load_checkpoint(tiny_conditional_checkpoint), CPU, torch.float32, ForwardOptions(backend))
    assert runner.n_classes == 10
    runner.warm_up(warm_up_sizes(2))
    z, w = latents_for_seeds(SEEDS, runner.z_dim), weights()
    with torch.inference_mode():
        want = eager.generate(z, w)
        assert_same_pixels(runner.generate(z, w), want)
        for n in (1, 3):
            assert_same_pixels(runner.generate(z[:n], w[:n]), want[:n])
        assert (want[0] != want[1]).any(), "one seed, two classes: two images"
        with pytest.raises(ValueError, match=r"class weights \[7, 10\]"):
            runner.generate(z)


def test_the_critic_scores_every_class_and_refuses_labels(tiny_conditional_checkpoint):
    runner = ModelRunner(load_checkpoint(tiny_conditional_checkpoint), CPU, torch.float32)
    images = torch.randint(0, 256, (4, *runner.score_item_shape), dtype=torch.uint8)
    with torch.inference_mode():
        assert runner.score(images).shape == (4, 10)
        with pytest.raises(ValueError, match="every class"):
            runner.score(images, torch.zeros(4))


class _GraphsOnTheCpu:
    """Stands in for GraphedForward on the CPU: keeps what it is given, as the CUDA graphs capture it."""

    def __init__(self, forward, item_shape, input_dtype, buckets, device, label_shape=None):
        self.forward, self.buckets, self.label_shape = forward, buckets, label_shape

    def __call__(self, batch, labels=None):
        return self.forward(batch, labels)


def test_cuda_graphs_capture_the_labels_as_a_second_input(tiny_conditional_checkpoint, monkeypatch):
    """The graphs' capture needs a GPU (docs/gpu.md); here: the runner gives them the class weights' shape, and the
    forward they would capture takes the labels and gives eager's pixels."""
    monkeypatch.setattr(runner_module, "GraphedForward", _GraphsOnTheCpu)
    runner = ModelRunner(
        load_checkpoint(tiny_conditional_checkpoint), CPU, torch.float32, ForwardOptions(cuda_graphs=True)
    )
    graphs: Any = runner._graphed
    assert isinstance(graphs, _GraphsOnTheCpu) and graphs.label_shape == (10,)
    z, w = latents_for_seeds(SEEDS, runner.z_dim), weights()
    with torch.inference_mode():
        assert_same_pixels(graphs(z, w).numpy(), runner.generate(z, w))
