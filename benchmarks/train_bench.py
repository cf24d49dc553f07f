"""Generator iterations per second: this trainer against the textbook WGAN-GP loop, same networks, in one run.

    python benchmarks/train_bench.py [--config configs/mnist5k.yaml] [--iterations 20] [--rounds 3]
                                     [--threads 1] [--channels-last on|off] [--amp none bf16]
                                     [--profile TOP] [--out result.json]

The textbook loop is the one in the public WGAN-GP ports: for each of n_critic critic steps a fresh real batch
from a shuffling DataLoader, separate critic passes over the real and the fake batch, the penalty in its own
function (`autograd.grad(..., create_graph=True, retain_graph=True)`), three `backward()` calls, plain Adam; then
one generator step. This trainer draws all n_critic fake batches in one generator pass, scores real and fake
in one critic pass, backpropagates once into the critic's parameters only (not into the interpolates), steps
fused Adam, optionally in channels_last, and on the CPU computes the generator's one-channel output layer as a
GEMM plus col2im (training/fold_convs.py).

The trainer is timed once per `--amp` setting (default both): `none` is float32 throughout like the textbook
loop; `bf16` autocasts the forward passes to bfloat16 (`train.amp=bf16`; weights, Adam state and the penalty's
gradient norm stay float32), which pays on CPUs with native bfloat16 dot products (AVX512-BF16 or AMX; the JSON
says whether this one has them). Whether it costs quality is for benchmarks/train_quality_bench.py to show.

All loops train the networks of `--config` (default the bundled model's, batch 64, n_critic 5), from the same
initial weights, on the CPU with `--threads` torch threads. Within each round the loops alternate iteration by
iteration, so that machine load hits them alike; the figures are the median rounds. One JSON document is printed
(and written to --out): iterations per second of each loop and each trainer's ratio to the textbook loop, the
same from CPU time (steadier on a shared machine), and with --profile TOP the operators where each loop spends
its time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import build_critic, build_generator  # noqa: E402
from training import Trainer, load_config  # noqa: E402


class TextbookLoop:
    """The reference implementation's step, kept deliberately as it is usually written."""

    def __init__(
        self,
        generator: nn.Module,
        critic: nn.Module,
        train_images: torch.Tensor,
        batch_size: int,
        n_critic: int,
        z_dim: int,
        lr: float,
        betas: tuple[float, float],
    ) -> None:
        self.g, self.c = generator, critic
        self.bs, self.n_critic, self.z_dim = batch_size, n_critic, z_dim
        self.opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
        self.opt_c = torch.optim.Adam(critic.parameters(), lr=lr, betas=betas)
        data = torch.utils.data.TensorDataset(train_images)
        self.loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True)
        self.batches = iter(self.loader)

    def _real(self) -> torch.Tensor:
        try:
            (batch,) = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            (batch,) = next(self.batches)
        return batch

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        alpha = torch.rand(real.size(0), 1, 1, 1).expand_as(real)
        interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        scores = self.c(interpolates)
        grads = torch.autograd.grad(
            outputs=scores,
            inputs=interpolates,
            grad_outputs=torch.ones_like(scores),
            create_graph=True,
            retain_graph=True,
            only_inputs=True,
        )[0]
        grads = grads.view(grads.size(0), -1)
        return ((grads.norm(2, dim=1) - 1) ** 2).mean() * 10.0

    def step(self) -> None:
        for p in self.c.parameters():
            p.requires_grad = True
        for _ in range(self.n_critic):
            real = self._real()
            self.c.zero_grad()
            d_real = self.c(real).mean()
            d_real.backward(torch.tensor(-1.0))
            with torch.no_grad():
                fake = self.g(torch.randn(self.bs, self.z_dim))
            d_fake = self.c(fake).mean()
            d_fake.backward(torch.tensor(1.0))
            penalty = self.gradient_penalty(real, fake)
            penalty.backward()
            self.opt_c.step()
        for p in self.c.parameters():
            p.requires_grad = False
        self.g.zero_grad()
        g_cost = -self.c(self.g(torch.randn(self.bs, self.z_dim))).mean()
        g_cost.backward()
        self.opt_g.step()


def _time(step: Any, iterations: int) -> float:
    started = time.perf_counter()
    for _ in range(iterations):
        step()
    return iterations / (time.perf_counter() - started)


def _interleaved(steps: dict[str, Any], iterations: int) -> tuple[dict[str, float], dict[str, float]]:
    """(iterations per second, CPU seconds per iteration) of each step, timed alternately iteration by iteration
    (load drifts hit all alike; the process's CPU time is what the step computed, whatever else ran)."""
    spent = dict.fromkeys(steps, 0.0)
    cpu = dict.fromkeys(steps, 0.0)
    for _ in range(iterations):
        for name, step in steps.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            step()
            spent[name] += time.perf_counter() - started
            cpu[name] += time.process_time() - cpu_started
    return (
        {name: iterations / seconds for name, seconds in spent.items()},
        {name: seconds / iterations for name, seconds in cpu.items()},
    )


