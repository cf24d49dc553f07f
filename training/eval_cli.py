"""`wgan-eval CHECKPOINT.safetensors [--json]`: recompute a checkpoint's quality figures offline.

Points from a known mixture (ring8, grid25): mode coverage and high-quality share on fresh samples.
Images: where generated samples sit within the stored critic reference of real data (the critic's mean score,
the mean/median percentile), next to the figures stored at training time; for mnist5k models also the classifier
figures (Frechet distance, class coverage, class KL, precision/recall against the held-out split; see
training/image_metrics.py for the protocol, which the report repeats).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from models import CheckpointError, ImageGeneratorConfig, load_checkpoint, make_metadata, save_checkpoint
from training import image_metrics
from training.config import DataConfig, TrainConfig
from training.data import DataError, load_dataset
from training.evaluation import (
    DEFAULT_POINT_SAMPLES,
    critic_figures,
    critic_scores,
    cycling_labels,
    generate,
    mixture_for,
    mode_coverage,
    reference_scores,
    reference_seed,
)

# The classifier figures that --seeds reports over several draws of latents, with the names the text report uses;
# a conditional model adds CLASS_SPREAD_FIGURES (from its per-class figures).
SPREAD_FIGURES = {"frechet_distance": "FD", "class_kl": "class KL", "precision": "precision", "recall": "recall"}
CLASS_SPREAD_FIGURES = {"class_accuracy": "accuracy on the requested class"}


def evaluate_checkpoint(
    path: Path, samples: int | None = None, seed: int = 0, device: str = "cpu", seeds: int = 1
) -> dict[str, Any]:
    """The report for latents from `seed`; with `seeds` > 1 and classifier figures, also those figures for the
    latents of seeds `seed` .. `seed + seeds - 1` in `quality_over_seeds` (each value, mean, min and max), since
    one draw of generated samples moves them by more than two models often differ."""
    ckpt = load_checkpoint(path, device=device)
    meta = ckpt.metadata
    training = meta.training or {}
    dataset = (training.get("dataset") or {}).get("name") if isinstance(training.get("dataset"), dict) else None
    report: dict[str, Any] = {
        "checkpoint": str(path),
        "version": ckpt.version,
        "kind": meta.kind,
        "dataset": dataset,
        "z_dim": meta.z_dim,
        "generator_iterations": training.get("generator_iterations"),
        "wall_time_s": training.get("wall_time_s"),
    }
    n = samples or (DEFAULT_POINT_SAMPLES if meta.kind == "points" else 1000)
    labels = cycling_labels(n, meta.n_classes) if meta.n_classes else None  # conditional: every class in turn
    if meta.classes is not None:
        report["classes"] = meta.classes
    fake = generate(ckpt.generator, n, meta.z_dim, seed=seed, device=device, labels=labels)
    report["finite_samples_share"] = float(torch.isfinite(fake.flatten(1)).all(dim=1).float().mean())
    scores = critic_scores(ckpt.critic, fake, device, labels=labels)
    report["critic"] = critic_figures(meta.critic_reference, scores)
    stored_fake = meta.critic_reference.fake
    report["critic"]["critic_mean_fake_at_training"] = stored_fake.mean if stored_fake else None
    g = meta.generator
    if isinstance(g, ImageGeneratorConfig):  # (the metadata's channels and height are the generator's)
        pixels = fake.clamp(-1, 1)
        report["pixels"] = {
            "mean": float(pixels.mean()),
            "std": float(pixels.std()),
            "per_sample_std_mean": float(pixels.flatten(1).std(dim=1).mean()),
        }
        draws = [fake] + [
            generate(ckpt.generator, n, meta.z_dim, seed=other, device=device, labels=labels)
            for other in range(seed + 1, seed + seeds)
        ]
        figures = _classifier_figures(dataset, g.channels, g.resolution, draws, labels, training)
        qualities, by_class = figures if figures else (None, None)
        report["quality"] = qualities[0] if qualities else None
        if labels is not None and qualities:
            report["class_quality"] = by_class[0] if by_class else None
        if qualities and seeds > 1:
            names, rows = SPREAD_FIGURES, qualities
            if by_class:
                names = SPREAD_FIGURES | CLASS_SPREAD_FIGURES
                rows = [q | c for q, c in zip(qualities, by_class, strict=True)]
            report["quality_over_seeds"] = _spread(list(range(seed, seed + seeds)), names, rows)
    else:
        mixture = mixture_for(dataset or "")
        if mixture is None:
            report["mode_coverage"] = None
            report["note"] = f"no mode figures for dataset {dataset!r} (only ring8 and grid25 have known modes)"
        else:
            report["mode_coverage"] = mode_coverage(fake, *mixture)
    return report


def _spread(seeds: list[int], names: dict[str, str], draws: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure of `names` over the draws: the values in seed order, their mean, min and max."""
    spread: dict[str, Any] = {"seeds": seeds}
    for name in names:
        values = [float(d[name]) for d in draws]
        spread[name] = {"values": values, "mean": sum(values) / len(values), "min": min(values), "max": max(values)}
    return spread


