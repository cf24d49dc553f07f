"""Numpy `.npy` files for each row of a batch: the header is built once, each file is header + raw bytes."""

from __future__ import annotations

import io

import numpy as np


def encode_npy_batch(array: np.ndarray) -> list[bytes]:
    """[N, ...] -> N `.npy` files, each holding one [...] array with the batch's dtype."""
    if array.shape[0] == 0:
        return []
    item = np.ascontiguousarray(array[0])
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(item))
    head = header.getvalue()  # magic, version and the padded dict
    contiguous = np.ascontiguousarray(array)
    return [head + contiguous[i].tobytes() for i in range(array.shape[0])]
