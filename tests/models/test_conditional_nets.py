"""Class-conditional image networks: shapes, labels, the projection critic's formula, and checkpoints with classes."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from models import (
    CheckpointError,
    ImageCriticConfig,
    ImageGeneratorConfig,
    build_critic,
    build_generator,
    build_reference,
    load_checkpoint,
    make_metadata,
    save_checkpoint,
)
from models.configs import ImageArch

CLASSES = ["cat", "dog", "owl"]


def _configs(arch: ImageArch, n_classes: int = 3) -> tuple[ImageGeneratorConfig, ImageCriticConfig]:
    gen = ImageGeneratorConfig(arch=arch, z_dim=8, resolution=16, width=8, n_classes=n_classes, class_dim=4)
    crit = ImageCriticConfig(arch=arch, resolution=16, width=8, n_classes=n_classes)
    return gen, crit


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_conditional_networks_take_one_label_per_sample(arch):
    gen_cfg, crit_cfg = _configs(arch)
    gen, critic = build_generator(gen_cfg).eval(), build_critic(crit_cfg).eval()
    z, labels = torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])
    with torch.no_grad():
        images = gen(z, labels)
        scores = critic(images, labels)
        assert images.shape == (5, 1, 16, 16) and scores.shape == (5,)
        # The label changes the output, and each sample depends on its own (z, label) only.
        assert not torch.allclose(gen(z, torch.zeros(5, dtype=torch.long)), images)
        torch.testing.assert_close(gen(z[3:4], labels[3:4]), images[3:4])
        torch.testing.assert_close(critic(images[1:2], labels[1:2]), scores[1:2])
    with pytest.raises(ValueError, match="class-conditional"):
        gen(z)
    with pytest.raises(ValueError, match="class-conditional"):
        critic(images)
    with pytest.raises(ValueError, match="shape"):
        gen(z, labels[:2])
    unconditional = build_generator(_configs(arch, 0)[0])
    with pytest.raises(ValueError, match="unconditional"):
        unconditional(z, labels)


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_the_projection_critic_adds_the_label_embeddings_inner_product_with_phi(arch):
    critic = build_critic(_configs(arch)[1]).eval()
    x, labels = torch.randn(4, 1, 16, 16), torch.tensor([2, 0, 1, 2])
    head, embed = critic.head, critic.embed
    assert isinstance(head, torch.nn.Module) and isinstance(embed, torch.nn.Embedding)
    phis: list[torch.Tensor] = []
    head.register_forward_hook(lambda module, inputs, output: phis.append(inputs[0]))
    with torch.no_grad():
        scores = critic(x, labels)
        phi = phis[0]  # [4, D], what psi reads
        expected = head(phi).squeeze(1) + (embed.weight[labels] * phi).sum(1)
    torch.testing.assert_close(scores, expected)


def _save(
    path: Path, gen_cfg: ImageGeneratorConfig, crit_cfg: ImageCriticConfig, classes: list[str] | None
) -> torch.nn.Module:
    meta = make_metadata(gen_cfg, crit_cfg, build_reference(torch.randn(50)), {"dataset": "test"}, classes)
    generator = build_generator(gen_cfg)
    save_checkpoint(path, generator, build_critic(crit_cfg), meta)
    return generator.eval()


def _document(path: Path) -> dict:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(json.loads(data[8 : 8 + n])["__metadata__"]["wgan"])


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_a_conditional_checkpoint_round_trips_with_its_classes_in_order(tmp_path, arch):
    gen_cfg, crit_cfg = _configs(arch)
    path = tmp_path / "cond.safetensors"
    written = _save(path, gen_cfg, crit_cfg, CLASSES)
    loaded = load_checkpoint(path)
    assert loaded.metadata.classes == CLASSES and loaded.metadata.n_classes == 3
    assert loaded.metadata.generator == gen_cfg and loaded.metadata.critic == crit_cfg
    assert _document(path)["classes"] == CLASSES
    z, labels = torch.randn(3, 8), torch.arange(3)
    with torch.no_grad():
        torch.testing.assert_close(loaded.generator(z, labels), written(z, labels))


def test_classes_must_match_the_networks(tmp_path):
    gen_cfg, crit_cfg = _configs("dcgan")
    with pytest.raises(ValueError, match="classes"):
        _save(tmp_path / "a.safetensors", gen_cfg, crit_cfg, ["only", "two"])
    with pytest.raises(ValueError, match="classes"):
        _save(tmp_path / "b.safetensors", *_configs("dcgan", 0), CLASSES)
    with pytest.raises(ValueError, match="distinct"):
        _save(tmp_path / "c.safetensors", gen_cfg, crit_cfg, ["a", "a", "b"])
    # A header edited to drop the classes of a conditional model is refused when loading.
    path = tmp_path / "d.safetensors"
    _save(path, gen_cfg, crit_cfg, CLASSES)
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    document = json.loads(header["__metadata__"]["wgan"])
    del document["classes"]
    header["__metadata__"]["wgan"] = json.dumps(document)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    with pytest.raises(CheckpointError, match="classes"):
        load_checkpoint(path)


def test_an_unconditional_dcgan_document_keeps_its_old_form(tmp_path):
    """New fields at their defaults stay out of the header, so the document reads as before this format grew."""
    path = tmp_path / "plain.safetensors"
    _save(path, *_configs("dcgan", 0), None)
    document = _document(path)
    assert "classes" not in document
    for part in ("generator", "critic"):
        assert not {"arch", "n_classes", "class_dim"} & set(document[part])
    assert load_checkpoint(path).metadata.classes is None


def test_a_checkpoint_written_before_classes_still_loads(tiny_image_checkpoint):
    loaded = load_checkpoint(tiny_image_checkpoint)
    generator = loaded.metadata.generator
    assert loaded.metadata.classes is None
    assert isinstance(generator, ImageGeneratorConfig) and generator.arch == "dcgan"