def _classifier_figures(
    dataset: str | None,
    channels: int,
    resolution: int,
    draws: list[torch.Tensor],
    labels: torch.Tensor | None,
    training: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None] | None:
    """For datasets the classifier knows: the classifier figures of each draw of generated images against the
    held-out split the run used and, for a conditional model (`labels`, the class each image was generated for)
    with a labelled split, each draw's per-class figures. The data and the classifier are loaded once."""
    if not image_metrics.supports(dataset, channels, resolution):
        return None
    data = DataConfig.model_validate((training.get("config") or {}).get("data") or {"dataset": dataset})
    split = load_dataset(data, "image")
    metrics = image_metrics.ClassifierMetrics()
    overall = [metrics.compare(fake, split.heldout, "held-out") for fake in draws]
    if labels is None or split.heldout_labels is None:
        return overall, None
    return overall, [metrics.compare_by_class(fake, labels, split.heldout, split.heldout_labels) for fake in draws]


def store_quality(path: Path, quality: dict[str, Any], class_quality: dict[str, Any] | None = None) -> Path:
    """Rewrite the checkpoint with `quality` as training.final_metrics.quality, and a conditional model's
    `class_quality` beside it (weights and reference unchanged)."""
    ckpt = load_checkpoint(path)
    meta = ckpt.metadata
    training = dict(meta.training or {})
    stored = {"quality": quality} | ({"class_quality": class_quality} if class_quality is not None else {})
    training["final_metrics"] = {**(training.get("final_metrics") or {}), **stored}
    metadata = make_metadata(
        meta.generator, meta.critic, meta.critic_reference, training, meta.classes, meta.class_references
    )
    return save_checkpoint(path, ckpt.generator, ckpt.critic, metadata)


class StoreError(ValueError):
    """The references cannot be recomputed for this checkpoint; the message says why."""


def store_class_references(path: Path, device: str = "cpu") -> dict[str, Any]:
    """Recompute the per-class critic references of a conditional checkpoint on its run's held-out split (seed and
    sample count of the run's config, as the trainer does) and rewrite the file with them; weights, the overall
    reference and the training summary are kept. Returns a summary: classes, held-out and generated samples, and
    how far the recomputed overall mean lies from the stored one (0 when the protocol matches exactly)."""
    ckpt = load_checkpoint(path, device=device)
    meta = ckpt.metadata
    if not meta.classes:
        raise StoreError(f"{path}: an unconditional model has no classes to keep references for")
    stored_config = (meta.training or {}).get("config")
    if not isinstance(stored_config, dict):
        raise StoreError(f"{path}: the training summary has no config to find the held-out split with")
    try:
        config = TrainConfig.model_validate(stored_config)
    except ValidationError as exc:
        problems = exc.error_count()
        raise StoreError(f"{path}: the stored training config no longer validates ({problems} problems)") from exc
    dataset = load_dataset(config.data, meta.kind)
    if dataset.classes != meta.classes or dataset.heldout_labels is None:
        raise StoreError(f"{path}: the run's data set now has classes {dataset.classes}, the checkpoint {meta.classes}")
    scores = reference_scores(
        ckpt.generator,
        ckpt.critic,
        dataset.heldout,
        config.eval.reference_samples,
        meta.z_dim,
        reference_seed(config.seed),
        device,
        meta.n_classes,
        dataset.heldout_labels,
    )
    by_class = scores.class_references(meta.classes)
    metadata = make_metadata(meta.generator, meta.critic, meta.critic_reference, meta.training, meta.classes, by_class)
    save_checkpoint(path, ckpt.generator, ckpt.critic, metadata)
    recomputed = scores.reference()
    return {
        "classes": sorted(by_class or {}, key=meta.classes.index),
        "heldout_samples": int(scores.real_scores.numel()),
        "generated_samples": int(scores.fake_scores.numel()),
        "overall_real_mean_stored": meta.critic_reference.real.mean,
        "overall_real_mean_recomputed": recomputed.real.mean,
    }


