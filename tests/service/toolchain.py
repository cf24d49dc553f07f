"""What the `compile` backend needs besides torch: inductor writes C++ kernels and builds them with the system's
C++ compiler (`$CXX`, else `g++`) against Python's C headers. `make test` installs both (`make sysdeps`); a bare
`pytest` on a machine without them skips the tests that compile, naming the missing tool."""

from __future__ import annotations

import pytest

from service.inference.toolchain import missing_compile_toolchain

_MISSING = missing_compile_toolchain("cpu")
needs_compile_toolchain = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


def backend_params(backends: tuple[str, ...] | list[str]) -> list:
    """`backends` for parametrize, with `compile` skipped where its toolchain is missing."""
    return [pytest.param(b, marks=needs_compile_toolchain) if b == "compile" else b for b in backends]
