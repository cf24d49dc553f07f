"""How far half-precision pixels are from fp32 ones, emulated on the CPU: the tolerance a CUDA bf16/fp16 run is held to.

    .venv/bin/python benchmarks/half_pixels.py [--checkpoint PATH] [--seeds 1024] [--out half_pixels.json]

For the seeds 0 .. N-1 the generator's 8-bit pixels are computed in fp32 on the CPU (the reference) and then in
each half-precision mode, on the CPU: `bf16` and `fp16` are the service's own path (`ModelRunner` with
`--dtype`: weights and activations in that type), `bf16_autocast` is torch.autocast over the fp32 module (what
the trainer's samples use). For each mode: how many pixels differ and by how many 8-bit levels (a histogram), the
largest difference, the mean, and the largest difference per image (median and 99th percentile). A GPU computes
the same products with other kernels and summation orders, so its figures are close to these, not equal.

Prints one JSON document (also written to --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def level_stats(got: Any, reference: Any) -> dict[str, Any]:
    """Differences in 8-bit levels between two uint8 image arrays [N, H, W, C]."""
    import numpy as np

    diff = np.abs(got.astype(np.int16) - reference.astype(np.int16))  # [N, H, W, C]
    per_image = diff.reshape(len(diff), -1).max(axis=1)  # [N]
    return {
        "pixels": int(diff.size),
        "differing": int((diff > 0).sum()),
        "max_levels": int(diff.max()),
        "mean_levels": round(float(diff.mean()), 4),
        "per_image_max_levels_p50_p99": [float(v) for v in np.percentile(per_image, [50, 99])],
        "histogram": {str(level): int(count) for level, count in enumerate(np.bincount(diff.ravel())) if count},
    }


def measure(checkpoint: Path, seeds: int) -> dict[str, Any]:
    import torch

    from models import latents_for_seeds, load_checkpoint, to_uint8
    from service.inference import ForwardOptions, ModelRunner

    cpu = torch.device("cpu")
    eager = ForwardOptions("eager")
    with torch.inference_mode():
        z = latents_for_seeds(range(seeds), load_checkpoint(checkpoint).metadata.z_dim)  # [N, z_dim]
        reference = ModelRunner(load_checkpoint(checkpoint), cpu, torch.float32, eager).generate(z)
        modes: dict[str, Any] = {
            "bf16": ModelRunner(load_checkpoint(checkpoint), cpu, torch.bfloat16, eager).generate(z),
            "fp16": ModelRunner(load_checkpoint(checkpoint), cpu, torch.float16, eager).generate(z),
        }
        generator = load_checkpoint(checkpoint).generator.eval()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            modes["bf16_autocast"] = to_uint8(generator(z)).numpy()
    return {name: level_stats(images, reference) for name, images in modes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "bundled_models" / "mnist5k.safetensors")
    parser.add_argument("--seeds", type=int, default=1024, help="images compared: seeds 0 .. N-1")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    started = time.perf_counter()
    modes = measure(args.checkpoint, args.seeds)
    result = {
        "checkpoint": str(args.checkpoint),
        "seeds": args.seeds,
        "torch": torch.__version__,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "load_average_before": [round(x, 2) for x in load_before],
        "wall_s": round(time.perf_counter() - started, 1),
        "vs_cpu_fp32": modes,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
