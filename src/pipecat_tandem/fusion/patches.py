#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""hMLP patch embeddings: the encoder-free image/video "tokens".

After Touvron et al. 2022, "Three things everyone should know about Vision
Transformers" (arXiv 2203.13915), the *hierarchical MLP stem*: every patch is embedded
on its own (no information crosses patch borders) by linear layers that merge ever
larger sub-patches. For a 40×40 patch and the defaults (``pool=2``, ``hidden=32``):

1. a fixed 2×2 area average (the patch becomes 20×20 pixels; this keeps one 640×480
   frame under ~1.5 ms on one CPU core; ``pool=1`` embeds full resolution),
2. stage 1: each 5×5×3 sub-patch (4×4 of them) → ``hidden``, LayerNorm, GELU,
3. stage 2: each 2×2 group of stage-1 outputs → ``hidden``, LayerNorm, GELU,
4. stage 3: the 2×2 stage-2 outputs → ``dim``.

Pixels enter as ``rgb / 255 - 0.5``. Patches are taken on the grid anchored at the
top-left corner; the right/bottom remainder (``W % 40``, ``H % 40``) is ignored. Output
rows are in raster order (row-major over the ``(H // 40, W // 40)`` grid).

Without trained weights the stem is a seeded random network (Gaussian weights scaled
by ``1/sqrt(fan_in)``, random biases): a fixed, deterministic, roughly
distance-preserving feature map, which is what the change and periodicity cues need.
Trained weights load from an ``.npz`` written by :meth:`PatchEmbedder.save` (keys
``w1 b1 g1 c1 w2 b2 g2 c2 w3 b3`` with ``w*`` shaped ``(fan_in, fan_out)``, plus the
scalars ``patch pool hidden dim``; ``g*``/``c*`` are the LayerNorm scale and shift).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["PatchEmbedder"]

_KEYS = ("w1", "b1", "g1", "c1", "w2", "b2", "g2", "c2", "w3", "b3")


def _layer_norm(x: np.ndarray, gain: np.ndarray | None, shift: np.ndarray) -> np.ndarray:
    # Row means through BLAS (x @ 1/n) are several times faster than ndarray.mean here.
    avg = np.full((x.shape[1], 1), 1.0 / x.shape[1], dtype=np.float32)
    x = x - x @ avg
    x *= 1.0 / np.sqrt((x * x) @ avg + np.float32(1e-5))
    if gain is not None:
        x *= gain
    x += shift
    return x


def _gelu(x: np.ndarray) -> np.ndarray:
    # The sigmoid approximation of GELU, x * sigmoid(1.702 x); cv2's SIMD exp and
    # divide are ~3x faster than numpy's on these small float32 blocks.
    t = np.asarray(cv2.exp(x * np.float32(-1.702)), dtype=np.float32)
    t += np.float32(1.0)
    return np.asarray(cv2.divide(x, t))


class PatchEmbedder:
    """Embed every 40×40 patch of an RGB frame with an hMLP stem.

    Example::

        emb = PatchEmbedder(seed=0)
        e = emb.embed(rgb)  # float32, ((H // 40) * (W // 40), 192)
    """

    def __init__(
        self,
        *,
        patch: int = 40,
        dim: int = 192,
        seed: int = 0,
        hidden: int = 32,
        pool: int = 2,
        weights: str | Path | None = None,
    ) -> None:
        """Create a stem, seeded-random or loaded from ``weights``.

        Args:
            patch: Patch side in pixels; must be a multiple of ``4 * pool``.
            dim: Embedding size.
            seed: Seed of the random weights (ignored when ``weights`` is given).
            hidden: Width of the two inner stages.
            pool: Fixed area-average factor applied before stage 1 (1 = none).
            weights: Optional ``.npz`` with trained weights (see the module docstring);
                its ``patch``/``pool``/``hidden``/``dim`` override the arguments.

        Raises:
            ValueError: On inconsistent sizes or a malformed weights file.
        """
        params: dict[str, np.ndarray] | None = None
        if weights is not None:
            with np.load(Path(weights)) as data:
                params = {k: np.asarray(data[k]) for k in data.files}
            try:
                patch, pool = int(params["patch"]), int(params["pool"])
                hidden, dim = int(params["hidden"]), int(params["dim"])
            except KeyError as e:
                raise ValueError(f"weights file {weights} lacks {e.args[0]!r}") from None
        if pool < 1 or patch < 4 * pool or patch % (4 * pool):
            raise ValueError(f"patch ({patch}) must be a positive multiple of 4 * pool ({pool})")
        if dim < 1 or hidden < 1:
            raise ValueError("dim and hidden must be positive")
        self.patch, self.dim, self.hidden, self.pool = patch, dim, hidden, pool
        self.sub = patch // pool // 4
        self._shapes = {
            "w1": (self.sub * self.sub * 3, hidden),
            "b1": (hidden,),
            "g1": (hidden,),
            "c1": (hidden,),
            "w2": (4 * hidden, hidden),
            "b2": (hidden,),
            "g2": (hidden,),
            "c2": (hidden,),
            "w3": (4 * hidden, dim),
            "b3": (dim,),
        }
        self._p = self._random(seed) if params is None else self._validated(params, weights)
        # Fold the pixel normalization (x / 255 - 0.5) into stage 1 so the hot path
        # multiplies raw uint8 values converted to float once.
        w1 = self._p["w1"]
        self._w1 = (w1 / 255.0).astype(np.float32)
        self._b1 = (self._p["b1"] - 0.5 * w1.sum(axis=0)).astype(np.float32)
        # A unit LayerNorm gain (the random stem) is skipped rather than multiplied.
        self._g1 = None if np.all(self._p["g1"] == 1.0) else self._p["g1"]
        self._g2 = None if np.all(self._p["g2"] == 1.0) else self._p["g2"]

    def _random(self, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        out: dict[str, np.ndarray] = {}
        for k, shape in self._shapes.items():
            if k.startswith("w"):
                out[k] = rng.standard_normal(shape) / np.sqrt(shape[0])
            elif k.startswith("b"):
                out[k] = rng.standard_normal(shape) * 0.5
            elif k.startswith("g"):
                out[k] = np.ones(shape)
            else:
                out[k] = np.zeros(shape)
        return {k: v.astype(np.float32) for k, v in out.items()}

    def _validated(self, params: dict[str, np.ndarray], src: object) -> dict[str, np.ndarray]:
        out = {}
        for k, shape in self._shapes.items():
            if k not in params:
                raise ValueError(f"weights file {src} lacks {k!r}")
            if params[k].shape != shape:
                raise ValueError(f"weights {k!r} has shape {params[k].shape}, expected {shape}")
            if not np.all(np.isfinite(params[k])):
                raise ValueError(f"weights {k!r} contains NaN or inf")
            out[k] = params[k].astype(np.float32)
        return out

    def save(self, path: str | Path) -> None:
        """Write the weights (and sizes) to an ``.npz`` that ``weights=`` can load."""
        arrays: dict[str, Any] = {k: self._p[k] for k in _KEYS}
        sizes = {"patch": self.patch, "pool": self.pool, "hidden": self.hidden, "dim": self.dim}
        arrays.update({k: np.array(v) for k, v in sizes.items()})
        np.savez(Path(path), **arrays)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid ``(rows, cols)`` for a frame of the given size."""
        return height // self.patch, width // self.patch

    def embed(self, rgb: npt.ArrayLike) -> np.ndarray:
        """Embed every whole patch of ``rgb``.

        Args:
            rgb: ``H×W×3`` ``uint8`` array.

        Returns:
            ``float32`` array ``((H // patch) * (W // patch), dim)``, rows in raster order.
            A frame smaller than one patch gives zero rows.

        Raises:
            ValueError: If ``rgb`` is not an ``H×W×3`` ``uint8`` array.
        """
        img = np.asarray(rgb)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 RGB array, got shape {img.shape}")
        if img.dtype != np.uint8:
            raise ValueError(f"expected uint8 pixels, got dtype {img.dtype}")
        gh, gw = self.grid(img.shape[0], img.shape[1])
        h = self.hidden
        if gh == 0 or gw == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        crop = img[: gh * self.patch, : gw * self.patch]
        if self.pool > 1:
            side = self.patch // self.pool
            crop = cv2.resize(
                np.ascontiguousarray(crop), (gw * side, gh * side), interpolation=cv2.INTER_AREA
            )
        s = self.sub
        # (gh, R, r, y, gw, C, c, x, ch) -> (gh, gw, R, C, r, c, y, x, ch): rows are
        # sub-patches grouped by patch, then by 2×2 group (R, C), then member (r, c).
        x = crop.reshape(gh, 2, 2, s, gw, 2, 2, s, 3).transpose(0, 4, 1, 5, 2, 6, 3, 7, 8)
        x = x.reshape(-1, s * s * 3).astype(np.float32)
        p = self._p
        y = _gelu(_layer_norm(x @ self._w1 + self._b1, self._g1, p["c1"]))
        y = y.reshape(-1, 4 * h) @ p["w2"] + p["b2"]
        y = _gelu(_layer_norm(y, self._g2, p["c2"]))
        out = y.reshape(-1, 4 * h) @ p["w3"] + p["b3"]
        return np.ascontiguousarray(out, dtype=np.float32)
