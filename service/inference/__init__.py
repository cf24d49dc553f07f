"""The forward pass of one checkpoint on one device: backends (eager, compiled, ONNX Runtime), CUDA graphs, devices.

Public on purpose, for the benchmarks and tools that time or drive the forward passes without the HTTP service:
`ModelRunner` with its `ForwardOptions`, and `warm_up_sizes` (the batch sizes the service warms up).
"""

from service.inference.runner import ForwardOptions, ModelRunner, warm_up_sizes

__all__ = ["ForwardOptions", "ModelRunner", "warm_up_sizes"]
