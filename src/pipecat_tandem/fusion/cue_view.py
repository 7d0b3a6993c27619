#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The view the video cues look at: every camera frame at one scale.

A webcam sends 320×240, 640×480 or 1280×720 of the same field of view, so a waving
forearm is the same share of the frame at each; but the fused stream's patches are
40 pixels whatever the frame, so the same forearm is one patch of a 320×240 frame,
three of a 640×480 and ten of a 1280×720 one. Thresholds in patches (how many must
move, how many a corner object or a twitch may move) then hold at one size only:
on VP8-decoded video the cues calibrated at 640×480 missed waves at the other three
(``docs/bench/cues-caller-section.md``).

:class:`CueView` gives the cue detectors patch embeddings of the frame scaled to a
fixed height (``height``, 480 px by default: the size the cues are calibrated at),
its aspect ratio kept, so a patch is always the same share of the field of view.
At that height the stream's own embeddings are used as they are (no extra work);
otherwise the frame is area-resized straight to the pooled size of the stem and
embedded by the same stem without its pooling (:meth:`PatchEmbedder.pooled`), which
costs less than the stream's embedding of a 640×480 frame.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from pipecat_tandem.fusion.patches import PatchEmbedder

__all__ = ["CueView"]


class CueView:
    """Patch embeddings of a frame at the cues' scale (see the module docstring).

    Example::

        view = CueView(embedder)
        emb = embedder.embed(rgb)  # the fused stream's
        cue_emb = view.embed(rgb, emb)  # what the cue detectors get
    """

    def __init__(self, embedder: PatchEmbedder, *, height: int = 480) -> None:
        """Create a view for the stream's ``embedder``.

        Args:
            embedder: The stream's patch embedder (its weights are shared).
            height: Frame height the cues are calibrated at, in pixels; a multiple
                of the embedder's ``pool``.

        Raises:
            ValueError: If ``height`` is not a positive multiple of ``pool`` or
                smaller than one patch.
        """
        if height < embedder.patch or height % embedder.pool:
            raise ValueError(
                f"height ({height}) must be a multiple of pool ({embedder.pool}) "
                f"and at least one patch ({embedder.patch})"
            )
        self.height = height
        self._embedder = embedder
        self._pooled = embedder.pooled()
        self._pooled_height = height // embedder.pool

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid ``(rows, cols)`` :meth:`embed` gives for a ``height``×``width`` frame."""
        if height <= 0 or width <= 0:
            return 0, 0
        return self._pooled.grid(self._pooled_height, self._pooled_width(height, width))

    def _pooled_width(self, height: int, width: int) -> int:
        """Width of a ``height``×``width`` frame at the pooled scale, aspect kept."""
        return max(1, round(width * self._pooled_height / height))

    def embed(self, rgb: npt.ArrayLike, stream: np.ndarray | None = None) -> np.ndarray:
        """Patch embeddings of ``rgb`` at the view's scale.

        Args:
            rgb: ``H×W×3`` ``uint8`` frame.
            stream: The stream embedder's embeddings of ``rgb``, reused when the frame
                already has the view's height.

        Returns:
            ``float32 (rows * cols, dim)`` in raster order: the patches of the frame
            scaled to ``height`` (``height // patch`` rows).

        Raises:
            ValueError: If ``rgb`` is not an ``H×W×3`` ``uint8`` array.
        """
        img = np.asarray(rgb)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"expected an H×W×3 uint8 RGB array, got {img.dtype} {img.shape}")
        h, w = img.shape[:2]
        if h == self.height:
            return stream if stream is not None else self._embedder.embed(img)
        if h == 0 or w == 0:
            return np.zeros((0, self._embedder.dim), dtype=np.float32)
        # One area resize to the pooled scale (an average of the pixels each pooled
        # pixel covers, as the stem's own pooling is; for a smaller frame it
        # interpolates, which is what an upscale then a 4×4 average would give).
        ph = self._pooled_height
        pw = self._pooled_width(h, w)
        small = np.ascontiguousarray(img)
        # Exact halvings first: cv2's INTER_AREA has a fast path for 2x that an odd
        # factor lacks (1280x720 straight to 213x120: 3.5 ms; halved twice first: ~0.4).
        while small.shape[0] >= 2 * ph and small.shape[1] >= 2 * pw:
            half = (small.shape[1] // 2, small.shape[0] // 2)
            small = np.asarray(cv2.resize(small, half, interpolation=cv2.INTER_AREA))
        small = cv2.resize(small, (pw, ph), interpolation=cv2.INTER_AREA)
        return self._pooled.embed(np.asarray(small).reshape(ph, pw, 3))
