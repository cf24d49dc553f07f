"""The training loop: orchestration only. The objective is losses.py's; networks, evaluation, checkpoint writing,
pictures and metrics records live in their own modules (networks, evaluation, snapshots, pictures, metrics_log)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from models import has_batch_norm
from training import distributed as ddp
from training.config import ConfigError, TrainConfig, with_classes
from training.data import DataError, Dataset, load_dataset
from training.losses import constrain_critic, critic_objective, generator_objective
from training.metrics_log import MetricsLog
from training.networks import build_networks, ema_decay_at, update_ema
from training.pictures import RunPictures
from training.progress import Progress
from training.resume import RESUME_FILE, global_rng_state, load_resume_state, save_resume_state, set_global_rng_state
from training.snapshots import write_checkpoint

log = logging.getLogger(__name__)

Schedulers = list[torch.optim.lr_scheduler.LambdaLR]

# fp16: how many generator iterations in a row may have no finite critic step (every one skipped by GradScaler)
# before the run counts as diverged. Each skip halves the scale, so by then it has fallen by 2**(limit * n_critic).
MAX_SKIPPED_ITERATIONS = 25


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


def make_optimizer(
    params: Iterator[nn.Parameter] | list[dict[str, Any]],
    kind: str,
    lr: float,
    betas: tuple[float, float],
    fused: bool,
    device: torch.device,
) -> torch.optim.Optimizer:
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if fused and device.type in ("cpu", "cuda"):
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    return torch.optim.Adam(params, lr=lr, betas=betas)


def generator_param_groups(generator: nn.Module, mapping_lr: float) -> list[dict[str, Any]]:
    """The generator's parameters, with those of its mapping network (if any) in a group of their own at
    `mapping_lr`: StyleGAN trains its mapping network at a hundredth of the generator's rate."""
    mapping = getattr(generator, "mapping", None)
    mapped = list(mapping.parameters()) if isinstance(mapping, nn.Module) else []
    if not mapped:
        return [{"params": list(generator.parameters())}]
    ids = {id(p) for p in mapped}
    return [{"params": [p for p in generator.parameters() if id(p) not in ids]}, {"params": mapped, "lr": mapping_lr}]


def make_optimizers(
    config: TrainConfig, generator: nn.Module, critic: nn.Module, device: torch.device
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer, Schedulers]:
    """(generator's, critic's optimiser, their linear decays to zero over train.iterations when optim.lr_decay)."""
    o = config.optim
    kind = o.resolved(config.loss.variant)
    groups = generator_param_groups(generator, o.lr_generator * o.mapping_lr_scale)
    opt_g = make_optimizer(groups, kind, o.lr_generator, o.betas, o.fused, device)
    opt_c = make_optimizer(critic.parameters(), kind, o.lr_critic, o.betas, o.fused, device)
    if not o.lr_decay:
        return opt_g, opt_c, []
    total = config.train.iterations
    decay = lambda step: max(0.0, 1.0 - step / total)  # noqa: E731
    return opt_g, opt_c, [torch.optim.lr_scheduler.LambdaLR(opt, decay) for opt in (opt_g, opt_c)]


def _check_shapes(config: TrainConfig, dataset: Dataset) -> None:
    g = config.model.generator
    expected = (g.out_dim,) if g.kind == "points" else (g.channels, g.resolution, g.resolution)
    if dataset.sample_shape != expected:
        raise DataError(
            f"dataset {dataset.name!r} gives samples of shape {list(dataset.sample_shape)} but the model "
            f"expects {list(expected)}"
        )


