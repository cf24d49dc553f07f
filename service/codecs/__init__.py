"""Image and array codecs: encoding generator outputs, decoding uploads. Pure functions on numpy arrays."""
