"""The training loop: orchestration only. Data, networks, losses, plots and figures live in their own modules."""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from models import build_critic, build_generator, build_reference, has_batch_norm, make_metadata, save_checkpoint
from training.config import ConfigError, TrainConfig
from training.data import DataError, Dataset, MixtureDataset, load_dataset
from training.evaluation import critic_figures, critic_scores, generate, mixture_for, mode_coverage
from training.losses import critic_loss, generator_loss, gradient_penalty, wasserstein_estimate
from training.plots import save_image_grid, save_scatter

log = logging.getLogger(__name__)

SNAPSHOT_SAMPLES = 500  # generated/held-out samples for the critic reference of periodic checkpoints


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when available; `cuda` without a GPU is an error that says so."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but no CUDA device is available; use --device cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from exc


@dataclass
class Networks:
    generator: nn.Module
    critic: nn.Module
    ema: nn.Module | None = None

    @property
    def served(self) -> nn.Module:
        """The generator a checkpoint stores: the EMA copy when there is one."""
        return self.ema if self.ema is not None else self.generator


@dataclass
class Progress:
    iteration: int = 0
    last: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def build_networks(config: TrainConfig, device: torch.device) -> Networks:
    generator = build_generator(config.model.generator).to(device)
    critic = build_critic(config.model.critic).to(device)
    if config.loss.uses_gradient_penalty and has_batch_norm(critic):  # the config refuses this; belt and braces
        raise ValueError("a critic with batch norm cannot be trained with a per-sample gradient penalty")
    ema = None
    if config.train.ema_decay is not None:
        ema = copy.deepcopy(generator).eval().requires_grad_(False)
    return Networks(generator, critic, ema)


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)  # batch-norm running statistics follow the live generator


@contextmanager
def _eval_mode(*modules: nn.Module) -> Iterator[None]:
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, was):
            m.train(mode)


def _check_shapes(config: TrainConfig, dataset: Dataset) -> None:
    g = config.model.generator
    expected = (g.out_dim,) if g.kind == "points" else (g.channels, g.resolution, g.resolution)
    if dataset.sample_shape != expected:
        raise DataError(
            f"dataset {dataset.name!r} gives samples of shape {list(dataset.sample_shape)} but the model "
            f"expects {list(expected)}"
        )