def _print_human(report: dict[str, Any]) -> None:
    print(f"checkpoint  {report['checkpoint']} (version {report['version']})")
    print(
        f"kind        {report['kind']}, dataset {report['dataset']}, z_dim {report['z_dim']}, "
        f"{report['generator_iterations']} generator iterations, {report['wall_time_s']} s"
    )
    cov = report.get("mode_coverage")
    if cov:
        print(f"modes       {cov['modes_covered']}/{cov['modes_total']} covered")
        print(
            f"quality     {100 * cov['high_quality_share']:.1f} % of {cov['samples']} samples within "
            f"{cov['high_quality_sigmas']:g} sigma of a centre"
        )
    elif report.get("note"):
        print(f"modes       {report['note']}")
    c = report["critic"]
    print(
        f"critic      mean score fake {c['critic_mean_fake']:.4f} vs real reference "
        f"{c['critic_mean_real_reference']:.4f} (W estimate {c['wasserstein_estimate']:.4f})"
    )
    print(
        f"percentile  generated samples sit at the {c['fake_mean_percentile']:.1f}th percentile of real "
        f"scores on average (median {c['fake_median_percentile']:.1f})"
    )
    print(f"finite      {100 * report['finite_samples_share']:.1f} % of {c['samples']} samples")
    q = report.get("quality")
    if q:
        p = q["protocol"]
        print(
            f"classifier  FD {q['frechet_distance']:.3f}, classes {q['classes_covered']}/{q['classes_total']}, "
            f"class KL {q['class_kl']:.4f}, precision {q['precision']:.3f}, recall {q['recall']:.3f}"
        )
        print(
            f"protocol    {p['generated_samples']} generated vs {p['real_samples']} {p['real_split']} real; "
            f"classifier test accuracy {100 * p['classifier_test_accuracy']:.1f} %; {p['precision_recall']}"
        )
    spread = report.get("quality_over_seeds")
    if spread:
        first, last = spread["seeds"][0], spread["seeds"][-1]
        parts = [
            f"{shown} {spread[name]['mean']:.4g} ({spread[name]['min']:.4g} to {spread[name]['max']:.4g})"
            for name, shown in (SPREAD_FIGURES | CLASS_SPREAD_FIGURES).items()
            if name in spread
        ]
        print(f"seeds {first}..{last}  mean (range): " + ", ".join(parts))
    cq = report.get("class_quality")
    if cq:
        print(f"per class   accuracy on the requested class {100 * cq['class_accuracy']:.1f} %")
        for row in cq["per_class"]:
            print(
                f"  class {row['class']}   accuracy {100 * row['accuracy']:5.1f} % of {row['samples']}, "
                f"FD {row['frechet_distance']:.3f} against its {row['real_samples']} held-out digits"
            )


def _stored_line(path: Path, stored: dict[str, Any]) -> str:
    return (
        f"{path}: per-class critic references stored for {len(stored['classes'])} classes "
        f"({stored['heldout_samples']} held-out and {stored['generated_samples']} generated samples)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wgan-eval", description="Evaluate a WGAN checkpoint offline.")
    parser.add_argument("checkpoint", type=Path, help="a .safetensors checkpoint written by wgan-train")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--samples", type=int, help="generated samples (points: 2,500; images: 1,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="images: also the classifier figures for latents of this many seeds from --seed on, with their mean "
        "and range (quality_over_seeds; a conditional model's accuracy on the requested class too); --store keeps "
        "--seed's figures",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument(
        "--store",
        action="store_true",
        help="images: write the recomputed classifier figures into the checkpoint (training.final_metrics.quality, "
        "and a conditional model's per-class figures as class_quality), e.g. for a checkpoint trained before they "
        "existed; the file, and so its version, changes",
    )
    parser.add_argument(
        "--store-references",
        action="store_true",
        help="class-conditional models: recompute the per-class critic references (the run's held-out split, seed "
        "and eval.reference_samples, as the trainer does) and write them into the checkpoint, which the service "
        "places a class's scores in; the file, and so its version, changes",
    )
    args = parser.parse_args(argv)
    if args.store_references:
        try:
            stored = store_class_references(args.checkpoint, args.device)
        except (CheckpointError, StoreError, DataError) as exc:
            parser.error(str(exc))
        print(json.dumps(stored, indent=2) if args.json else _stored_line(args.checkpoint, stored))
        return 0
    if args.samples is not None and args.samples < 2:
        parser.error("--samples must be at least 2")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device is available")
    try:
        report = evaluate_checkpoint(args.checkpoint, args.samples, args.seed, args.device, args.seeds)
    except CheckpointError as exc:
        parser.error(str(exc))
    if args.store:
        if not report.get("quality"):
            parser.error("--store: no classifier figures apply to this checkpoint (mnist5k image models only)")
        store_quality(args.checkpoint, report["quality"], report.get("class_quality"))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_human(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