class Trainer:
    """One run: owns the networks, optimisers and random streams, and orchestrates them.

    `step()` is one generator iteration; `run()` trains to the budget and writes RUN_DIR; `resume_state()` and
    `restore()` carry a run over to another process bit for bit. The objective comes from losses.py, checkpoints
    from snapshots.py, pictures from pictures.py, metrics records from metrics_log.py.
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: Path,
        device: torch.device,
        progress: bool,
        dist_ctx: ddp.DistContext | None = None,
    ) -> None:
        self.config = config
        self.out_dir = out_dir
        self.dist = dist_ctx or ddp.DistContext()
        self.device = device
        self.show_progress = progress and self.dist.is_main
        t = config.train
        torch.manual_seed(config.seed)  # weight initialisation: the same on every rank
        self.dataset = load_dataset(config.data, config.model.kind)
        _check_shapes(config, self.dataset)
        self.conditional = config.model.conditional
        if self.conditional:
            if self.dataset.classes is None:
                raise DataError(
                    f"model.conditional needs labelled data, and dataset {self.dataset.name!r} has no labels "
                    "(folder:PATH needs one subfolder per class; npz:PATH a 'y' array)"
                )
            config = self.config = with_classes(config, len(self.dataset.classes))
        self.nets = build_networks(config, device)
        image = config.model.kind == "image"
        self.memory_format = torch.channels_last if t.channels_last and image else torch.contiguous_format
        # The networks the optimisers step: DDP-wrapped when there is more than one rank.
        self.critic_has_batch_norm = has_batch_norm(self.nets.critic)
        self.g_train = ddp.wrap(self.nets.generator, self.dist, device)
        self.c_train = ddp.wrap(self.nets.critic, self.dist, device)
        # What the critic's backward differentiates: its parameters only, never the interpolates (see critic_step).
        self.critic_params = [p for p in self.nets.critic.parameters() if p.requires_grad]
        self.opt_g, self.opt_c, self.schedulers = make_optimizers(config, self.nets.generator, self.nets.critic, device)
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.amp)
        # fp16 loss scaling works the same on every device (on the CPU it is slow, for tests and debugging).
        self.scalers = {
            name: torch.amp.GradScaler(device.type, enabled=t.amp == "fp16") for name in ("generator", "critic")
        }
        self._one = torch.ones((), device=device)
        self._non_finite_iterations = 0  # fp16: generator iterations in a row without a finite critic step
        # Separate CPU streams per rank, so the data stream does not depend on the model's shape and vice versa.
        offset = 1_000_003 * self.dist.rank
        self.data_rng = torch.Generator("cpu").manual_seed(config.seed * 3 + 1 + offset)
        self.noise_rng = torch.Generator("cpu").manual_seed(config.seed * 3 + 2 + offset)
        self.progress = Progress()
        self.metrics = MetricsLog(out_dir, enabled=self.dist.is_main)
        self.pictures = RunPictures(config, out_dir, self.dataset.heldout, device)

    def _autocast(self) -> AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    # -- one generator iteration --------------------------------------------------------------------------------

    def step(self) -> dict[str, float]:
        """n_critic critic steps, one generator step (with the EMA), the schedulers; returns the step's figures.

        The figures stay on the device until the end of the iteration and come back in one copy. With fp16, a
        step that GradScaler skips (its gradients overflowed) is expected: the critic figures average the steps
        whose figures are finite, `skipped_steps` counts the skips, and an iteration without one finite critic
        step repeats the previous figures. Only `MAX_SKIPPED_ITERATIONS` such iterations in a row (or any
        non-finite figure without loss scaling) stop the run with FloatingPointError.
        """
        critic = self.critic_phase()
        generator = self.generator_step()
        for scheduler in self.schedulers:
            scheduler.step()
        self.progress.iteration += 1
        figures = dict(critic)
        for key, value in generator.items():  # `skipped_steps` counts both networks' steps
            figures[key] = figures[key] + value if key in figures else value
        stats = dict(zip(figures, torch.stack(list(figures.values())).tolist(), strict=True))  # one host copy
        if self.scalers["critic"].is_enabled():
            stats = self._carry_over_skipped(stats)
        self.progress.last = stats
        if not all(math.isfinite(v) for v in stats.values()):
            raise FloatingPointError(f"training diverged at generator iteration {self.progress.iteration}: {stats}")
        return stats

    def _carry_over_skipped(self, stats: dict[str, float]) -> dict[str, float]:
        """fp16: non-finite figures (an iteration whose critic steps were all skipped) repeat the previous ones."""
        if all(math.isfinite(v) for v in stats.values()):
            self._non_finite_iterations = 0
            return stats
        self._non_finite_iterations += 1
        if self._non_finite_iterations > MAX_SKIPPED_ITERATIONS:
            return stats
        previous = self.progress.last
        return {k: v if math.isfinite(v) else float(previous.get(k, 0.0)) for k, v in stats.items()}

    def _noise(self, n: int) -> torch.Tensor:
        z_dim = self.config.model.generator.z_dim
        return torch.randn(n, z_dim, generator=self.noise_rng).to(self.device, non_blocking=True)  # [n, z_dim]

    def critic_phase(self) -> dict[str, torch.Tensor]:
        """n_critic critic steps; the fake batches for all of them come from one generator pass.

        A conditional run draws its n_critic real batches first and generates each fake for its real batch's
        labels (real and fake streams are separate generators, so the unconditional order is unchanged).
        Returns device scalars: each figure averaged over the steps where it is finite (NaN if none is), and with
        fp16 `skipped_steps`, how many of the steps GradScaler skipped.
        """
        n_critic, bs = self.config.optim.n_critic, self.config.train.batch_size
        labelled = [self._labelled_batch() for _ in range(n_critic)] if self.conditional else []
        labels = torch.cat([y for _, y in labelled]) if labelled else None  # [n_critic * bs]
        with torch.no_grad(), self._autocast():
            fakes = self._generate(self.nets.generator, self._noise(n_critic * bs), labels).float()
        fakes = fakes.contiguous(memory_format=self.memory_format) if fakes.dim() == 4 else fakes
        steps = []
        for i, fake in enumerate(fakes.split(bs)):
            real, y = labelled[i] if labelled else (None, None)
            steps.append(self.critic_step(fake, real, y))
        totals: dict[str, torch.Tensor] = {}
        for key in steps[0]:
            values = torch.stack([step[key] for step in steps])  # [n_critic]
            if key == "skipped_steps":
                totals[key] = values.sum()
                continue
            finite = torch.isfinite(values)
            totals[key] = torch.where(finite, values, 0.0).sum() / finite.sum()  # NaN when no step is finite
        return totals

    def _labelled_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A real batch and its labels, on the device."""
        real, labels = self.dataset.sample_labelled(self.config.train.batch_size, self.data_rng)
        return real.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)

    @staticmethod
    def _generate(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        out: torch.Tensor = generator(z) if labels is None else generator(z, labels)
        return out

    def critic_step(
        self, fake: torch.Tensor, real: torch.Tensor | None = None, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """One critic step on `fake` against `real` (a fresh real batch when not given); `labels`: both's classes."""
        if real is None:
            real = self.dataset.sample(self.config.train.batch_size, self.data_rng).to(self.device, non_blocking=True)
        real = real.contiguous(memory_format=self.memory_format) if real.dim() == 4 else real
        scaler = self.scalers["critic"]
        scale_before = scaler.scale(self._one)  # a device scalar: reading GradScaler's scale needs no host sync
        with self._autocast():  # the penalty's critic is the unwrapped one under DDP: see distributed.py
            terms = critic_objective(
                self.config.loss,
                self.c_train,
                real,
                fake,
                self.noise_rng,
                separate_passes=self.critic_has_batch_norm,
                penalty_critic=self.nets.critic,
                scale=scale_before if scaler.is_enabled() else 1.0,  # fp16 loss scale
                labels=labels,
            )
        self.opt_c.zero_grad(set_to_none=True)
        # `inputs=`: the interpolates are a leaf that requires grad, and a plain backward() would also propagate
        # the penalty back to them through the whole double-backward graph, for a gradient nobody reads.
        scaler.scale(terms.loss).backward(inputs=self.critic_params)
        scaler.step(self.opt_c)
        scaler.update()
        constrain_critic(self.config.loss, self.nets.critic)
        figures = {"wasserstein": terms.wasserstein, "gp": terms.penalty.detach(), "critic_loss": terms.loss.detach()}
        if scaler.is_enabled():  # update() lowers the scale exactly when it skipped the step
            figures["skipped_steps"] = (scaler.scale(self._one) < scale_before).float()
        return {k: v.float() for k, v in figures.items()}

    def generator_step(self) -> dict[str, torch.Tensor]:
        c = self.nets.critic  # unwrapped: the critic is frozen here, only the generator's gradients are reduced
        scaler = self.scalers["generator"]
        c.requires_grad_(False)
        scale_before = scaler.scale(self._one)
        try:
            bs = self.config.train.batch_size
            labels = self.dataset.sample_labels(bs, self.data_rng).to(self.device) if self.conditional else None
            with self._autocast():
                loss = generator_objective(c, self._generate(self.g_train, self._noise(bs), labels), labels)
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
        figures = {"generator_loss": loss.detach().float()}
        if scaler.is_enabled():
            figures["skipped_steps"] = (scaler.scale(self._one) < scale_before).float()
        return figures

    # -- resume state -------------------------------------------------------------------------------------------

    def resume_state(self) -> dict[str, Any]:
        """Everything `restore` needs; collective under DDP (every rank's random streams are gathered)."""
        rngs = ddp.gather_objects(
            {"global": global_rng_state(), "data": self.data_rng.get_state(), "noise": self.noise_rng.get_state()},
            self.dist,
        )
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
            raise ConfigError(
                f"the resume state was written by {state['world_size']} rank(s); resume with as many "
                f"(this run has {self.dist.world_size})"
            )
        self.nets.generator.load_state_dict(state["generator"])
        self.nets.critic.load_state_dict(state["critic"])
        if self.nets.ema is not None:
            if not state["ema"]:
                raise ConfigError("the resume state has no EMA generator but this config keeps one")
            self.nets.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_generator"])
        self.opt_c.load_state_dict(state["opt_critic"])
        for scheduler, sd in zip(self.schedulers, state["schedulers"], strict=True):
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

    # -- the run ------------------------------------------------------------------------------------------------

    def run(self, resumed: bool = False) -> Path:
        """Train from the current state to train.iterations (or the time budget); return the final checkpoint."""
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.json").write_text(self.config.model_dump_json(indent=2), encoding="utf-8")
        self.metrics.open(self.progress.iteration if resumed else None, tensorboard=self.config.train.tensorboard)
        try:
            return self._train()
        finally:
            self.metrics.close()

    def _train(self) -> Path:
        cfg, t, progress = self.config, self.config.train, self.progress
        self.nets.generator.train()
        self.nets.critic.train()
        stopped_by = "iterations"
        bar = tqdm(
            total=t.iterations,
            initial=progress.iteration,
            disable=not self.show_progress,
            unit="it",
            dynamic_ncols=True,
            desc=cfg.name,
            mininterval=0.5,
        )
        try:
            while progress.iteration < t.iterations:
                if t.max_seconds is not None and progress.elapsed >= t.max_seconds:
                    stopped_by = "time budget"
                    break
                stats = self.step()
                it = progress.iteration
                if it % t.log_every == 0 or it == t.iterations:
                    bar.set_postfix(W=f"{stats['wasserstein']:.3f}", GP=f"{stats['gp']:.3f}", refresh=False)
                    self._log(stats)
                bar.update(1)
                if self.dist.is_main and t.sample_every and it % t.sample_every == 0:
                    self._write_samples(f"iter_{it:06d}")
                if self.dist.is_main and t.checkpoint_every and it % t.checkpoint_every == 0:
                    self._write_checkpoint(
                        self.out_dir / "checkpoints" / f"{cfg.name}-{it:06d}.safetensors", "in progress", final=False
                    )
                if t.resume_every and it % t.resume_every == 0:
                    self.write_resume_state()
        except KeyboardInterrupt:
            if not self.dist.enabled:  # a single process can save where it stopped; ranks may be mid-collective
                self.write_resume_state()
                log.warning(
                    "%s: interrupted after %d generator iterations; continue with --resume %s",
                    cfg.name,
                    progress.iteration,
                    self.out_dir,
                )
            raise
        finally:
            bar.close()
        if stopped_by == "time budget":
            log.warning(
                "%s: time budget of %.0f s spent after %d generator iterations",
                cfg.name,
                t.max_seconds,
                progress.iteration,
            )
        self.write_resume_state()
        log.info(
            "rank %d: weights sha256 %s",
            self.dist.rank,
            ddp.weights_digest(self.nets.generator, self.nets.critic, *([self.nets.ema] if self.nets.ema else [])),
        )
        final = self.out_dir / f"{cfg.name}.safetensors"
        if self.dist.is_main:
            self._write_samples("final")
            self.pictures.final(self.nets.served, self.metrics.records())
            self._write_checkpoint(final, stopped_by, final=True)
        ddp.barrier(self.dist)
        return final

    def _log(self, figures: dict[str, Any]) -> None:
        self.metrics.write({"iteration": self.progress.iteration, "time_s": round(self.progress.elapsed, 3), **figures})

    def _write_samples(self, tag: str) -> None:
        coverage = self.pictures.samples(self.nets.served, tag)
        if coverage is not None:  # mixtures: how many modes the fixed latents' samples reach
            self._log({key: coverage[key] for key in ("modes_covered", "high_quality_share")})

    def _write_checkpoint(self, path: Path, stopped_by: str, final: bool) -> Path:
        return write_checkpoint(
            path,
            self.config,
            self.nets,
            self.dataset,
            self.progress,
            stopped_by,
            self.device,
            self.dist.world_size,
            final,
        )


def train(
    config: TrainConfig, out_dir: str | Path, device: str = "auto", progress: bool = True, resume: bool = False
) -> Path:
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
            log.info(
                "rank %d: resumed at generator iteration %d of %d",
                ctx.rank,
                trainer.progress.iteration,
                config.train.iterations,
            )
        return trainer.run(resumed=resume)
    finally:
        torch.set_num_threads(previous_threads)
        ddp.shutdown(ctx)
