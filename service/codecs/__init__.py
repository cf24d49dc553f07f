"""Image and array codecs: encoding generator outputs, decoding uploads. Pure functions on numpy arrays.

Public on purpose, for the benchmarks that encode images the way the service does: `encode_png_batch`.
"""

from service.codecs.png import encode_png_batch

__all__ = ["encode_png_batch"]
