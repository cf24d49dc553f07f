"""Transposed convolutions with one output channel as a matrix product and col2im, for the CPU trainer.

On one CPU thread oneDNN computes a transposed convolution to a single channel (the generator's last layer,
32 -> 1 channels at 16x16 -> 32x32 for mnist5k) several times slower than a plain GEMM followed by col2im
(`F.fold`), and its backward likewise. `FoldConvTranspose2d` computes the same function with the same
parameters: the state dict, the optimiser's parameters and the checkpoint are unchanged, only the kernels differ
(results agree to float rounding). `use_fold_convs` swaps it in for every eligible layer of a network.
"""

from __future__ import annotations

from typing import TypeGuard

import torch
import torch.nn.functional as F
from torch import nn


class FoldConvTranspose2d(nn.ConvTranspose2d):
    """`nn.ConvTranspose2d` (groups 1, dilation 1, zero padding, one output channel) via GEMM + col2im."""

    @staticmethod
    def eligible(module: nn.Module) -> TypeGuard[nn.ConvTranspose2d]:
        return (
            type(module) is nn.ConvTranspose2d
            and module.out_channels == 1
            and module.groups == 1
            and module.dilation == (1, 1)
            and module.padding_mode == "zeros"
            and isinstance(module.padding, tuple)
        )

    @classmethod
    def replacing(cls, module: nn.ConvTranspose2d) -> FoldConvTranspose2d:
        """A module holding `module`'s own parameters (same tensors, same names); draws no random numbers."""
        fold: FoldConvTranspose2d = nn.utils.skip_init(
            cls,
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            stride=module.stride,
            padding=module.padding,
            output_padding=module.output_padding,
            groups=module.groups,
            bias=module.bias is not None,
            dilation=module.dilation,
            device=module.weight.device,
            dtype=module.weight.dtype,
        )
        fold.weight = module.weight
        fold.bias = module.bias
        fold.train(module.training)
        return fold

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None:
            return super().forward(x, output_size)
        n, c, h, w = x.shape  # [N, C_in, H, W]
        assert not isinstance(self.padding, str), "eligible() admits numeric padding only"
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oph, opw = self.output_padding
        out_h, out_w = (h - 1) * sh - 2 * ph + kh + oph, (w - 1) * sw - 2 * pw + kw + opw
        # Each input pixel spreads weight[c, 0] (kh x kw) over the output: one GEMM gives every such block.
        blocks = torch.matmul(x.permute(0, 2, 3, 1).reshape(n, h * w, c), self.weight.reshape(c, kh * kw))
        out = F.fold(blocks.transpose(1, 2), (out_h, out_w), (kh, kw), padding=(ph, pw), stride=(sh, sw))
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)  # [N, 1, H_out, W_out]


def use_fold_convs(network: nn.Module) -> int:
    """Replace every eligible transposed convolution of `network` in place; returns how many were replaced."""
    replaced = 0
    for parent in list(network.modules()):
        for name, child in list(parent.named_children()):
            if FoldConvTranspose2d.eligible(child):
                setattr(parent, name, FoldConvTranspose2d.replacing(child))
                replaced += 1
    return replaced
