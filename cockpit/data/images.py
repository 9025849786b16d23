"""Decoding image files to 8-bit RGB without losing high-bit-depth images to clipping.

PIL's ``convert("RGB")`` clips 16-bit grayscale (``I;16``) and 32-bit (``I``) pixels to
255, so a 16-bit PNG becomes a white image and the run learns nothing. Here such images
are scaled by their type's range instead (65535 for 16 bits) and then converted, so the
model sees the same [0, 1] picture any viewer shows. Floating-point images are accepted
only when already in [0, 1]; anything else is refused with the reason rather than guessed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


class UnsupportedImageError(OSError):
    """An image whose pixel values cannot be mapped to [0, 1] without guessing.

    An OSError, so the loaders skip and name it like any other unreadable file.
    """


def to_rgb(image: Image.Image, name: str = "image") -> Image.Image:
    """An 8-bit RGB copy of ``image``, high-bit-depth modes scaled by their range."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        array = np.asarray(image, dtype=np.float64)
        if mode == "F":
            low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
            if low < 0.0 or high > 1.0:
                raise UnsupportedImageError(
                    f"{name}: float image with values in [{low:g}, {high:g}]; save it as 8- or 16-bit, or in [0, 1]"
                )
            scale = 1.0
        elif mode == "I" and array.size and (array.min() < 0 or array.max() > 65535):
            raise UnsupportedImageError(
                f"{name}: 32-bit integer image with values in [{array.min():g}, {array.max():g}]; "
                "cockpit reads 8- and 16-bit images"
            )
        else:
            scale = 65535.0
        gray = np.clip(np.rint(array / scale * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    return image.convert("RGB")


def open_rgb(path: str | Path) -> Image.Image:
    """Decode ``path`` fully (a truncated file fails here, not later) as 8-bit RGB."""
    with Image.open(path) as image:
        image.load()
        rgb = to_rgb(image, name=Path(path).name)
        # Closing the file destroys a loaded image's pixels: hand back an image of our own.
        return rgb.copy() if rgb is image else rgb
