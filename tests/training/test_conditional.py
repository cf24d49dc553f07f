"""Class-conditional training: labelled data, the penalty with the label held fixed, a short run, exact resume."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from models import ImageCriticConfig, ImageGeneratorConfig, load_checkpoint, make_metadata, save_checkpoint
from tests.training.test_resume import _assert_same_state
from training import TrainConfig, train
from training.config import ConfigError, DataConfig, LossConfig, config_from_dict
from training.data import DataError, load_dataset
from training.data.base import TensorDataset
from training.evaluation import critic_scores
from training.losses import critic_objective, gradient_penalty
from training.resume import RESUME_FILE, load_resume_state


class LinearProjectionCritic(torch.nn.Module):
    """score(x, y) = <w, x> + <e_y, x>: its input gradient is w + e_y, whatever x."""

    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(dim))
        self.e = torch.nn.Parameter(torch.randn(n_classes, dim))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        return flat @ self.w + (self.e[labels] * flat).sum(1)


def test_the_penalty_is_taken_with_the_label_held_fixed():
    torch.manual_seed(0)
    critic = LinearProjectionCritic(6, 3)
    real, fake = torch.randn(8, 1, 2, 3), torch.randn(8, 1, 2, 3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    got = gradient_penalty(critic, real, fake, weight=10.0, labels=labels)
    with torch.no_grad():
        norms = (critic.w + critic.e[labels]).norm(dim=1)  # [8]: each sample's gradient for its own class
    torch.testing.assert_close(got, 10.0 * (norms - 1).pow(2).mean())
    # The same objective through critic_objective scores real and fake under the one label vector.
    terms = critic_objective(LossConfig(), critic, real, fake, labels=labels)
    with torch.no_grad():
        gap = critic(fake, labels).mean() - critic(real, labels).mean()
    torch.testing.assert_close(terms.loss - terms.penalty, gap)
    # The penalty trains the label embedding only through the rows of the classes it saw.
    critic.zero_grad()
    gradient_penalty(critic, real, fake, labels=torch.zeros(8, dtype=torch.long)).backward()
    assert critic.e.grad is not None and critic.e.grad[1:].abs().max() == 0 and critic.e.grad[0].abs().max() > 0


def test_digits_and_mnist5k_carry_their_digit_labels():
    for name, size in (("digits", 16), ("mnist5k", 32)):
        data = load_dataset(DataConfig(dataset=name, resolution=size))
        assert data.classes == [str(d) for d in range(10)]
        assert data.heldout_labels is not None and data.heldout_labels.shape == (data.heldout.shape[0],)
        assert torch.bincount(data.heldout_labels).min() >= data.heldout.shape[0] // 10
        x, y = data.sample_labelled(64, torch.Generator().manual_seed(1))
        assert x.shape[0] == y.shape[0] == 64 and y.dtype == torch.int64
        assert isinstance(data, TensorDataset) and data.train_labels is not None
        # sample_labelled draws rows and labels together.
        idx = torch.randint(data.train.shape[0], (64,), generator=torch.Generator().manual_seed(1))
        assert torch.equal(x, data.train[idx]) and torch.equal(y, data.train_labels[idx])


def _png(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)


def test_a_folder_of_class_subfolders_is_labelled_in_sorted_order(tmp_path):
    for cls, value in (("zebra", 250), ("ant", 10)):
        for i in range(6):
            _png(tmp_path / cls / ("deep" if i == 5 else "") / f"{i}.png", value)
    data = load_dataset(DataConfig(dataset=f"folder:{tmp_path}", resolution=8, heldout=4))
    assert data.classes == ["ant", "zebra"]
    assert isinstance(data, TensorDataset) and data.train_labels is not None and data.heldout_labels is not None
    assert sorted(data.heldout_labels.tolist()) == [0, 0, 1, 1]
    for images, labels in ((data.train, data.train_labels), (data.heldout, data.heldout_labels)):
        brightness = images.mean(dim=(1, 2, 3))
        assert torch.equal(brightness > 0, labels == 1)  # zebra images are the bright ones
    # Images directly under the folder: unlabelled, as before.
    _png(tmp_path / "loose.png", 128)
    assert load_dataset(DataConfig(dataset=f"folder:{tmp_path}", resolution=8)).classes is None


def test_npz_takes_an_optional_label_array(tmp_path):
    images = np.zeros((40, 8, 8), dtype=np.uint8)
    y = np.arange(40) % 4
    images[y == 3] = 255
    path = tmp_path / "labelled.npz"
    np.savez(path, images=images, y=y, classes=np.array(["a", "b", "c", "d"]))
    data = load_dataset(DataConfig(dataset=f"npz:{path}", resolution=8, heldout=8))
    assert data.classes == ["a", "b", "c", "d"] and data.heldout_labels is not None
    assert torch.bincount(data.heldout_labels).tolist() == [2, 2, 2, 2]
    assert torch.equal(data.heldout.mean(dim=(1, 2, 3)) > 0, data.heldout_labels == 3)
    np.savez(tmp_path / "plain.npz", images=images)
    assert load_dataset(DataConfig(dataset=f"npz:{tmp_path / 'plain.npz'}", resolution=8)).classes is None
    np.savez(tmp_path / "short.npz", images=images, y=y[:10])
    with pytest.raises(DataError, match="one label per sample"):
        load_dataset(DataConfig(dataset=f"npz:{tmp_path / 'short.npz'}", resolution=8))
    np.savez(tmp_path / "unnamed.npz", images=images, y=y, classes=np.array(["a", "", "c", "d"]))
    with pytest.raises(DataError, match="empty class name"):
        load_dataset(DataConfig(dataset=f"npz:{tmp_path / 'unnamed.npz'}", resolution=8))
    np.savez(tmp_path / "twice.npz", images=images, y=y, classes=np.array(["a", "b", "a", "d"]))
    with pytest.raises(DataError, match="distinct"):
        load_dataset(DataConfig(dataset=f"npz:{tmp_path / 'twice.npz'}", resolution=8))


def _config(iterations: int, **model: object) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "name": "cond",
            "seed": 5,
            "data": {"dataset": "digits", "resolution": 16},
            "model": {
                "conditional": True,
                "generator": {"z_dim": 8, "width": 8},
                "critic": {"width": 8},
                **model,
            },
            "train": {
                "iterations": iterations,
                "batch_size": 16,
                "sample_every": 0,
                "threads": 1,
                "resume_every": 0,
                "ema_decay": 0.9,
            },
            "eval": {"reference_samples": 64, "grid_size": 2},
        }
    )


def test_conditional_configs_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="point models are unconditional"):
        config_from_dict({"model": {"conditional": True}})
    with pytest.raises(ConfigError, match=r"set model\.conditional"):
        config_from_dict({"data": {"dataset": "digits"}, "model": {"generator": {"n_classes": 10}}})
    path = tmp_path / "unlabelled.npz"
    np.savez(path, images=np.zeros((20, 8, 8), dtype=np.uint8))
    config = config_from_dict(
        {"data": {"dataset": f"npz:{path}", "resolution": 8}, "model": {"conditional": True}, "train": {"threads": 1}}
    )
    with pytest.raises(DataError, match="needs labelled data"):
        train(config, tmp_path / "run", device="cpu", progress=False)
    with pytest.raises(ConfigError, match="data has 10 classes"):
        train(
            _config(1, generator={"z_dim": 8, "width": 8, "n_classes": 3}, critic={"width": 8, "n_classes": 3}),
            tmp_path / "run2",
            device="cpu",
            progress=False,
        )


def test_a_short_conditional_run_starts_learning_and_stores_its_classes(tmp_path):
    """60 iterations on digits: the critic separates real from generated at the class it is told."""
    path = train(_config(60), tmp_path, device="cpu", progress=False)
    ckpt = load_checkpoint(path)
    assert ckpt.metadata.classes == [str(d) for d in range(10)]
    g, c = ckpt.metadata.generator, ckpt.metadata.critic
    assert isinstance(g, ImageGeneratorConfig) and isinstance(c, ImageCriticConfig)
    assert g.n_classes == c.n_classes == 10
    assert ckpt.metadata.training["dataset"]["class_names"] == ckpt.metadata.classes
    assert ckpt.metadata.training["final_metrics"]["wasserstein_estimate_heldout"] > 0
    data = load_dataset(DataConfig(dataset="digits", resolution=16))
    assert data.heldout_labels is not None
    with torch.no_grad():
        right = critic_scores(ckpt.critic, data.heldout, labels=data.heldout_labels)
        wrong = critic_scores(ckpt.critic, data.heldout, labels=(data.heldout_labels + 5) % 10)
        images = ckpt.generator(torch.randn(10, 8), torch.arange(10))
    assert images.shape == (10, 1, 16, 16)
    assert right.mean() > wrong.mean()  # the projection term has learned which digit is which


def test_stopping_and_resuming_a_conditional_run_is_exact(tmp_path):
    straight = train(_config(6), tmp_path / "straight", device="cpu", progress=False)
    train(_config(3), tmp_path / "split", device="cpu", progress=False)
    resumed = train(_config(6), tmp_path / "split", device="cpu", progress=False, resume=True)
    _assert_same_state(
        load_resume_state(tmp_path / "straight" / RESUME_FILE), load_resume_state(tmp_path / "split" / RESUME_FILE)
    )
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    _assert_same_state(a.generator.state_dict(), b.generator.state_dict(), "generator")
    assert b.metadata.classes == a.metadata.classes


def test_per_class_figures_reward_the_requested_class_only():
    from training.image_metrics import ClassifierMetrics

    data = load_dataset(DataConfig(dataset="mnist5k", resolution=32))
    assert data.heldout_labels is not None and isinstance(data, TensorDataset) and data.train_labels is not None
    metrics = ClassifierMetrics()
    some = torch.randperm(data.train.shape[0], generator=torch.Generator().manual_seed(0))[:1000]
    fake, asked = data.train[some], data.train_labels[some]
    right = metrics.compare_by_class(fake, asked, data.heldout, data.heldout_labels)
    wrong = metrics.compare_by_class(fake, (asked + 1) % 10, data.heldout, data.heldout_labels)
    assert right["class_accuracy"] > 0.9 > 0.1 > wrong["class_accuracy"]
    assert [row["class"] for row in right["per_class"]] == list(range(10))
    for good, bad in zip(right["per_class"], wrong["per_class"], strict=True):
        assert good["frechet_distance"] < bad["frechet_distance"]


def test_the_eval_cli_generates_each_class_of_a_conditional_checkpoint(tmp_path):
    from training.eval_cli import evaluate_checkpoint, store_quality

    path = train(_config(2), tmp_path, device="cpu", progress=False)
    report = evaluate_checkpoint(path, samples=40)
    assert report["classes"] == [str(d) for d in range(10)] and report["finite_samples_share"] == 1.0
    store_quality(path, {"note": "kept"})  # rewriting the metadata keeps the classes
    assert load_checkpoint(path).metadata.classes == report["classes"]


def test_the_trainer_writes_per_class_references_and_wgan_eval_recomputes_them(tiny_conditional_checkpoint, tmp_path):
    """The trainer stores a reference per class; `wgan-eval --store-references` writes the same ones into a
    checkpoint stripped of them (as one trained before they existed), keeping its weights and overall reference."""
    written = load_checkpoint(tiny_conditional_checkpoint)
    meta = written.metadata
    assert meta.class_references is not None and sorted(meta.class_references) == meta.classes
    for name, reference in meta.class_references.items():
        assert reference.real.count == 18 and reference.fake is not None  # 180 held-out digits, 18 of each class
        assert reference.real.mean != meta.critic_reference.real.mean, name
    path = tmp_path / "older.safetensors"
    shutil.copy(tiny_conditional_checkpoint, path)
    older = make_metadata(meta.generator, meta.critic, meta.critic_reference, meta.training, meta.classes)
    save_checkpoint(path, written.generator, written.critic, older)
    assert load_checkpoint(path).metadata.class_references is None

    cmd = [sys.executable, "-m", "training.eval_cli", str(path), "--store-references", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["classes"] == meta.classes and summary["heldout_samples"] == 180
    assert summary["overall_real_mean_recomputed"] == pytest.approx(summary["overall_real_mean_stored"], abs=1e-5)
    stored = load_checkpoint(path)
    assert stored.metadata.critic_reference == meta.critic_reference and stored.metadata.training == meta.training
    assert stored.metadata.class_references is not None
    for name, reference in meta.class_references.items():
        again = stored.metadata.class_references[name]
        assert again.real.count == reference.real.count
        assert again.real.quantiles == pytest.approx(reference.real.quantiles, abs=1e-5)
    for key, tensor in written.generator.state_dict().items():
        assert torch.equal(stored.generator.state_dict()[key], tensor)


def test_store_references_refuses_an_unconditional_checkpoint(tiny_image_checkpoint, tmp_path):
    from training.eval_cli import StoreError, store_class_references

    path = tmp_path / "plain.safetensors"
    shutil.copy(tiny_image_checkpoint, path)
    with pytest.raises(StoreError, match="unconditional"):
        store_class_references(path)


def test_wgan_eval_stores_and_prints_the_per_class_figures_of_a_conditional_mnist5k_checkpoint(tmp_path, capsys):
    from training.eval_cli import evaluate_checkpoint
    from training.eval_cli import main as eval_main

    config = TrainConfig.model_validate(
        {
            "name": "tiny-mnist-cond",
            "data": {"dataset": "mnist5k"},
            "model": {"conditional": True, "generator": {"z_dim": 8, "width": 8}, "critic": {"width": 8}},
            "train": {"iterations": 2, "batch_size": 16, "sample_every": 0, "threads": 1},
            "eval": {"reference_samples": 32, "grid_size": 2, "quality_samples": 100},
        }
    )
    path = train(config, tmp_path, device="cpu", progress=False)
    at_training = load_checkpoint(path).metadata.training["final_metrics"]["class_quality"]
    assert sum(row["samples"] for row in at_training["per_class"]) == 100
    assert eval_main([str(path), "--samples", "60", "--store"]) == 0
    stored = load_checkpoint(path).metadata.training["final_metrics"]
    assert stored["quality"]["protocol"]["generated_samples"] == 60
    per_class = stored["class_quality"]["per_class"]
    assert [row["class"] for row in per_class] == list(range(10))
    assert [(row["samples"], row["real_samples"]) for row in per_class] == [(6, 50)] * 10  # every class in turn
    printed = capsys.readouterr().out
    assert "accuracy on the requested class" in printed and printed.count("against its 50 held-out digits") == 10
    report = evaluate_checkpoint(path, samples=60, seeds=2)
    accuracy = report["quality_over_seeds"]["class_accuracy"]
    assert accuracy["values"][0] == report["class_quality"]["class_accuracy"]  # the first draw is the report's own
    assert accuracy["values"][1] == evaluate_checkpoint(path, samples=60, seed=1)["class_quality"]["class_accuracy"]
    assert accuracy["min"] <= accuracy["mean"] <= accuracy["max"]
    assert eval_main([str(path), "--samples", "60", "--seeds", "2"]) == 0
    assert "accuracy on the requested class " in capsys.readouterr().out.split("seeds 0..1  mean (range): ")[1]
