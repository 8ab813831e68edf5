"""Pixels of the tests' pictures as tuples of ints.

Pillow types a pixel as "an int, a float or a tuple" because that depends on the image's mode;
every picture the tests look at (icons, Xvfb screenshots) is RGB or RGBA, whose pixels are
tuples. `rgb` says so once, and fails loudly if a picture ever had another mode.
"""

from __future__ import annotations


def rgb(pixel: float | tuple[int, ...] | None) -> tuple[int, ...]:
    """`pixel` (from `getpixel` or `getcolors`) of an RGB or RGBA picture."""
    assert isinstance(pixel, tuple), f"not a pixel of an RGB(A) picture: {pixel!r}"
    return pixel
