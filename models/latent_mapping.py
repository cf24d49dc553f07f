"""The generator's optional mapping network: an MLP between the latent and the first layer.

A DCGAN-style generator feeds z straight into one linear (or 1x1 transposed-convolution) layer, so the regions of
the Gaussian latent that become different digits are separated by little more than one ReLU. An unconditional
generator of a data set with separate modes (ten digit classes) then spends part of its latent on in-between
images. A few fully connected layers first (StyleGAN's mapping network, Karras et al. 2019, without its style
modulation) let the network bend the latent before the image layers read it. Each sample is mapped on its own, so
a seed's image still does not depend on the rest of its batch.
"""

from __future__ import annotations

from torch import nn


def mapping_network(in_dim: int, layers: int, width: int) -> tuple[nn.Module, int]:
    """The MLP for `layers` (0: the identity) and the size of what it outputs.

    Each layer is Linear then LeakyReLU(0.2): [N, in_dim] -> [N, width] ... -> [N, width]."""
    if layers == 0:
        return nn.Identity(), in_dim
    modules: list[nn.Module] = []
    for i in range(layers):
        modules += [nn.Linear(in_dim if i == 0 else width, width), nn.LeakyReLU(0.2)]
    return nn.Sequential(*modules), width
