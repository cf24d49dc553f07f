"""Turn the `device` and `dtype` settings into torch objects, refusing combinations this machine cannot run."""

from __future__ import annotations

import torch

from service.inference.onnx_runtime import onnxruntime_available
from service.inference.toolchain import missing_compile_toolchain
from service.settings import ServiceSettings

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


class DeviceError(RuntimeError):
    """The configured device or dtype is not usable here."""


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when present, else the CPU; `cuda`/`cuda:N` must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} was asked for but torch sees no CUDA device; use --device cpu or auto")
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} does not exist: torch sees {torch.cuda.device_count()} CUDA device(s)")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    dtype = _DTYPES[name]
    if dtype != torch.float32 and device.type != "cuda":
        raise DeviceError(f"dtype {name} is only served on CUDA, but the device is {device}; use --dtype float32")
    return dtype


def resolve(settings: ServiceSettings) -> tuple[torch.device, torch.dtype]:
    device = resolve_device(settings.device)
    if settings.cuda_graphs and device.type != "cuda":
        raise DeviceError(f"cuda_graphs needs a CUDA device, but the device is {device}; use --no-cuda-graphs")
    if settings.backend == "onnxruntime":
        if device.type != "cpu":
            raise DeviceError(f"backend onnxruntime runs on the CPU only, but the device is {device}; use --device cpu")
        if not onnxruntime_available():
            raise DeviceError("backend onnxruntime needs ONNX Runtime and onnx: pip install 'wgan-serve[serve]'")
    if settings.backend == "compile":
        missing = missing_compile_toolchain(device.type)
        if missing is not None:
            raise DeviceError(missing)
    return device, resolve_dtype(settings.dtype, device)


def configure_cuda_numerics(device: torch.device, dtype: torch.dtype) -> None:
    """Process-wide CUDA settings for serving (a serving process has one device and one dtype).

    - fp32 means IEEE fp32: TF32 off for cuDNN convolutions and matmuls, which otherwise round fp32 inputs to a
      10-bit mantissa and move served pixels a level or two away from the CPU's.
    - Deterministic cuDNN algorithms, and no benchmark-mode choice between them: transposed convolutions run as
      cuDNN backward-data kernels whose algorithm depends on the batch size, and some accumulate with atomics, so
      a seed's image could otherwise depend on the batch it rode in.
    """
    if device.type != "cuda":
        return
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    if dtype == torch.float32:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
