"""A network exported to ONNX in memory and run by ONNX Runtime on the CPU (the optional `onnx` extra).

The export is made here from the module that was just built from the checkpoint's safetensors weights: no ONNX
file is read from anywhere.
"""

from __future__ import annotations

import io
import logging
import time

import torch
from torch import nn

log = logging.getLogger(__name__)

_MAX_BATCH = 65_536  # the exported graph's upper bound on the batch dimension
# At every export the exporter warns that it skips torchvision's operators (torchvision is not a dependency) and its
# graph passes log each step at INFO: neither says anything about the served model.
_QUIET_LOGGERS = {
    "torch.onnx._internal.exporter._registration": logging.ERROR,
    "onnxscript": logging.WARNING,
    "onnx_ir": logging.WARNING,
}


class BackendUnavailableError(RuntimeError):
    """The backend asked for cannot run here (a package is missing)."""


class OnnxRuntimeForward:
    """`module` (CPU, float32, eval mode) as an ONNX Runtime session: inputs [B, *item_shape] -> outputs [B, ...].

    The batch dimension is dynamic. ONNX Runtime runs on `threads` intra-op threads without spinning between calls,
    so an idle pool does not take the cores of the event loop and the encoders.
    """

    def __init__(self, module: nn.Module, item_shape: tuple[int, ...], threads: int) -> None:
        weights = next(module.parameters())
        if weights.device.type != "cpu" or weights.dtype != torch.float32:
            raise ValueError(f"backend onnxruntime runs float32 on the CPU, not {weights.dtype} on {weights.device}")
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError(
                "backend onnxruntime needs ONNX Runtime: pip install 'wgan-serve[onnx]' (onnxruntime, onnx, onnxscript)"
            ) from exc
        for name, level in _QUIET_LOGGERS.items():
            logging.getLogger(name).setLevel(level)
        started = time.perf_counter()
        example = torch.zeros(2, *item_shape)  # [2, *item_shape]
        batch = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
        buffer = io.BytesIO()
        torch.onnx.export(
            module,
            (example,),
            buffer,  # type: ignore[arg-type]  # export also writes to a file object; its annotation names paths only
            input_names=["inputs"],
            output_names=["outputs"],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            verbose=False,
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        log.info("exported %s to ONNX Runtime in %.2f s", type(module).__name__, time.perf_counter() - started)

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """[B, *item_shape] float32 on the CPU -> [B, ...] float32 (shares memory with ONNX Runtime's output)."""
        (out,) = self._session.run(None, {"inputs": inputs.contiguous().numpy()})
        return torch.from_numpy(out)
