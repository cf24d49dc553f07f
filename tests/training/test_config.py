"""TrainConfig: defaults, unknown keys, --set overrides, batch norm refused with a gradient penalty."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import (
    ImageCriticConfig,
    ImageGeneratorConfig,
    PointCriticConfig,
    PointGeneratorConfig,
    build_critic,
    has_batch_norm,
)
from training.config import ConfigError, TrainConfig, apply_overrides, config_from_dict, load_config
from training.networks import build_networks

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_paper_defaults():
    cfg = TrainConfig()
    assert cfg.loss.variant == "gp" and cfg.loss.gp_weight == 10.0
    assert cfg.optim.n_critic == 5
    assert cfg.optim.lr_generator == cfg.optim.lr_critic == 1e-4
    assert cfg.optim.betas == (0.0, 0.9)


@pytest.mark.parametrize(
    "raw, where",
    [
        ({"bogus": 1}, "bogus"),
        ({"train": {"batchsize": 64}}, "train.batchsize"),
        ({"model": {"critic": {"widht": 8}}}, "model.critic.widht"),
        ({"data": {"dataset": "mnist5k", "colour": True}}, "data.colour"),
    ],
)
def test_unknown_keys_are_refused_naming_the_key(raw, where):
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert where in str(info.value) and "unknown key" in str(info.value)


def test_unknown_dataset_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match=r"unknown dataset 'cifar'.*ring8"):
        config_from_dict({"data": {"dataset": "cifar"}})


def test_set_overrides_parse_yaml_scalars():
    cfg = config_from_dict(
        {"name": "x", "data": {"dataset": "grid25"}},
        [
            "train.batch_size=128",
            "optim.lr_critic=2e-4",
            "train.ema_decay=0.999",
            "optim.betas=[0.5, 0.99]",
            "optim.lr_decay=true",
            "name=other",
            "model.generator.hidden=64",
        ],
    )
    assert cfg.train.batch_size == 128 and cfg.optim.lr_critic == 2e-4 and cfg.train.ema_decay == 0.999
    assert cfg.optim.betas == (0.5, 0.99) and cfg.optim.lr_decay is True and cfg.name == "other"
    assert isinstance(cfg.model.generator, PointGeneratorConfig) and cfg.model.generator.hidden == 64


def test_set_overrides_do_not_mutate_the_input_and_reject_bad_paths():
    raw = {"train": {"batch_size": 8}}
    apply_overrides(raw, ["train.batch_size=16"])
    assert raw == {"train": {"batch_size": 8}}
    with pytest.raises(ConfigError, match=r"KEY\.PATH=VALUE"):
        config_from_dict({}, ["train.batch_size"])
    with pytest.raises(ConfigError, match=r"train\.batch_size is a value"):
        config_from_dict({"train": {"batch_size": 8}}, ["train.batch_size.x=1"])
    with pytest.raises(ConfigError, match="unknown key"):
        config_from_dict({}, ["train.nope=1"])


def test_image_geometry_follows_the_data_section():
    cfg = config_from_dict({"data": {"dataset": "mnist5k", "resolution": 16, "channels": 3}})
    g, c = cfg.model.generator, cfg.model.critic
    assert isinstance(g, ImageGeneratorConfig) and isinstance(c, ImageCriticConfig)
    assert (g.kind, g.resolution, g.channels) == ("image", 16, 3)
    assert (c.kind, c.resolution, c.channels) == ("image", 16, 3)
    with pytest.raises(ConfigError, match="must match data"):
        config_from_dict({"data": {"dataset": "mnist5k"}, "model": {"generator": {"resolution": 64}}})


@pytest.mark.parametrize("dataset", ["ring8", "mnist5k"])
def test_batch_norm_critic_is_refused_with_a_gradient_penalty(dataset):
    with pytest.raises(ConfigError, match=r"batch norm.*per sample"):
        config_from_dict({"data": {"dataset": dataset}, "model": {"critic": {"norm": "batch"}}})


@pytest.mark.parametrize("norm", ["none", "layer", "instance", "spectral"])
def test_no_batch_norm_reaches_an_image_gp_critic(norm):
    cfg = config_from_dict(
        {"data": {"dataset": "digits", "resolution": 16}, "model": {"critic": {"norm": norm, "width": 8}}}
    )
    nets = build_networks(cfg, device="cpu")
    assert isinstance(cfg.model.critic, ImageCriticConfig)
    assert not has_batch_norm(nets.critic)


@pytest.mark.parametrize("norm", ["none", "layer", "spectral"])
def test_no_batch_norm_reaches_a_point_gp_critic(norm):
    cfg = config_from_dict({"data": {"dataset": "ring8"}, "model": {"critic": {"norm": norm, "hidden": 8}}})
    assert isinstance(cfg.model.critic, PointCriticConfig)
    assert not has_batch_norm(build_networks(cfg, device="cpu").critic)
    assert has_batch_norm(build_critic(PointCriticConfig(norm="batch")))  # the check itself can see batch norm


@pytest.mark.parametrize("name", ["ring8", "grid25", "mnist5k"])
def test_example_configs_load(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.name == name and cfg.data.dataset == name


def test_the_conditional_bundled_recipe_is_the_unconditional_one_plus_conditioning():
    plain = load_config(CONFIGS / "mnist5k.yaml").model_dump()
    cond = load_config(CONFIGS / "mnist5k-cond.yaml").model_dump()
    assert cond["name"] == "mnist5k-cond" and cond["model"]["conditional"] is True
    cond["name"], cond["model"]["conditional"] = plain["name"], False
    assert cond == plain


def test_load_config_reports_bad_yaml_and_missing_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)
