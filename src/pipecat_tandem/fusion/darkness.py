#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Whether a camera image is dark: nothing in it can be seen.

A browser sends black frames while its camera is muted (the track disabled), and a
covered lens or a camera that has not opened yet sends frames about as dark. Such a
stream is a camera, but nothing in it can be seen: a watch for the user's wave or
squats would wait in silence. :func:`image_is_dark` tells such an image from a dark
room, which still shows the user.

The measure is the 99th percentile of the image's brightness (the mean of its colour
channels, 0-255) over a grid of about 64×64 sampled pixels: a percentile, not the
maximum, so a hot pixel or a codec artefact does not make a black image lit, and not
the mean, so a dark room with a lit window is not dark.

:data:`DARK_LEVEL` is set from the project's lights-off calibration clips
(:func:`pipecat_tandem.bench.caller.calibration.clips`, ``lights_off_*``: a person in
a room whose light drops to 6 %, filmed through the webcam sensor model), seeds 0-11
at 320×240, 640×480 and 1280×720, five images a second: the darkest of their
images, the first one after the lights went off and before the auto-exposure's gain
climbed, is at 17.7-21.0; the next one, 0.2 s later, at 23.7 or more, and every
image at 55.0 or more once the gain has settled. Through aiortc's VP8 encoder and
decoder (640×480, 500 kbit/s, 15 fps) the codec smooths the sensor's noise: the
first image after the lights went off is at 12.3-15.3. Black frames are 0, also
through VP8. So 8 calls black and nearly black images dark and never a dark room,
even at the moment its lights went off.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DARK_LEVEL", "image_is_dark", "image_level"]

#: An image whose 99th percentile of brightness is at most this is dark (see above).
DARK_LEVEL = 8.0

#: Colour channels per pixel of each image format ``InputImageRawFrame`` may carry
#: (the alpha channel of ``RGBA``/``BGRA`` is skipped; order does not matter here).
_CHANNELS = {"RGB": 3, "BGR": 3, "RGBA": 4, "BGRA": 4, "L": 1, "GRAY": 1}

_SAMPLES = 64  # pixels sampled across each side


def image_level(data: bytes, width: int, height: int, fmt: str | None = "RGB") -> float | None:
    """The 99th percentile of an image's brightness (0-255) over sampled pixels.

    Args:
        data: The pixels, row by row.
        width: Width in pixels.
        height: Height in pixels.
        fmt: ``RGB``, ``BGR``, ``RGBA``, ``BGRA``, ``L`` or ``GRAY`` (None: ``RGB``).

    Returns:
        The level, or None when the format is unknown or ``data`` does not match
        ``width``, ``height`` and ``fmt``.
    """
    if not isinstance(fmt, str | None) or not isinstance(data, bytes | bytearray | memoryview):
        return None
    channels = _CHANNELS.get((fmt or "RGB").upper())
    if channels is None:
        return None
    if width <= 0 or height <= 0 or len(data) != width * height * channels:
        return None
    img = np.frombuffer(data, dtype=np.uint8).reshape(height, width, channels)
    step_y, step_x = max(1, height // _SAMPLES), max(1, width // _SAMPLES)
    sample = img[::step_y, ::step_x, : min(channels, 3)]
    # Channel sums in integers and one partition, not a float mean and a sort: this
    # runs on every camera image (~0.13 ms at any size, half of np.percentile's).
    sums = sample.sum(axis=2, dtype=np.uint16).ravel()
    k = int(0.99 * (sums.size - 1))
    return float(np.partition(sums, k)[k]) / sample.shape[2]


def image_is_dark(data: bytes, width: int, height: int, fmt: str | None = "RGB") -> bool | None:
    """Whether an image is dark (see the module docstring); None if it is malformed."""
    level = image_level(data, width, height, fmt)
    return None if level is None else level <= DARK_LEVEL
