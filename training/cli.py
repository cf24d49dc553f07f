"""`wgan-train --config CONFIG.yaml --out RUN_DIR [--iterations N] [--device auto|cpu|cuda] [--set a.b=value ...]`.

`wgan-train --resume RUN_DIR [--iterations N]` continues a run from RUN_DIR/resume.pt with RUN_DIR/config.json.
`wgan-train --config CONFIG.yaml --out RUN_DIR --auto-resume` does that when RUN_DIR/resume.pt exists and starts the
run otherwise: one command line for a job that a scheduler may stop and start again (a preempted pod).
Under `torchrun --nproc_per_node N -m training ...` every rank trains with DDP and rank 0 writes the files.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from models import read_metadata
from training.config import ConfigError, load_config
from training.data import DataError
from training.distributed import context_from_env
from training.loop import train
from training.resume import RESUME_FILE, ResumeError

log = logging.getLogger("training.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wgan-train",
        description="Train a WGAN-GP and write RUN_DIR/<name>.safetensors (plus sample PNGs and metrics).",
    )
    parser.add_argument("--config", type=Path, help="YAML training config (see configs/)")
    parser.add_argument("--out", type=Path, help="run directory for samples and checkpoints")
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its resume.pt (its config.json; --iterations may extend it)",
    )
    parser.add_argument(
        "--auto-resume",
        action="store_true",
        help="with --config and --out: continue from RUN_DIR/resume.pt when there is one (as --resume RUN_DIR "
        "would), else start; the same command line then serves a first start and every restart",
    )
    parser.add_argument("--iterations", type=int, help="generator iterations (overrides train.iterations)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.batch_size=128 (value parsed as YAML); repeatable",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (overrides train.threads)")
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write the loss curves' scalars to RUN_DIR/tb for TensorBoard (train.tensorboard=true)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = list(args.overrides)
    if args.iterations is not None:
        if args.iterations < 1:
            parser.error("--iterations must be a positive number of generator iterations")
        overrides.append(f"train.iterations={args.iterations}")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        overrides.append(f"train.threads={args.threads}")
    if args.tensorboard:
        overrides.append("train.tensorboard=true")
    if args.device != "auto" and not (args.device == "cpu" or args.device.startswith("cuda")):
        parser.error(f"--device must be auto, cpu, cuda or cuda:N, got {args.device!r}")
    if args.auto_resume:
        if args.resume is not None or args.config is None or args.out is None:
            parser.error("--auto-resume goes with --config and --out (not --resume)")
        if (args.out / RESUME_FILE).is_file():
            log.info("%s holds a resume state: continuing that run with its config.json", args.out / RESUME_FILE)
            args.resume, args.config = args.out, None
    if args.resume is not None:
        if args.config is not None:
            parser.error("--resume reads RUN_DIR/config.json; leave out --config (use --set to change a value)")
        if args.out is not None and args.out.resolve() != args.resume.resolve():
            parser.error("--resume continues in RUN_DIR; leave out --out")
        args.config, args.out = args.resume / "config.json", args.resume
    elif args.config is None or args.out is None:
        parser.error("--config and --out are required (or --resume RUN_DIR)")
    try:
        config = load_config(args.config, overrides)
    except ConfigError as exc:
        parser.error(str(exc))

    try:
        checkpoint = train(
            config, args.out, device=args.device, progress=not args.no_progress, resume=args.resume is not None
        )
    except (ConfigError, DataError, ResumeError) as exc:
        parser.error(str(exc))
    except FloatingPointError as exc:
        print(f"wgan-train: {exc}; try a lower learning rate or a different seed", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("wgan-train: interrupted", file=sys.stderr)
        return 130
    if context_from_env().rank != 0:
        return 0
    metrics = read_metadata(checkpoint).training.get("final_metrics", {})
    shown = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
    print(f"checkpoint: {checkpoint}")
    print(f"final metrics: {json.dumps(shown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
