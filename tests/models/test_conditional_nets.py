"""Class-conditional image networks: shapes, labels, the projection critic's formula, and checkpoints with classes."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
import torch

from models import (
    CheckpointError,
    ImageCriticConfig,
    ImageGeneratorConfig,
    build_class_references,
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
    with pytest.raises(ValueError, match="non-empty"):  # every class can be asked for by name
        _save(tmp_path / "e.safetensors", gen_cfg, crit_cfg, ["a", "", "b"])
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


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_class_weights_give_the_embedding_of_a_label_exactly_and_lerp_between_two(arch):
    gen = build_generator(_configs(arch)[0]).eval()
    z, labels = torch.randn(4, 8), torch.tensor([2, 0, 1, 2])
    weights = torch.nn.functional.one_hot(labels, 3).float()  # [4, 3]
    with torch.no_grad():
        assert torch.equal(gen(z, weights), gen(z, labels))  # bit for bit: the served pixels are the trainer's
        # Halfway between classes 0 and 1 is the generator of the mean of their embeddings.
        half = gen(z[:1], torch.tensor([[0.5, 0.5, 0.0]]))
        embed = gen.embed
        assert isinstance(embed, torch.nn.Embedding)
        mean = 0.5 * (embed.weight[0] + embed.weight[1])
        assert not torch.allclose(half, gen(z[:1], torch.tensor([0])), atol=1e-4)
        embed.weight[2] = mean  # class 2 made the midpoint of 0 and 1
        torch.testing.assert_close(half, gen(z[:1], torch.tensor([2])))
        # Each row depends on its own weights only.
        torch.testing.assert_close(gen(z[1:2], weights[1:2]), gen(z, weights)[1:2])
        assert not torch.allclose(gen(z, weights), gen(z, torch.roll(weights, 1, dims=1)))
    with pytest.raises(ValueError, match=r"class weights must have shape \[4, 3\]"):
        gen(z, torch.ones(4, 2))


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_class_scores_are_the_critic_against_every_class(arch):
    critic: Any = build_critic(_configs(arch)[1]).eval()  # a conditional critic
    unconditional: Any = build_critic(_configs(arch, 0)[1])
    x = torch.randn(5, 1, 16, 16)
    with torch.no_grad():
        every = critic.class_scores(x)  # [5, 3]
        assert every.shape == (5, 3)
        for y in range(3):
            torch.testing.assert_close(every[:, y], critic(x, torch.full((5,), y)))
    with pytest.raises(ValueError, match="unconditional"):
        unconditional.class_scores(x)


def test_per_class_references_round_trip_and_name_only_known_classes(tmp_path):
    gen_cfg, crit_cfg = _configs("dcgan")
    scores, labels = torch.randn(60), torch.arange(60) % 2  # class "owl" (2) has no held-out sample
    by_class = build_class_references(CLASSES, scores, labels, torch.randn(30), torch.arange(30) % 3)
    assert sorted(by_class) == ["cat", "dog"] and by_class["cat"].real.count == 30
    assert by_class["dog"].fake is not None and by_class["dog"].fake.count == 10
    overall = build_reference(scores)
    meta = make_metadata(gen_cfg, crit_cfg, overall, {}, CLASSES, by_class)
    path = tmp_path / "refs.safetensors"
    save_checkpoint(path, build_generator(gen_cfg), build_critic(crit_cfg), meta)
    loaded = load_checkpoint(path).metadata
    assert loaded.class_references == by_class
    assert loaded.reference_for(1) == (by_class["dog"], True)
    assert loaded.reference_for(2) == (overall, False)  # no reference of its own: the overall one
    assert loaded.reference_for(None) == (overall, False)
    with pytest.raises(ValueError, match="classes the model does not have"):
        make_metadata(gen_cfg, crit_cfg, overall, {}, CLASSES, {"eel": overall})
    with pytest.raises(ValueError, match="classes the model does not have"):
        make_metadata(*_configs("dcgan", 0), overall, {}, None, {"cat": overall})
    # A document without them (written before they existed) loads, and an unconditional one keeps its old form.
    _save(tmp_path / "old.safetensors", gen_cfg, crit_cfg, CLASSES)
    assert "class_references" not in _document(tmp_path / "old.safetensors")
    assert load_checkpoint(tmp_path / "old.safetensors").metadata.class_references is None
