"""The generator's mapping network: built from the config, per sample, stored in the config only when used."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import ImageGeneratorConfig, build_generator
from models.latent_mapping import mapping_network


def test_no_layers_is_the_identity_and_keeps_the_latent_size():
    mapping, out = mapping_network(64, 0, 256)
    assert isinstance(mapping, nn.Identity) and out == 64


def test_each_layer_is_a_linear_map_and_a_leaky_relu_of_the_given_width():
    mapping, out = mapping_network(10, 3, 32)
    linears = [m for m in mapping.modules() if isinstance(m, nn.Linear)]
    assert out == 32 and [(m.in_features, m.out_features) for m in linears] == [(10, 32), (32, 32), (32, 32)]
    assert sum(isinstance(m, nn.LeakyReLU) for m in mapping.modules()) == 3
    assert mapping(torch.randn(5, 10)).shape == (5, 32)


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_a_generator_with_a_mapping_network_maps_each_sample_on_its_own(arch):
    config = ImageGeneratorConfig(arch=arch, z_dim=8, width=8, resolution=16, mapping_layers=2, mapping_width=24)
    generator = build_generator(config).eval()
    assert sum(isinstance(m, nn.Linear) and m.out_features == 24 for m in generator.modules()) == 2
    z = torch.randn(6, 8)  # [N, z_dim]
    with torch.no_grad():
        batch = generator(z)  # [6, 1, 16, 16]
        alone = torch.cat([generator(z[i : i + 1]) for i in range(6)])
    assert batch.shape == (6, 1, 16, 16)
    torch.testing.assert_close(batch, alone, atol=1e-5, rtol=0)
    plain = build_generator(config.model_copy(update={"mapping_layers": 0})).eval()
    assert not any(isinstance(m, nn.Linear) and m.out_features == 24 for m in plain.modules())


def test_the_stored_config_names_the_mapping_only_when_there_is_one():
    plain = ImageGeneratorConfig(z_dim=8).model_dump()
    assert "mapping_layers" not in plain and "mapping_width" not in plain  # older checkpoints read the same
    mapped = ImageGeneratorConfig(z_dim=8, mapping_layers=4).model_dump()
    assert mapped["mapping_layers"] == 4 and mapped["mapping_width"] == 256
    assert ImageGeneratorConfig.model_validate(mapped) == ImageGeneratorConfig(z_dim=8, mapping_layers=4)
