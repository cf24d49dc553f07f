"""Quality at equal wall time: this trainer against the textbook WGAN-GP loop, same networks, seed and budget.

    python benchmarks/train_quality_bench.py [--config configs/mnist5k.yaml] [--minutes 8 | --iterations N]
                                             [--threads 1] [--trainer-set KEY=VALUE ...]
                                             [--schedule parallel|sequential] [--samples 2000] [--out result.json]

Both loops train the networks and hyper-parameters of `--config` (the bundled model's recipe: generator width
32, critic width 16 with layer norm, batch 64, n_critic 5, Adam 2e-4 with betas (0, 0.9), lambda 10) from the
same initial weights (drawn from the config's seed), on the CPU with `--threads` torch threads each, for
`--minutes` of wall time each. The learning rates stay constant for both (the time budget fixes no iteration
count to decay over). The trainer is `training.Trainer.run()` as `wgan-train` runs it (its time budget is
`train.max_seconds`; periodic samples and resume files off); the textbook loop is `TextbookLoop` of
benchmarks/train_bench.py with plain Adam. `parallel` (the default) runs the two side by side in two processes,
so that load from other work on the machine hits both alike; `sequential` runs one after the other.

Each generator is then evaluated the same way, in eval mode, as `wgan-eval` does: `--samples` images from the
same latents against the 500 held-out digits, in the feature space of the project's mnist5k classifier
(`training.ClassifierMetrics`: Frechet distance, classes covered, class-histogram KL, k-NN precision / recall).
The headline compares the raw generators; the trainer's EMA generator (what its checkpoints store) is an extra
line. One JSON document is printed (and written to --out).

`--iterations N` gives both loops the same number of generator iterations instead of the same wall time (quality
per iteration: does a change to the trainer's arithmetic, such as `--trainer-set train.amp=bf16`, cost quality?).
`--trainer-set` overrides settings of the trainer only; the textbook loop stays fp32 as it is usually written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.train_bench import TextbookLoop  # noqa: E402
from models import ImageGeneratorConfig, build_critic, build_generator  # noqa: E402
from training import ClassifierMetrics, TrainConfig, Trainer, generate, load_config  # noqa: E402
from training.data import TensorDataset  # noqa: E402

EVAL_SEED = 1234  # latents of the evaluation samples, the same for every generator


def _config(
    path: Path, seconds: float | None, iterations: int | None = None, extra: tuple[str, ...] = ()
) -> TrainConfig:
    """The config of both loops: a time budget (`seconds`) or a fixed iteration count, constant learning rate."""
    budget = (
        [f"train.max_seconds={seconds}", "train.iterations=100000000"]
        if iterations is None
        else ["train.max_seconds=null", f"train.iterations={iterations}"]
    )
    return load_config(
        path,
        [
            *budget,
            "optim.lr_decay=false",
            "train.sample_every=0",
            "train.checkpoint_every=0",
            "train.resume_every=0",
            *extra,
        ],
    )


def train_trainer(
    config_path: Path,
    seconds: float | None,
    iterations: int | None,
    threads: int,
    out_dir: Path,
    extra: tuple[str, ...],
) -> dict[str, Any]:
    """Worker: `Trainer.run()` under the budget; saves the raw and EMA generators' state dicts."""
    torch.set_num_threads(threads)
    config = _config(config_path, seconds, iterations, extra)
    trainer = Trainer(config, out_dir / "trainer-run", torch.device("cpu"), progress=False)
    started = time.perf_counter()
    trainer.run()
    records = (out_dir / "trainer-run" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    last = json.loads(records[-1]) if records else {}
    torch.save(trainer.nets.generator.state_dict(), out_dir / "trainer-generator.pt")
    if trainer.nets.ema is not None:
        torch.save(trainer.nets.ema.state_dict(), out_dir / "trainer-ema.pt")
    return {
        "iterations": trainer.progress.iteration,
        "training_s": last.get("time_s"),
        "run_s_with_final_checkpoint": round(time.perf_counter() - started, 1),
    }


def train_textbook(
    config_path: Path, seconds: float | None, iterations: int | None, threads: int, out_dir: Path
) -> dict[str, Any]:
    """Worker: the textbook loop from the trainer's initial weights until the budget is spent."""
    torch.set_num_threads(threads)
    config = _config(config_path, seconds, iterations)
    with tempfile.TemporaryDirectory() as tmp:
        start = Trainer(config, Path(tmp), torch.device("cpu"), progress=False)  # same seed: same initial weights
    assert isinstance(start.dataset, TensorDataset), "the textbook loop needs a finite image dataset"
    g, c = build_generator(config.model.generator), build_critic(config.model.critic)
    g.load_state_dict(start.nets.generator.state_dict())
    c.load_state_dict(start.nets.critic.state_dict())
    g.train()
    c.train()
    o = config.optim
    torch.manual_seed(config.seed)
    loop = TextbookLoop(
        g,
        c,
        start.dataset.train,
        config.train.batch_size,
        o.n_critic,
        config.model.generator.z_dim,
        o.lr_generator,
        o.betas,
    )
    iterations_done, started = 0, time.perf_counter()
    while (time.perf_counter() - started < seconds) if seconds is not None else iterations_done < (iterations or 0):
        loop.step()
        iterations_done += 1
    elapsed = time.perf_counter() - started
    torch.save(g.state_dict(), out_dir / "textbook-generator.pt")
    return {"iterations": iterations_done, "training_s": round(elapsed, 1)}


def evaluate(
    config: TrainConfig, state_path: Path, heldout: torch.Tensor, metrics: ClassifierMetrics, samples: int
) -> dict[str, Any]:
    generator = build_generator(config.model.generator)
    generator.load_state_dict(torch.load(state_path, map_location="cpu", weights_only=True))
    fake = generate(generator.eval(), samples, config.model.generator.z_dim, seed=EVAL_SEED)  # [samples, C, H, W]
    return metrics.compare(fake, heldout, "held-out")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "mnist5k.yaml")
    budget_flags = parser.add_mutually_exclusive_group()
    budget_flags.add_argument("--minutes", type=float, default=None, help="wall-time budget of each loop (default 8)")
    budget_flags.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="instead of a wall-time budget, this many generator iterations for each loop",
    )
    parser.add_argument(
        "--trainer-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting of the trainer only, e.g. train.amp=bf16 (repeatable)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each loop")
    parser.add_argument("--schedule", choices=["parallel", "sequential"], default="parallel")
    parser.add_argument("--samples", type=int, default=2000, help="generated samples per evaluation")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.minutes is None and args.iterations is None:
        args.minutes = 8.0
    seconds = args.minutes * 60.0 if args.minutes is not None else None
    extra = tuple(args.trainer_set)
    config = _config(args.config, seconds, args.iterations, extra)
    g = config.model.generator
    if not isinstance(g, ImageGeneratorConfig) or not ClassifierMetrics.supports(
        config.data.dataset, g.channels, g.resolution
    ):
        parser.error(f"the classifier figures need mnist5k at 1x32x32; {args.config} trains {config.data.dataset}")

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        runs: dict[str, dict[str, Any]] = {}
        workers = 2 if args.schedule == "parallel" else 1
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            budget = (args.config, seconds, args.iterations, args.threads, out_dir)
            futures = {
                "trainer": pool.submit(train_trainer, *budget, extra),  # the overrides are the trainer's only
                "textbook": pool.submit(train_textbook, *budget),
            }
            for name, future in futures.items():
                runs[name] = future.result()
        load_after = os.getloadavg()
        torch.set_num_threads(args.threads)
        with tempfile.TemporaryDirectory() as data_tmp:
            heldout = Trainer(config, Path(data_tmp), torch.device("cpu"), progress=False).dataset.heldout
        metrics = ClassifierMetrics()
        results = {
            "trainer": evaluate(config, out_dir / "trainer-generator.pt", heldout, metrics, args.samples),
            "textbook": evaluate(config, out_dir / "textbook-generator.pt", heldout, metrics, args.samples),
        }
        if (out_dir / "trainer-ema.pt").is_file():
            results["trainer_ema"] = evaluate(config, out_dir / "trainer-ema.pt", heldout, metrics, args.samples)
    protocol = {}
    for figures in results.values():
        protocol = figures.pop("protocol")
    protocol["generated_samples"] = args.samples
    protocol["latents"] = f"N(0, I) from seed {EVAL_SEED}, the same for every generator; generators in eval mode"

    for name, run in runs.items():
        run["it_per_s"] = round(run["iterations"] / (seconds or run["training_s"]), 3)
        results[name] = {**run, **results[name]}
    results["trainer_ema"] = {"iterations": runs["trainer"]["iterations"], **results.get("trainer_ema", {})}
    fd_t, fd_b = results["trainer"]["frechet_distance"], results["textbook"]["frechet_distance"]
    report = {
        "benchmark": "quality at equal wall time, WGAN-GP on mnist5k: this trainer vs the textbook loop",
        "config": str(args.config),
        "minutes_each": args.minutes,
        "iterations_each": args.iterations,
        "trainer_overrides": list(extra),
        "trainer_amp": config.train.amp,
        "threads_each": args.threads,
        "schedule": args.schedule,
        "seed": config.seed,
        "hyperparameters": {
            "batch_size": config.train.batch_size,
            "n_critic": config.optim.n_critic,
            "lr": config.optim.lr_generator,
            "betas": list(config.optim.betas),
            "gp_weight": config.loss.gp_weight,
            "lr_decay": False,
            "ema_decay_trainer": config.train.ema,
        },
        "results": results,
        "frechet_distance_ratio_textbook_over_trainer": round(fd_b / fd_t, 3) if fd_t > 0 else None,
        "trainer_lower_frechet_distance": fd_t < fd_b,
        "iterations_ratio": round(runs["trainer"]["iterations"] / max(1, runs["textbook"]["iterations"]), 3),
        "protocol": protocol,
        "torch": torch.__version__,
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "platform": platform.platform(),
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
