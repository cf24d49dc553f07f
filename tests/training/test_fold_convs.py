import copy

import pytest
import torch
from torch import nn

from models import ImageGeneratorConfig, build_generator
from training.fold_convs import FoldConvTranspose2d, use_fold_convs


def _assert_close_rel(a: torch.Tensor | None, b: torch.Tensor | None, rel: float = 1e-5) -> None:
    assert a is not None and b is not None
    assert (a - b).abs().max().item() <= rel * max(b.abs().max().item(), 1e-12)


@pytest.mark.parametrize(
    ("c_in", "kernel", "stride", "padding", "output_padding", "size"),
    [(8, 4, 2, 1, 0, 6), (5, 3, 1, 1, 0, 7), (4, 4, 1, 0, 0, 1), (6, 3, 2, 1, 1, 5)],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_same_output_and_gradients_as_conv_transpose(
    c_in, kernel, stride, padding, output_padding, size, channels_last
):
    torch.manual_seed(0)
    ref = nn.ConvTranspose2d(c_in, 1, kernel, stride, padding, output_padding)
    fold = FoldConvTranspose2d.replacing(copy.deepcopy(ref))
    x = torch.randn(3, c_in, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x_ref, x_fold = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_ref, out_fold = ref(x_ref), fold(x_fold)  # [3, 1, H_out, W_out]
    assert out_fold.shape == out_ref.shape
    _assert_close_rel(out_fold, out_ref)
    weights = torch.randn_like(out_ref)
    (out_ref * weights).sum().backward()
    (out_fold * weights).sum().backward()
    _assert_close_rel(x_fold.grad, x_ref.grad)
    _assert_close_rel(fold.weight.grad, ref.weight.grad)
    assert fold.bias is not None and ref.bias is not None
    _assert_close_rel(fold.bias.grad, ref.bias.grad)


def test_generator_keeps_its_parameters_state_dict_and_random_stream():
    torch.manual_seed(0)
    gen = build_generator(ImageGeneratorConfig(z_dim=16, channels=1, resolution=16, width=8))
    ref = copy.deepcopy(gen)
    params = list(gen.parameters())
    rng = torch.get_rng_state()
    assert use_fold_convs(gen) == 1  # only the last layer has one output channel
    assert torch.equal(rng, torch.get_rng_state())
    assert [p is q for p, q in zip(params, gen.parameters(), strict=True)] == [True] * len(params)
    assert list(gen.state_dict()) == list(ref.state_dict())
    assert sum(isinstance(m, FoldConvTranspose2d) for m in gen.modules()) == 1
    gen.eval()
    ref.eval()
    z = torch.randn(4, 16)
    _assert_close_rel(gen(z), ref(z))


def test_colour_generators_are_left_alone():
    gen = build_generator(ImageGeneratorConfig(z_dim=16, channels=3, resolution=16, width=8))
    assert use_fold_convs(gen) == 0
    assert not any(isinstance(m, FoldConvTranspose2d) for m in gen.modules())
