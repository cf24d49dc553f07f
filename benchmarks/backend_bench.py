"""Generator images/s of each forward-pass backend against eager PyTorch, on the same checkpoint, in one run.

    .venv/bin/python benchmarks/backend_bench.py [--checkpoint PATH] [--threads 1 2] [--seconds 1] [--rounds 3]
    .venv/bin/python benchmarks/backend_bench.py --gpu [--max-batch-size 256]    # on a CUDA machine

CPU (default): for each torch thread count, one process builds a `ModelRunner` per backend (eager, channels_last,
compile, onnxruntime) exactly as the service does, times its construction and warm-up (for `compile`, the
compilation, with an empty inductor cache unless --warm-cache; for `onnxruntime`, the export), then measures
images/s of `runner.generate` (latents -> 8-bit pixels, no PNG) at every batch size the engine warms up (1, 2,
4, ... --max-batch-size). The backends take turns batch size by batch size,
for --rounds rounds, so that load from other processes falls on all of them alike; the best round is reported
beside every round. Each backend's pixels are checked against eager's (largest difference in 8-bit levels).

GPU (--gpu): eager fp32, eager bf16, fp32 + CUDA graphs and bf16 + CUDA graphs at batch 1, 64 and 256 (the
graphs captured for powers of two up to --max-batch-size), and their pixels against the CPU fp32 ones, each under
the service's CUDA settings (`configure_cuda_numerics`: deterministic cuDNN, no benchmark mode, no TF32 in fp32);
then eager fp32 once more with cuDNN free to choose (deterministic off, benchmark on): the cost of determinism.

Prints one JSON document (also written to --out) and a short table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CPU_BACKENDS = ("eager", "channels_last", "compile", "onnxruntime")


def _throughput(generate: Any, z: Any, seconds: float) -> float:
    """Images per second of `generate(z)` called back to back for about `seconds` (after one untimed call)."""
    generate(z)
    images = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        generate(z)
        images += z.shape[0]
    return images / elapsed


def _level_diff(a: Any, b: Any) -> int:
    import numpy as np

    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def cpu_worker(args: argparse.Namespace) -> dict[str, Any]:
    """One thread count, every backend, in this process (torch's thread count is process-wide)."""
    import torch

    from models import latents_for_seeds, load_checkpoint
    from service.inference import ForwardOptions, ModelRunner, warm_up_sizes

    torch.set_num_threads(args.threads)
    sizes = warm_up_sizes(args.max_batch_size)
    runners: dict[str, ModelRunner] = {}
    ready_s: dict[str, float] = {}
    for backend in args.backends:  # built as the service builds them: outside inference mode, then warmed up
        started = time.perf_counter()
        options = ForwardOptions(backend)
        runner = ModelRunner(load_checkpoint(args.checkpoint), torch.device("cpu"), torch.float32, options)
        runner.warm_up(sizes)
        ready_s[backend] = round(time.perf_counter() - started, 2)
        runners[backend] = runner
    with torch.inference_mode():
        z_dim = next(iter(runners.values())).z_dim
        latents = {size: latents_for_seeds(range(size), z_dim) for size in sizes}  # [size, z_dim] each
        check = latents[sizes[-1]]
        reference = runners["eager"].generate(check) if "eager" in runners else None
        max_level_diff = {
            b: _level_diff(r.generate(check), reference) if reference is not None else None for b, r in runners.items()
        }
        rounds: dict[str, dict[int, list[float]]] = {b: {s: [] for s in sizes} for b in runners}
        for k in range(args.rounds):
            for size in sizes:
                order = list(runners) if k % 2 == 0 else list(reversed(runners))
                for backend in order:
                    rate = _throughput(runners[backend].generate, latents[size], args.seconds)
                    rounds[backend][size].append(round(rate, 1))
    return {
        "threads": args.threads,
        "ready_s": ready_s,
        "max_level_diff_vs_eager": max_level_diff,
        "images_per_s": {b: {str(s): max(v) for s, v in per.items()} for b, per in rounds.items()},
        "rounds": {b: {str(s): v for s, v in per.items()} for b, per in rounds.items()},
    }


def gpu_main(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from models import latents_for_seeds, load_checkpoint
    from service.inference import ForwardOptions, ModelRunner, warm_up_sizes
    from service.inference.devices import configure_cuda_numerics

    if not torch.cuda.is_available():
        raise SystemExit("--gpu needs a CUDA device; torch sees none")
    device = torch.device("cuda")
    configs = {  # name: (dtype, CUDA graphs, cuDNN deterministic as the service runs it)
        "eager_fp32": (torch.float32, False, True),
        "eager_bf16": (torch.bfloat16, False, True),
        "graphs_fp32": (torch.float32, True, True),
        "graphs_bf16": (torch.bfloat16, True, True),
        "eager_fp32_cudnn_free": (torch.float32, False, False),
    }
    batch_sizes = [b for b in (1, 64, 256) if b <= args.max_batch_size]
    result: dict[str, Any] = {"gpu": torch.cuda.get_device_name(device), "configs": {}}
    with torch.inference_mode():
        cpu_runner = ModelRunner(load_checkpoint(args.checkpoint), torch.device("cpu"), torch.float32)
        check = latents_for_seeds(range(batch_sizes[-1]), cpu_runner.z_dim)  # [B, z_dim]
        reference = cpu_runner.generate(check)
        for name, (dtype, graphs, deterministic) in configs.items():
            configure_cuda_numerics(device, dtype)  # what the service sets for this dtype
            if not deterministic:
                torch.backends.cudnn.deterministic = False
                torch.backends.cudnn.benchmark = True
            started = time.perf_counter()
            options = ForwardOptions(args.backend, graphs, args.max_batch_size)
            runner = ModelRunner(load_checkpoint(args.checkpoint), device, dtype, options)
            runner.warm_up(warm_up_sizes(args.max_batch_size))
            ready_s = time.perf_counter() - started
            rates = {
                str(b): round(max(_throughput(runner.generate, check[:b], args.seconds) for _ in range(args.rounds)), 1)
                for b in batch_sizes
            }
            result["configs"][name] = {
                "dtype": str(dtype).removeprefix("torch."),
                "cuda_graphs": graphs,
                "cudnn_deterministic": deterministic,
                "ready_s": round(ready_s, 2),
                "images_per_s": rates,
                "max_level_diff_vs_cpu_fp32": _level_diff(runner.generate(check), reference),
            }
            del runner
            torch.cuda.empty_cache()
    eager = result["configs"]["eager_fp32"]["images_per_s"]
    result["speedup_over_eager_fp32"] = {
        name: {b: round(c["images_per_s"][b] / eager[b], 2) for b in eager} for name, c in result["configs"].items()
    }
    return result


def cpu_main(args: argparse.Namespace) -> dict[str, Any]:
    per_threads = []
    for threads in args.threads:
        with tempfile.TemporaryDirectory(prefix="backend_bench_inductor_") as cache:
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            if not args.warm_cache:
                env["TORCHINDUCTOR_CACHE_DIR"] = cache  # compile time as a fresh machine sees it
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                "--threads",
                str(threads),
                "--checkpoint",
                str(args.checkpoint),
                "--seconds",
                str(args.seconds),
                "--rounds",
                str(args.rounds),
                "--max-batch-size",
                str(args.max_batch_size),
                "--backends",
                *args.backends,
            ]
            done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            per_threads.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for entry in per_threads:
        eager = entry["images_per_s"].get("eager")
        if eager:
            entry["speedup_over_eager"] = {
                b: {s: round(rate / eager[s], 2) for s, rate in per.items()} for b, per in entry["images_per_s"].items()
            }
    return {"per_threads": per_threads}


def table(result: dict[str, Any]) -> str:
    lines = []
    if "per_threads" in result:
        for entry in result["per_threads"]:
            sizes = list(next(iter(entry["images_per_s"].values())))
            lines.append(f"threads {entry['threads']}: images/s by batch size (x eager)")
            lines.append(f"{'backend':<14}{'ready s':>10}" + "".join(f"{s:>14}" for s in sizes))
            for backend, per in entry["images_per_s"].items():
                ratio = entry.get("speedup_over_eager", {}).get(backend, {})
                cells = "".join(f"{per[s]:>8.0f} {ratio.get(s, ''):>5}" for s in sizes)
                lines.append(f"{backend:<14}{entry['ready_s'][backend]:>10}{cells}")
    else:
        lines.append(f"{result['gpu']}: images/s by batch size (x eager fp32)")
        for name, config in result["configs"].items():
            ratio = result["speedup_over_eager_fp32"][name]
            cells = "".join(f"  b{b}: {rate:>9.0f} x{ratio[b]}" for b, rate in config["images_per_s"].items())
            lines.append(f"{name:<12} ready {config['ready_s']:>6} s{cells}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "bundled_models" / "mnist5k.safetensors")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (CPU)")
    parser.add_argument("--backends", nargs="+", choices=CPU_BACKENDS, default=list(CPU_BACKENDS))
    parser.add_argument("--seconds", type=float, default=1.0, help="time of each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each backend and batch size")
    parser.add_argument("--max-batch-size", type=int, help="largest batch (default: 64 on CPU, 256 with --gpu)")
    parser.add_argument("--warm-cache", action="store_true", help="keep inductor's on-disk cache (CPU compile)")
    parser.add_argument("--gpu", action="store_true", help="measure the CUDA path instead")
    parser.add_argument("--backend", choices=["eager", "channels_last"], default="eager", help="with --gpu")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.max_batch_size is None:
        args.max_batch_size = 256 if args.gpu else 64
    sys.path.insert(0, str(ROOT))
    if args.worker:
        args.threads = args.threads[0]
        print(json.dumps(cpu_worker(args)))
        return
    load_before = os.getloadavg()
    started = time.perf_counter()
    measured = gpu_main(args) if args.gpu else cpu_main(args)
    result = {
        "checkpoint": str(args.checkpoint),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "seconds_per_measurement": args.seconds,
        "rounds": args.rounds,
        "wall_s": round(time.perf_counter() - started, 1),
        **measured,
    }
    document = json.dumps(result, indent=2)
    print(document)
    print(table(result), file=sys.stderr)
    if args.out:
        args.out.write_text(document + "\n")


if __name__ == "__main__":
    main()
