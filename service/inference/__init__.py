"""The forward pass of one checkpoint on one device: backends (eager, compiled, ONNX Runtime), CUDA graphs, devices."""
