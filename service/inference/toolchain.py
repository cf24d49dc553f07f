"""What the `compile` backend needs besides torch, checked before a model loads so that start-up fails with a
message naming the missing tool instead of the first compilation failing deep inside inductor.

On the CPU, inductor writes C++ kernels and builds them with `$CXX` (else `g++`) against Python's C headers. On
CUDA, Triton generates the kernels but builds its launcher, a small C extension, with `$CC` (else `gcc`, else
`clang`), also against `Python.h`. Slim images have neither the compiler nor the headers.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path


def _python_headers_package() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}-dev"


def missing_compile_toolchain(device_type: str, include_dir: Path | None = None) -> str | None:
    """Why `--backend compile` cannot run on `device_type` ("cpu" or "cuda") here, or None when it can."""
    if device_type == "cuda":
        wanted = [os.environ["CC"]] if os.environ.get("CC") else ["gcc", "clang"]
        what, debian, variable = "a C compiler (Triton builds its kernel launcher)", "gcc", "CC"
    else:
        wanted = [os.environ.get("CXX") or "g++"]
        what, debian, variable = "a C++ compiler (inductor builds its kernels)", "g++", "CXX"
    if not any(shutil.which(name) for name in wanted):
        names = " or ".join(f"`{name}`" for name in wanted)
        return (
            f"the compile backend on {device_type} needs {what}: {names} not found "
            f"(Debian: apt-get install {debian}, or set ${variable}); or use --backend eager"
        )
    headers = include_dir if include_dir is not None else Path(sysconfig.get_path("include"))
    if not (headers / "Python.h").exists():
        return (
            f"the compile backend on {device_type} needs Python's C headers: no Python.h in {headers} "
            f"(Debian: apt-get install {_python_headers_package()}); or use --backend eager"
        )
    return None
