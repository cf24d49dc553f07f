"""Check that a PNG's image data holds every row its header declares.

Pillow decodes a PNG whose compressed stream ends cleanly after a few rows without complaint and leaves the
missing rows black; only a file cut off mid-stream raises. A scorer must not judge a mostly black image that the
client never sent, so the service decompresses the data once more and compares its size with what the header
declares (the unfiltered size, Adam7 passes included).
"""

from __future__ import annotations

import struct
import zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SAMPLES_PER_PIXEL = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
# Adam7: (first row, first column, row step, column step) of each pass.
_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1))


def _row_bytes(width: int, bits_per_pixel: int) -> int:
    return 1 + (width * bits_per_pixel + 7) // 8  # the filter-type byte, then the packed samples


def expected_data_size(width: int, height: int, bit_depth: int, colour_type: int, interlaced: bool) -> int:
    """The size of the decompressed image data a PNG with this header must carry."""
    bits_per_pixel = _SAMPLES_PER_PIXEL[colour_type] * bit_depth
    if not interlaced:
        return height * _row_bytes(width, bits_per_pixel)
    total = 0
    for row0, col0, row_step, col_step in _ADAM7:
        rows = (height - row0 + row_step - 1) // row_step if height > row0 else 0
        cols = (width - col0 + col_step - 1) // col_step if width > col0 else 0
        if rows and cols:
            total += rows * _row_bytes(cols, bits_per_pixel)
    return total


def png_is_complete(data: bytes) -> bool:
    """Whether `data` (a PNG Pillow could open) carries all the image data its IHDR declares, and no more."""
    if not data.startswith(_SIGNATURE):
        return True  # not a PNG: nothing to check here
    header: tuple[int, int, int, int, int] | None = None
    stream = zlib.decompressobj()
    pos = len(_SIGNATURE)
    expected = 0
    produced = 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR" and len(body) >= 13:
            width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body[:13])
            if colour_type not in _SAMPLES_PER_PIXEL:
                return False
            header = (width, height, bit_depth, colour_type, interlace)
            expected = expected_data_size(width, height, bit_depth, colour_type, interlace == 1)
        elif kind == b"IDAT":
            if header is None:
                return False
            try:
                produced += len(stream.decompress(body, expected + 1 - produced)) if produced <= expected else 0
            except zlib.error:
                return False
        elif kind == b"IEND":
            break
    return header is not None and stream.eof and produced == expected
