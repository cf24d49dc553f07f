"""The training loop: orchestration only. Data, networks, losses, plots and figures live in their own modules."""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from models import build_critic, build_generator, build_reference, has_batch_norm, make_metadata, save_checkpoint
from training import distributed as ddp
from training import image_metrics
from training.config import ConfigError, TrainConfig
from training.data import DataError, Dataset, load_dataset
from training.evaluation import critic_figures, critic_scores, generate, mixture_for, mode_coverage
from training.fold_convs import use_fold_convs
from training.losses import (
    clip_weights,
    critic_loss,
    drift_penalty,
    generator_loss,
    input_gradients,
    interpolates,
    penalty_from_gradients,
    wasserstein_estimate,
)
from training.plots import save_image_grid, save_interpolation_strip, save_loss_curves, save_scatter
from training.resume import RESUME_FILE, global_rng_state, load_resume_state, save_resume_state, set_global_rng_state
from training.tensorboard_log import TensorBoardLog

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
    if config.loss.variant != "clip" and has_batch_norm(critic):  # the config refuses this; belt and braces
        raise ValueError("a critic with batch norm can only be trained with weight clipping (loss.variant clip)")
    if config.train.channels_last and config.model.kind == "image":
        generator = generator.to(memory_format=torch.channels_last)
        critic = critic.to(memory_format=torch.channels_last)
    if torch.device(device).type == "cpu" and config.model.kind == "image":
        use_fold_convs(generator)  # the same function with faster CPU kernels for the one-channel output layer
    ema = None
    if config.train.ema is not None:
        ema = copy.deepcopy(generator).eval().requires_grad_(False)
    return Networks(generator, critic, ema)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers (batch-norm statistics) are copied."""
    ema_params = list(ema.parameters())
    torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def ema_decay_at(decay: float, step: int, warmup: bool) -> float:
    """The decay for generator iteration `step` (1-based): min(decay, (1 + step) / (10 + step)) with warm-up."""
    return min(decay, (1.0 + step) / (10.0 + step)) if warmup else decay


def make_optimizer(params: Iterator[nn.Parameter], kind: str, lr: float, betas: tuple[float, float], fused: bool,
                   device: torch.device) -> torch.optim.Optimizer:
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if fused and device.type in ("cpu", "cuda"):
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    return torch.optim.Adam(params, lr=lr, betas=betas)


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

    def __init__(self, config: TrainConfig, out_dir: Path, device: torch.device, progress: bool,
                 dist_ctx: ddp.DistContext | None = None) -> None:
        self.config = config
        self.out_dir = out_dir
        self.dist = dist_ctx or ddp.DistContext()
        self.device = device
        self.show_progress = progress and self.dist.is_main
        t, o = config.train, config.optim
        if t.amp == "fp16" and device.type != "cuda":
            raise ConfigError(f"train.amp 'fp16' needs a CUDA device; on {device.type} use train.amp=bf16 or none")
        torch.manual_seed(config.seed)  # weight initialisation: the same on every rank
        self.dataset = load_dataset(config.data, config.model.kind)
        _check_shapes(config, self.dataset)
        self.nets = build_networks(config, device)
        self.memory_format = (torch.channels_last if t.channels_last and self.kind == "image"
                              else torch.contiguous_format)
        # The networks the optimisers step: DDP-wrapped when there is more than one rank.
        self.critic_has_batch_norm = has_batch_norm(self.nets.critic)
        self.g_train = ddp.wrap(self.nets.generator, self.dist, device)
        self.c_train = ddp.wrap(self.nets.critic, self.dist, device)
        # What the critic's backward differentiates: its parameters only, never the interpolates (see critic_step).
        self.critic_params = [p for p in self.nets.critic.parameters() if p.requires_grad]
        opt_kind = o.resolved(config.loss.variant)
        self.opt_g = make_optimizer(self.nets.generator.parameters(), opt_kind, o.lr_generator, o.betas, o.fused, device)
        self.opt_c = make_optimizer(self.nets.critic.parameters(), opt_kind, o.lr_critic, o.betas, o.fused, device)
        self.schedulers: list[torch.optim.lr_scheduler.LambdaLR] = []
        if o.lr_decay:
            total = t.iterations
            decay = lambda step: max(0.0, 1.0 - step / total)  # noqa: E731
            self.schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, decay) for opt in (self.opt_g, self.opt_c)]
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.amp)
        fp16 = t.amp == "fp16"
        self.scalers = {name: torch.amp.GradScaler("cuda", enabled=fp16) for name in ("generator", "critic")}
        # Separate CPU streams per rank, so the data stream does not depend on the model's shape and vice versa.
        offset = 1_000_003 * self.dist.rank
        self.data_rng = torch.Generator("cpu").manual_seed(config.seed * 3 + 1 + offset)
        self.noise_rng = torch.Generator("cpu").manual_seed(config.seed * 3 + 2 + offset)
        grid = config.eval.grid_size
        n_fixed = grid * grid if self.kind == "image" else config.eval.point_samples
        self.fixed_z = torch.randn(n_fixed, self.z_dim, generator=torch.Generator("cpu").manual_seed(config.seed + 7))
        self.mixture = mixture_for(config.data.dataset)
        self.metrics_file = out_dir / "metrics.jsonl"
        self.tensorboard: TensorBoardLog | None = None
        self.progress = Progress()

    @property
    def kind(self) -> str:
        return self.config.model.kind

    @property
    def z_dim(self) -> int:
        return self.config.model.generator.z_dim

    def _autocast(self) -> AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    # -- one step of each network -------------------------------------------------------------------------------

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=self.noise_rng).to(self.device, non_blocking=True)

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device, non_blocking=True)
        return batch.contiguous(memory_format=self.memory_format) if batch.dim() == 4 else batch

    def critic_phase(self) -> dict[str, float]:
        """n_critic critic steps; the fake batches for all of them come from one generator pass."""
        n_critic, bs = self.config.optim.n_critic, self.config.train.batch_size
        with torch.no_grad(), self._autocast():
            fakes = self.nets.generator(self._noise(n_critic * bs)).float()  # [n_critic * bs, ...]
        fakes = fakes.contiguous(memory_format=self.memory_format) if fakes.dim() == 4 else fakes
        totals: dict[str, float] = {}
        for fake in fakes.split(bs):
            for key, value in self.critic_step(fake).items():
                totals[key] = totals.get(key, 0.0) + value / n_critic
        return totals

    def critic_step(self, fake: torch.Tensor) -> dict[str, float]:
        loss_cfg, bs = self.config.loss, self.config.train.batch_size
        real = self._to_device(self.dataset.sample(bs, self.data_rng))  # a fresh real batch for each critic step
        scaler = self.scalers["critic"]
        with self._autocast():
            if self.critic_has_batch_norm:  # batch norm must see real and fake batches apart
                real_scores, fake_scores = self.c_train(real).float(), self.c_train(fake).float()
            else:  # one pass over both batches: per-sample critics score them exactly as two passes would
                real_scores, fake_scores = self.c_train(torch.cat([real, fake])).float().split(bs)
            loss = critic_loss(real_scores, fake_scores)
            penalty = torch.zeros((), device=self.device)
            if loss_cfg.uses_gradient_penalty:
                x_hat = interpolates(real, fake, self.noise_rng)
                scale = scaler.get_scale() if scaler.is_enabled() else 1.0  # fp16: differentiate scaled scores
                grad = input_gradients(self.nets.critic(x_hat), x_hat, scale=scale)  # unwrapped: see distributed.py
                penalty = penalty_from_gradients(grad, loss_cfg.gp_weight, loss_cfg.gp_target, loss_cfg.gp_one_sided)
                loss = loss + penalty
            if loss_cfg.drift:
                loss = loss + drift_penalty(real_scores, loss_cfg.drift)
        self.opt_c.zero_grad(set_to_none=True)
        # `inputs=`: the interpolates are a leaf that requires grad, and a plain backward() would also propagate
        # the penalty back to them through the whole double-backward graph, for a gradient nobody reads.
        scaler.scale(loss).backward(inputs=self.critic_params)
        scaler.step(self.opt_c)
        scaler.update()
        if loss_cfg.variant == "clip":
            clip_weights(self.nets.critic, loss_cfg.clip_value)
        with torch.no_grad():
            return {"wasserstein": wasserstein_estimate(real_scores, fake_scores).item(), "gp": penalty.item(),
                    "critic_loss": loss.item()}

    def generator_step(self) -> dict[str, float]:
        c = self.nets.critic  # unwrapped: the critic is frozen here, only the generator's gradients are reduced
        scaler = self.scalers["generator"]
        c.requires_grad_(False)
        try:
            with self._autocast():
                loss = generator_loss(c(self.g_train(self._noise(self.config.train.batch_size))).float())
            self.opt_g.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(self.opt_g)
            scaler.update()
        finally:
            c.requires_grad_(True)
        ddp.sync_buffers(self.nets.generator, self.dist)
        ddp.sync_buffers(self.nets.critic, self.dist)
        if self.nets.ema is not None:
            t = self.config.train
            decay = ema_decay_at(t.ema or 0.0, self.progress.iteration + 1, t.ema_warmup)
            update_ema(self.nets.ema, self.nets.generator, decay)
        return {"generator_loss": loss.item()}

    # -- outputs along the way ----------------------------------------------------------------------------------

    def write_samples(self, tag: str, progress: Progress) -> Path:
        """A sample PNG from fixed latents; for mixtures also log the mode coverage of those samples."""
        fake = self._fixed_samples()
        path = self.out_dir / "samples" / f"{tag}.png"
        if self.kind == "image":
            return save_image_grid(fake, path, nrow=self.config.eval.grid_size)
        centres = self.mixture[0] if self.mixture else None
        if self.mixture is not None:
            cov = mode_coverage(fake, *self.mixture)
            self._log({"iteration": progress.iteration, "time_s": round(progress.elapsed, 3),
                       "modes_covered": cov["modes_covered"], "high_quality_share": cov["high_quality_share"]})
        return save_scatter(fake, path, real=self.dataset.heldout[: len(fake)], centres=centres)

    def _fixed_samples(self) -> torch.Tensor:
        gen = self.nets.served
        with _eval_mode(gen), torch.no_grad():
            return torch.cat([gen(z.to(self.device)).float().cpu() for z in self.fixed_z.split(500)])

    def evaluate(self, n_fake: int, n_real: int | None = None, final: bool = False) -> tuple[Any, dict[str, Any]]:
        """(critic reference, metrics) with the served generator and the critic in eval mode."""
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
        if final and self.kind == "image":
            metrics.update(self._image_quality())
        return reference, metrics

    def _image_quality(self) -> dict[str, Any]:
        """Classifier figures (Frechet distance, coverage, class KL, precision/recall) where they apply."""
        g = self.config.model.generator
        if not image_metrics.supports(self.config.data.dataset, g.channels, g.resolution):
            return {}
        with _eval_mode(self.nets.served):
            fake = generate(self.nets.served, self.config.eval.quality_samples, self.z_dim,
                            seed=self.config.seed + 17, device=self.device)
        figures = image_metrics.ClassifierMetrics().compare(fake, self.dataset.heldout, "held-out")
        return {"quality": figures}

    def summary(self, progress: Progress, stopped_by: str, metrics: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        return {
            "name": cfg.name,
            "dataset": self.dataset.summary(),
            "loss": cfg.loss.model_dump(mode="json"),
            "hyperparameters": {
                **cfg.optim.model_dump(mode="json"),
                "optimizer": cfg.optim.resolved(cfg.loss.variant),
                "batch_size": cfg.train.batch_size,
                "ema_decay": cfg.train.ema,
                "seed": cfg.seed,
                "world_size": self.dist.world_size,
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
        reference, metrics = self.evaluate(n_fake, None if final else SNAPSHOT_SAMPLES, final=final)
        summary = self.summary(progress, stopped_by, metrics)
        metadata = make_metadata(self.config.model.generator, self.config.model.critic, reference, summary)
        return save_checkpoint(path, self.nets.served, self.nets.critic, metadata)

    def _log(self, record: dict[str, Any]) -> None:
        if self.dist.is_main:
            with self.metrics_file.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            if self.tensorboard is not None:
                self.tensorboard.write(record)

    # -- resume state -------------------------------------------------------------------------------------------

    def resume_state(self) -> dict[str, Any]:
        """Everything `restore` needs; collective under DDP (every rank's random streams are gathered)."""
        rngs = ddp.gather_objects({"global": global_rng_state(), "data": self.data_rng.get_state(),
                                   "noise": self.noise_rng.get_state()}, self.dist)
        return {
            "iteration": self.progress.iteration,
            "elapsed_s": self.progress.elapsed,
            "last": self.progress.last,
            "world_size": self.dist.world_size,
            "generator": self.nets.generator.state_dict(),
            "critic": self.nets.critic.state_dict(),
            "ema": self.nets.ema.state_dict() if self.nets.ema is not None else {},
            "opt_generator": self.opt_g.state_dict(),
            "opt_critic": self.opt_c.state_dict(),
            "schedulers": [s.state_dict() for s in self.schedulers],
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "rng": rngs,
            "config": self.config.model_dump_json(),
        }

    def write_resume_state(self) -> None:
        state = self.resume_state()  # every rank takes part in the gather
        if self.dist.is_main:
            save_resume_state(self.out_dir / RESUME_FILE, state)

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a resume state: weights, optimisers, schedulers, scalers, iteration, clock, every RNG."""
        if state["world_size"] != self.dist.world_size:
            raise ConfigError(f"the resume state was written by {state['world_size']} rank(s); resume with as many "
                              f"(this run has {self.dist.world_size})")
        self.nets.generator.load_state_dict(state["generator"])
        self.nets.critic.load_state_dict(state["critic"])
        if self.nets.ema is not None:
            if not state["ema"]:
                raise ConfigError("the resume state has no EMA generator but this config keeps one")
            self.nets.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_generator"])
        self.opt_c.load_state_dict(state["opt_critic"])
        for scheduler, sd in zip(self.schedulers, state["schedulers"]):
            scheduler.load_state_dict(sd)
        for key, scaler in self.scalers.items():
            if state["scalers"].get(key):
                scaler.load_state_dict(state["scalers"][key])
        rng = state["rng"][self.dist.rank]
        set_global_rng_state(rng["global"])
        self.data_rng.set_state(rng["data"])
        self.noise_rng.set_state(rng["noise"])
        self.progress.iteration = int(state["iteration"])
        self.progress.last = dict(state["last"])
        self.progress.started = time.perf_counter() - float(state["elapsed_s"])

    # -- the loop -----------------------------------------------------------------------------------------------

    def _prepare_outputs(self, resumed: bool) -> None:
        if not self.dist.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resumed and self.metrics_file.is_file():  # drop records written after the state was saved
            kept = [line for line in self.metrics_file.read_text(encoding="utf-8").splitlines()
                    if json.loads(line).get("iteration", 0) <= self.progress.iteration]
            self.metrics_file.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        else:
            self.metrics_file.write_text("", encoding="utf-8")
        (self.out_dir / "config.json").write_text(self.config.model_dump_json(indent=2), encoding="utf-8")

    def run(self, resumed: bool = False) -> Path:
        self._prepare_outputs(resumed)
        if self.config.train.tensorboard and self.dist.is_main:
            self.tensorboard = TensorBoardLog(self.out_dir, self.progress.iteration if resumed else None)
        try:
            return self._train()
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()

    def _train(self) -> Path:
        cfg, t = self.config, self.config.train
        self.nets.generator.train()
        self.nets.critic.train()
        progress = self.progress
        stopped_by = "iterations"
        bar = tqdm(total=t.iterations, initial=progress.iteration, disable=not self.show_progress, unit="it",
                   dynamic_ncols=True, desc=cfg.name, mininterval=0.5)
        try:
            for it in range(progress.iteration + 1, t.iterations + 1):
                if t.max_seconds is not None and progress.elapsed >= t.max_seconds:
                    stopped_by = "time budget"
                    break
                stats = self.critic_phase()
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
                if self.dist.is_main and t.sample_every and it % t.sample_every == 0:
                    self.write_samples(f"iter_{it:06d}", progress)
                if self.dist.is_main and t.checkpoint_every and it % t.checkpoint_every == 0:
                    path = self.out_dir / "checkpoints" / f"{cfg.name}-{it:06d}.safetensors"
                    self.write_checkpoint(path, progress, "in progress", final=False)
                if t.resume_every and it % t.resume_every == 0:
                    self.write_resume_state()
        except KeyboardInterrupt:
            if not self.dist.enabled:  # a single process can save where it stopped; ranks may be mid-collective
                self.write_resume_state()
                log.warning("%s: interrupted after %d generator iterations; continue with --resume %s",
                            cfg.name, progress.iteration, self.out_dir)
            raise
        finally:
            bar.close()
        if stopped_by == "time budget":
            log.warning("%s: time budget of %.0f s spent after %d generator iterations", cfg.name, t.max_seconds,
                        progress.iteration)
        self.write_resume_state()
        log.info("rank %d: weights sha256 %s", self.dist.rank,
                 ddp.weights_digest(self.nets.generator, self.nets.critic, *([self.nets.ema] if self.nets.ema else [])))
        final = self.out_dir / f"{cfg.name}.safetensors"
        if self.dist.is_main:
            self.write_samples("final", progress)
            self.write_pictures()
            self.write_checkpoint(final, progress, stopped_by, final=True)
        ddp.barrier(self.dist)
        return final

    def write_pictures(self) -> None:
        """Loss curves from metrics.jsonl and, for images, an interpolation strip of the served generator."""
        records = [json.loads(line) for line in self.metrics_file.read_text(encoding="utf-8").splitlines()]
        save_loss_curves([r for r in records if "wasserstein" in r], self.out_dir / "loss_curves.png")
        if self.kind == "image":
            gen = self.nets.served
            with _eval_mode(gen), torch.no_grad():
                save_interpolation_strip(gen, self.z_dim, self.out_dir / "samples" / "interpolation.png",
                                         seed=self.config.seed + 19, device=self.device)


def train(config: TrainConfig, out_dir: str | Path, device: str = "auto", progress: bool = True,
          resume: bool = False) -> Path:
    """Train `config` into `out_dir`; return the final checkpoint `out_dir/<config.name>.safetensors`.

    `resume=True` continues from `out_dir/resume.pt`. Under `torchrun` (WORLD_SIZE > 1) every rank trains with
    DDP and rank 0 alone writes files. `config.train.threads` applies for the duration of the call.
    """
    previous_threads = torch.get_num_threads()
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    ctx = ddp.context_from_env()
    dev = resolve_device(device)
    if ctx.enabled and dev.type == "cuda":
        dev = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(dev)
    ddp.init_process_group(ctx, dev)
    try:
        trainer = Trainer(config, Path(out_dir), dev, progress, ctx)
        if resume:
            trainer.restore(load_resume_state(Path(out_dir) / RESUME_FILE))
        return trainer.run(resumed=resume)
    finally:
        torch.set_num_threads(previous_threads)
        ddp.shutdown(ctx)
