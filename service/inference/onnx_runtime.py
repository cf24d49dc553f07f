"""A network exported to ONNX in memory and run by ONNX Runtime on the CPU (onnxruntime and onnx: the serve extra).

A class-conditional generator is exported with two inputs, `inputs` (latents [B, z_dim]) and `labels` (class
weights [B, n_classes], one-hot for a plain label), both with a dynamic batch dimension.

The export is made here from the module that was just built from the checkpoint's safetensors weights: no ONNX
file is read from anywhere. The TorchScript-based exporter (`dynamo=False`) traces the bundled generator in a
fraction of a second; should it fail on a network, the torch.export-based exporter (`dynamo=True`, seconds per
model, needs onnxscript: the onnx extra) takes over, and the log says so.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import time
import warnings

import torch
from torch import nn

log = logging.getLogger(__name__)

_MAX_BATCH = 65_536  # the dynamo exporter's upper bound on the batch dimension
# At every export the dynamo exporter warns that it skips torchvision's operators (torchvision is not a dependency)
# and its graph passes log each step at INFO: neither says anything about the served model.
_QUIET_LOGGERS = {
    "torch.onnx._internal.exporter._registration": logging.ERROR,
    "onnxscript": logging.WARNING,
    "onnx_ir": logging.WARNING,
}
# The TorchScript-based exporter announces at every call that a newer exporter exists, and that a context manager
# it uses will go: deprecation notices for torch's own code, not news about the served model.
_QUIET_WARNINGS = (  # (message, module the warning is attributed to)
    ("You are using the legacy TorchScript-based ONNX export", __name__),
    ("The feature will be removed", r"torch\.onnx\."),
)
_PACKAGES = ("onnxruntime", "onnx")  # what the default exporter and the session need


class BackendUnavailableError(RuntimeError):
    """The backend asked for cannot run here (a package is missing)."""


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime and the onnx package (which the exporter writes with) are installed."""
    return all(importlib.util.find_spec(name) is not None for name in _PACKAGES)


_INPUT_NAMES = ("inputs", "labels")


def _export_torchscript(module: nn.Module, examples: tuple[torch.Tensor, ...]) -> bytes:
    """The TorchScript-based exporter: traces `module` once on `examples` ([2, ...] each), batch dimension dynamic."""
    for message, module_name in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=DeprecationWarning, module=module_name)
    names = list(_INPUT_NAMES[: len(examples)])
    buffer = io.BytesIO()
    torch.onnx.export(
        module,
        examples,
        buffer,  # type: ignore[arg-type]  # export also writes to a file object; its annotation names paths only
        input_names=names,
        output_names=["outputs"],
        dynamic_axes={**{name: {0: "batch"} for name in names}, "outputs": {0: "batch"}},
        dynamo=False,
    )
    return buffer.getvalue()


def _export_dynamo(module: nn.Module, examples: tuple[torch.Tensor, ...]) -> bytes:
    """The torch.export-based exporter (needs onnxscript): slower, but follows more of Python than a trace does."""
    if importlib.util.find_spec("onnxscript") is None:
        raise BackendUnavailableError("the dynamo ONNX exporter needs onnxscript: pip install 'wgan-serve[onnx]'")
    for name, level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    batch = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
    # No file argument: the exporter returns the program, serialised here. (Saving to a BytesIO fails on torch 2.7,
    # whose exporter hands the destination to onnxscript as a path.)
    program = torch.onnx.export(
        module,
        examples,
        input_names=list(_INPUT_NAMES[: len(examples)]),
        output_names=["outputs"],
        dynamic_shapes=tuple({0: batch} for _ in examples),
        dynamo=True,
        verbose=False,
    )
    if program is None:  # (the dynamo exporter always returns its program; the annotation covers the other one)
        raise RuntimeError("the dynamo ONNX exporter returned no program")
    model: bytes = program.model_proto.SerializeToString()
    return model


def export_onnx(module: nn.Module, item_shape: tuple[int, ...], label_shape: tuple[int, ...] | None = None) -> bytes:
    """`module` as an ONNX model (inputs [B, *item_shape], and labels [B, *label_shape] when given -> outputs
    [B, ...]): the fast exporter, else dynamo."""
    examples: tuple[torch.Tensor, ...] = (torch.zeros(2, *item_shape),)  # [2, *item_shape]
    if label_shape is not None:
        labels = torch.zeros(2, *label_shape)  # [2, *label_shape]
        labels.view(2, -1)[:, 0] = 1.0  # one-hot rows: a realistic example for the trace
        examples += (labels,)
    try:
        return _export_torchscript(module, examples)
    except Exception as exc:  # any failure of the trace: the other exporter may still manage
        log.warning(
            "the TorchScript-based ONNX exporter failed on %s (%s: %s); falling back to the dynamo exporter, "
            "seconds per model",
            type(module).__name__,
            type(exc).__name__,
            exc,
        )
    return _export_dynamo(module, examples)


class OnnxRuntimeForward:
    """`module` (CPU, float32, eval mode) as an ONNX Runtime session: inputs [B, *item_shape] (and, for a
    conditional generator, labels [B, *label_shape]) -> outputs [B, ...].

    The batch dimension is dynamic. ONNX Runtime runs on `threads` intra-op threads without spinning between calls,
    so an idle pool does not take the cores of the event loop and the encoders.
    """

    def __init__(
        self,
        module: nn.Module,
        item_shape: tuple[int, ...],
        threads: int,
        label_shape: tuple[int, ...] | None = None,
    ) -> None:
        weights = next(module.parameters())
        if weights.device.type != "cpu" or weights.dtype != torch.float32:
            raise ValueError(f"backend onnxruntime runs float32 on the CPU, not {weights.dtype} on {weights.device}")
        if not onnxruntime_available():
            raise BackendUnavailableError(
                "backend onnxruntime needs ONNX Runtime and onnx: pip install 'wgan-serve[serve]'"
            )
        import onnxruntime as ort

        started = time.perf_counter()
        model = export_onnx(module, item_shape, label_shape)
        self._labelled = label_shape is not None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        log.info("exported %s to ONNX Runtime in %.2f s", type(module).__name__, time.perf_counter() - started)

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """[B, *item_shape] float32 (and labels [B, *label_shape] float32 for a conditional generator) on the CPU ->
        [B, ...] float32 (shares memory with ONNX Runtime's output)."""
        if (labels is not None) != self._labelled:
            raise ValueError("this exported generator takes labels" if self._labelled else "it takes no labels")
        feed = {"inputs": inputs.contiguous().numpy()}
        if labels is not None:
            feed["labels"] = labels.contiguous().numpy()
        (out,) = self._session.run(None, feed)
        return torch.from_numpy(out)