class Trainer:
    """One run: owns the networks, optimisers and RNG streams; `run()` trains and returns the final checkpoint."""

    def __init__(self, config: TrainConfig, out_dir: Path, device: torch.device, progress: bool) -> None:
        self.config = config
        self.out_dir = out_dir
        self.device = device
        self.show_progress = progress
        torch.manual_seed(config.seed)  # weight initialisation
        self.dataset = load_dataset(config.data, config.model.kind)
        _check_shapes(config, self.dataset)
        self.nets = build_networks(config, device)
        o = config.optim
        self.opt_g = torch.optim.Adam(self.nets.generator.parameters(), lr=o.lr_generator, betas=o.betas)
        self.opt_c = torch.optim.Adam(self.nets.critic.parameters(), lr=o.lr_critic, betas=o.betas)
        self.schedulers = []
        if o.lr_decay:
            total = config.train.iterations
            decay = lambda step: max(0.0, 1.0 - step / total)  # noqa: E731
            self.schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, decay) for opt in (self.opt_g, self.opt_c)]
        # Separate CPU streams, so the data stream does not depend on the model's shape and vice versa.
        self.data_rng = torch.Generator("cpu").manual_seed(config.seed * 3 + 1)
        self.noise_rng = torch.Generator("cpu").manual_seed(config.seed * 3 + 2)
        grid = config.eval.grid_size
        n_fixed = grid * grid if self.kind == "image" else config.eval.point_samples
        self.fixed_z = torch.randn(n_fixed, self.z_dim, generator=torch.Generator("cpu").manual_seed(config.seed + 7))
        self.mixture = mixture_for(config.data.dataset)
        self.metrics_file = out_dir / "metrics.jsonl"

    @property
    def kind(self) -> str:
        return self.config.model.kind

    @property
    def z_dim(self) -> int:
        return self.config.model.generator.z_dim

    # -- one step of each network -------------------------------------------------------------------------------

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=self.noise_rng).to(self.device)

    def critic_step(self) -> dict[str, float]:
        g, c, bs = self.nets.generator, self.nets.critic, self.config.train.batch_size
        real = self.dataset.sample(bs, self.data_rng).to(self.device)  # a fresh real batch for each critic step
        with torch.no_grad():
            fake = g(self._noise(bs))
        real_scores, fake_scores = c(real), c(fake)
        penalty = gradient_penalty(
            c, real, fake, weight=self.config.loss.gp_weight, target=self.config.loss.gp_target,
            generator=self.noise_rng,
        )
        loss = critic_loss(real_scores, fake_scores) + penalty
        self.opt_c.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_c.step()
        return {
            "wasserstein": wasserstein_estimate(real_scores, fake_scores).item(),
            "gp": penalty.item(),
            "critic_loss": loss.item(),
        }

    def generator_step(self) -> dict[str, float]:
        g, c = self.nets.generator, self.nets.critic
        c.requires_grad_(False)
        try:
            loss = generator_loss(c(g(self._noise(self.config.train.batch_size))))
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_g.step()
        finally:
            c.requires_grad_(True)
        if self.nets.ema is not None:
            _update_ema(self.nets.ema, g, self.config.train.ema_decay or 0.0)
        return {"generator_loss": loss.item()}

    # -- outputs along the way ----------------------------------------------------------------------------------

    def write_samples(self, tag: str, progress: Progress) -> Path:
        """A sample PNG from fixed latents; for mixtures also log the mode coverage of those samples."""
        gen = self.nets.served
        with _eval_mode(gen), torch.no_grad():
            fake = torch.cat([gen(z.to(self.device)).float().cpu() for z in self.fixed_z.split(500)])
        path = self.out_dir / "samples" / f"{tag}.png"
        if self.kind == "image":
            return save_image_grid(fake, path, nrow=self.config.eval.grid_size)
        centres = self.mixture[0] if self.mixture else None
        if self.mixture is not None:
            cov = mode_coverage(fake, *self.mixture)
            self._log({"iteration": progress.iteration, "time_s": round(progress.elapsed, 3),
                       "modes_covered": cov["modes_covered"], "high_quality_share": cov["high_quality_share"]})
        return save_scatter(fake, path, real=self.dataset.heldout[: len(fake)], centres=centres)

    def evaluate(self, n_fake: int, n_real: int | None = None) -> tuple[Any, dict[str, Any]]:
        """(critic reference, final metrics) with the served generator and the critic in eval mode."""
        gen, critic = self.nets.served, self.nets.critic
        heldout = self.dataset.heldout if n_real is None else self.dataset.heldout[:n_real]
        with _eval_mode(gen, critic):
            fake = generate(gen, n_fake, self.z_dim, seed=self.config.seed + 11, device=self.device)
            real_scores = critic_scores(critic, heldout, self.device)
            fake_scores = critic_scores(critic, fake, self.device)
        reference = build_reference(real_scores, fake_scores)
        metrics: dict[str, Any] = {
            "wasserstein_estimate_heldout": float(real_scores.mean() - fake_scores.mean()),
            "critic": critic_figures(reference, fake_scores),
            "finite_samples_share": float(torch.isfinite(fake.flatten(1)).all(dim=1).float().mean()),
        }
        if self.kind == "points" and self.mixture is not None:
            with _eval_mode(gen):
                points = generate(gen, self.config.eval.point_samples, self.z_dim, seed=self.config.seed + 13,
                                  device=self.device)
            coverage = mode_coverage(points, *self.mixture)
            metrics.update(
                modes_covered=coverage["modes_covered"],
                modes_total=coverage["modes_total"],
                high_quality_share=coverage["high_quality_share"],
                evaluation=coverage,
            )
        return reference, metrics

    def summary(self, progress: Progress, stopped_by: str, metrics: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        return {
            "name": cfg.name,
            "dataset": self.dataset.summary(),
            "loss": cfg.loss.model_dump(mode="json"),
            "hyperparameters": {
                **cfg.optim.model_dump(mode="json"),
                "batch_size": cfg.train.batch_size,
                "ema_decay": cfg.train.ema_decay,
                "seed": cfg.seed,
            },
            "generator_iterations": progress.iteration,
            "planned_iterations": cfg.train.iterations,
            "stopped_by": stopped_by,
            "wall_time_s": round(progress.elapsed, 3),
            "device": str(self.device),
            "torch_version": torch.__version__,
            "last_batch": progress.last,
            "final_metrics": metrics,
            "config": cfg.model_dump(mode="json"),
        }

    def write_checkpoint(self, path: Path, progress: Progress, stopped_by: str, final: bool) -> Path:
        n_fake = self.config.eval.reference_samples if final else SNAPSHOT_SAMPLES
        reference, metrics = self.evaluate(n_fake, None if final else SNAPSHOT_SAMPLES)
        summary = self.summary(progress, stopped_by, metrics)
        metadata = make_metadata(self.config.model.generator, self.config.model.critic, reference, summary)
        return save_checkpoint(path, self.nets.served, self.nets.critic, metadata)

    def _log(self, record: dict[str, Any]) -> None:
        with self.metrics_file.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    # -- the loop -----------------------------------------------------------------------------------------------

    def run(self) -> Path:
        cfg, t = self.config, self.config.train
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_file.write_text("", encoding="utf-8")
        (self.out_dir / "config.json").write_text(cfg.model_dump_json(indent=2), encoding="utf-8")
        self.nets.generator.train()
        self.nets.critic.train()
        progress = Progress()
        stopped_by = "iterations"
        bar = tqdm(total=t.iterations, disable=not self.show_progress, unit="it", dynamic_ncols=True,
                   desc=cfg.name, mininterval=0.5)
        try:
            for it in range(1, t.iterations + 1):
                if t.max_seconds is not None and progress.elapsed >= t.max_seconds:
                    stopped_by = "time budget"
                    break
                critic_stats = [self.critic_step() for _ in range(cfg.optim.n_critic)]
                stats = {k: sum(s[k] for s in critic_stats) / len(critic_stats) for k in critic_stats[0]}
                stats.update(self.generator_step())
                for scheduler in self.schedulers:
                    scheduler.step()
                progress.iteration, progress.last = it, stats
                if not all(math.isfinite(v) for v in stats.values()):
                    raise FloatingPointError(f"training diverged at generator iteration {it}: {stats}")
                if it % t.log_every == 0 or it == t.iterations:
                    bar.set_postfix(W=f"{stats['wasserstein']:.3f}", GP=f"{stats['gp']:.3f}", refresh=False)
                    self._log({"iteration": it, "time_s": round(progress.elapsed, 3), **stats})
                bar.update(1)
                if t.sample_every and it % t.sample_every == 0:
                    self.write_samples(f"iter_{it:06d}", progress)
                if t.checkpoint_every and it % t.checkpoint_every == 0:
                    path = self.out_dir / "checkpoints" / f"{cfg.name}-{it:06d}.safetensors"
                    self.write_checkpoint(path, progress, "in progress", final=False)
        finally:
            bar.close()
        if stopped_by == "time budget":
            log.warning("%s: time budget of %.0f s spent after %d generator iterations", cfg.name, t.max_seconds,
                        progress.iteration)
        self.write_samples("final", progress)
        final = self.write_checkpoint(self.out_dir / f"{cfg.name}.safetensors", progress, stopped_by, final=True)
        return final


def train(config: TrainConfig, out_dir: str | Path, device: str = "auto", progress: bool = True) -> Path:
    """Train `config` into `out_dir`; return the final checkpoint `out_dir/<config.name>.safetensors`.

    `config.train.threads` applies for the duration of the call; the previous torch thread count is restored.
    """
    previous_threads = torch.get_num_threads()
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    try:
        return Trainer(config, Path(out_dir), resolve_device(device), progress).run()
    finally:
        torch.set_num_threads(previous_threads)