def _profile(step: Any, iterations: int, top: int) -> list[dict[str, Any]]:
    """The `top` operators by self CPU time over `iterations` steps, per iteration, with their input shapes."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(iterations):
            step()
    events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {
            "op": e.key,
            "input_shapes": str([s for s in e.input_shapes if s])[:120],
            "calls_per_iteration": round(e.count / iterations, 1),
            "self_ms_per_iteration": round(e.self_cpu_time_total / 1000 / iterations, 2),
            "share": round(e.self_cpu_time_total / total, 3),
        }
        for e in events[:top]
    ]


def summarise(rates: dict[str, list[float]], cpu_s: dict[str, list[float]], suffixes: dict[str, str]) -> dict[str, Any]:
    """The figures of the timed rounds, each loop's the median of its rounds.

    `rates` holds each loop's iterations per second and `cpu_s` its CPU seconds per iteration, one value per round,
    under the loop's name: `textbook` and the trainer loops named in `suffixes`, which maps each to the suffix of
    its ratio keys (`trainer` -> "", `trainer_bf16` -> "_bf16"). A ratio above 1 means the trainer is faster:
    `ratio` from wall time (its rate over the textbook's), `cpu_time_ratio` from CPU time (the textbook's CPU
    seconds over its own). Rates are rounded to 3 places, CPU times given in ms to 1 place, ratios to 3 places.
    """
    rate = {name: statistics.median(v) for name, v in rates.items()}
    cpu = {name: statistics.median(v) for name, v in cpu_s.items()}
    figures: dict[str, Any] = {
        "textbook_it_per_s": round(rate["textbook"], 3),
        "textbook_cpu_ms_per_it": round(cpu["textbook"] * 1000, 1),
    }
    for name, suffix in suffixes.items():
        figures.update(
            {
                f"{name}_it_per_s": round(rate[name], 3),
                f"ratio{suffix}": round(rate[name] / rate["textbook"], 3),
                f"{name}_cpu_ms_per_it": round(cpu[name] * 1000, 1),
                f"cpu_time_ratio{suffix}": round(cpu["textbook"] / cpu[name], 3),
            }
        )
    figures["rounds_it_per_s"] = {k: [round(v, 3) for v in vs] for k, vs in rates.items()}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "mnist5k.yaml")
    parser.add_argument("--iterations", type=int, default=20, help="generator iterations per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per loop, alternating")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--channels-last", choices=["on", "off"], default=None, help="override train.channels_last of the config"
    )
    parser.add_argument(
        "--amp",
        nargs="+",
        choices=["none", "bf16"],
        default=["none", "bf16"],
        help="the trainer's train.amp settings to time, each as its own loop (the textbook loop "
        "stays fp32); default both",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="TOP",
        help="also profile 3 iterations of each loop and list the TOP operators by self CPU time",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    overrides = ["train.batch_size=64", "optim.lr_decay=false", "train.max_seconds=null"]
    if args.channels_last is not None:
        overrides.append(f"train.channels_last={'true' if args.channels_last == 'on' else 'false'}")
    amps = list(dict.fromkeys(args.amp))
    names = {amp: "trainer" if amp == "none" else f"trainer_{amp}" for amp in amps}
    trainers: dict[str, Trainer] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for amp, name in names.items():  # same config and seed: the same initial weights in every loop
            config = load_config(args.config, [*overrides, f"train.amp={amp}"])
            trainers[name] = Trainer(config, Path(tmp), torch.device("cpu"), progress=False)
    first = next(iter(trainers.values()))
    # The textbook loop starts from the same weights, in plain torch modules and the default memory format.
    g = build_generator(config.model.generator)
    g.load_state_dict(first.nets.generator.state_dict())
    c = build_critic(config.model.critic)
    c.load_state_dict(first.nets.critic.state_dict())
    g.train()
    c.train()
    train_images = getattr(first.dataset, "train", None)
    if train_images is None:
        parser.error("the benchmark needs a finite image or point dataset with a training split")
    o = config.optim
    textbook = TextbookLoop(g, c, train_images, 64, o.n_critic, config.model.generator.z_dim, o.lr_generator, o.betas)

    steps = {**{name: t.step for name, t in trainers.items()}, "textbook": textbook.step}
    for step in steps.values():  # warm-up: allocator, kernels, first-call overheads
        _time(step, 2)
    rates: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        round_rates, round_cpu = _interleaved(steps, args.iterations)
        for name in steps:
            rates[name].append(round_rates[name])
            cpu[name].append(round_cpu[name])
    result: dict[str, Any] = {
        "benchmark": "generator iterations per second, WGAN-GP, batch 64",
        "config": str(args.config),
        "generator": config.model.generator.model_dump(mode="json"),
        "critic": config.model.critic.model_dump(mode="json"),
        "n_critic": o.n_critic,
        "channels_last": config.train.channels_last,
        "threads": args.threads,
        "iterations_per_round": args.iterations,
        "rounds": args.rounds,
        # `trainer_*` (fp32) and `trainer_bf16_*`, each with its ratio to the textbook
        **summarise(rates, cpu, {name: "" if amp == "none" else f"_{amp}" for amp, name in names.items()}),
        "bf16_kernels": _cpu_has_bf16(),
        "torch": torch.__version__,
        "machine": {"cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "platform": platform.platform()},
    }
    if args.profile:
        result["profile"] = {name: _profile(step, 3, args.profile) for name, step in steps.items()}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


def _cpu_has_bf16() -> bool:
    """Whether this CPU has native bfloat16 dot products (AVX512-BF16 or AMX), which bf16 autocast needs to pay."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


if __name__ == "__main__":
    sys.exit(main())
