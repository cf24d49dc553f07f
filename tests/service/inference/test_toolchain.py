"""Start-up checks of the CUDA path on the CPU: `--backend compile` is refused when its compiler or Python's headers
are missing (naming what is), and fp32 serving on CUDA turns TF32 off and picks deterministic algorithms."""

from __future__ import annotations

import pytest
import torch

from service.inference.devices import DeviceError, configure_cuda_numerics, resolve
from service.inference.toolchain import missing_compile_toolchain
from tests.service.app_client import make_settings


@pytest.fixture
def no_compilers(tmp_path, monkeypatch):
    """A PATH with no compiler on it, and no CC or CXX: a slim image."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.delenv("CXX", raising=False)


def test_cuda_compile_without_a_c_compiler_names_it(no_compilers):
    reason = missing_compile_toolchain("cuda")
    assert reason is not None
    assert "needs a C compiler (Triton builds its kernel launcher)" in reason
    assert "`gcc` or `clang` not found" in reason and "--backend eager" in reason


def test_cpu_compile_without_a_cxx_compiler_is_refused_at_start(no_compilers, tmp_path):
    with pytest.raises(DeviceError, match=r"needs a C\+\+ compiler .*`g\+\+` not found"):
        resolve(make_settings(tmp_path, device="cpu", backend="compile"))
    resolve(make_settings(tmp_path, device="cpu", backend="eager"))  # the other backends need no compiler


def test_a_named_compiler_that_does_not_exist_is_named(monkeypatch):
    monkeypatch.setenv("CC", "no-such-cc")
    monkeypatch.setenv("CXX", "no-such-cxx")
    assert "`no-such-cc` not found" in (missing_compile_toolchain("cuda") or "")
    assert "`no-such-cxx` not found" in (missing_compile_toolchain("cpu") or "")


def test_missing_python_headers_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", "sh")  # any program on PATH passes the compiler check
    monkeypatch.setenv("CXX", "sh")
    for device in ("cpu", "cuda"):
        reason = missing_compile_toolchain(device, include_dir=tmp_path)
        assert reason is not None and f"no Python.h in {tmp_path}" in reason and "-dev" in reason


@pytest.fixture
def cuda_flags():
    saved = (
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
    )
    yield
    (
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
    ) = saved


def _flags() -> tuple[bool, bool, bool, bool]:
    """(cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32)"""
    b = torch.backends
    return b.cudnn.deterministic, b.cudnn.benchmark, b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32


def test_fp32_serving_on_cuda_is_ieee_fp32_with_deterministic_algorithms(cuda_flags):
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = True, False
    configure_cuda_numerics(torch.device("cpu"), torch.float32)  # the CPU: nothing changes
    assert _flags() == (False, True, True, True)
    configure_cuda_numerics(torch.device("cuda"), torch.bfloat16)  # bf16: deterministic, TF32 left alone
    assert _flags() == (True, False, True, True)
    configure_cuda_numerics(torch.device("cuda"), torch.float32)
    assert _flags() == (True, False, False, False)
