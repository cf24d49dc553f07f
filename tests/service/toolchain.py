"""What the `compile` backend needs besides torch: inductor writes C++ kernels and builds them with the system's
C++ compiler (`$CXX`, else `g++`) against Python's C headers. `make test` installs both (`make sysdeps`); a bare
`pytest` on a machine without them skips the tests that compile, naming the missing tool."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest


def missing_compile_toolchain() -> str | None:
    """Why the compile backend cannot run here, or None when it can."""
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        return (
            f"the compile backend needs a C++ compiler: `{compiler}` not found "
            "(Debian: apt-get install g++, which `make sysdeps` does)"
        )
    headers = Path(sysconfig.get_path("include"))
    if not (headers / "Python.h").exists():
        package = f"python{sys.version_info.major}.{sys.version_info.minor}-dev"
        return (
            f"the compile backend needs Python's C headers: no Python.h in {headers} "
            f"(Debian: apt-get install {package}, which `make sysdeps` does)"
        )
    return None


_MISSING = missing_compile_toolchain()
needs_compile_toolchain = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


def backend_params(backends: tuple[str, ...] | list[str]) -> list:
    """`backends` for parametrize, with `compile` skipped where its toolchain is missing."""
    return [pytest.param(b, marks=needs_compile_toolchain) if b == "compile" else b for b in backends]
