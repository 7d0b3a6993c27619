#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""hMLP patch embeddings: the encoder-free image/video "tokens".

After Touvron et al. 2022, "Three things everyone should know about Vision
Transformers" (arXiv 2203.13915), the *hierarchical MLP stem*: every patch is embedded
on its own (no information crosses patch borders) by linear layers that merge ever
larger sub-patches. For a 40×40 patch and the defaults (``pool=4``, ``hidden=24``):

1. a fixed 4×4 area average (the patch becomes 10×10 pixels); a power-of-two ``pool``
   runs as successive 2×2 averages (``cv2.resize`` ``INTER_AREA``, each rounded to
   ``uint8``: cv2's 2× fast path, ~4× cheaper than one 4×4 resize), any other ``pool``
   as one ``INTER_AREA`` resize; ``pool=1`` embeds full resolution,
2. stage 1: each 5×5×3 sub-patch (2×2 of them) → ``hidden``, LayerNorm, GELU,
3. stage 2: the 2×2 stage-1 outputs merged → ``dim``.

Pixels enter as ``rgb / 255 - 0.5``. Patches are taken on the grid anchored at the
top-left corner; the right/bottom remainder (``W % 40``, ``H % 40``) is ignored. Output
rows are in raster order (row-major over the ``(H // 40, W // 40)`` grid).

Without trained weights the stem is a seeded random network (Gaussian weights scaled
by ``1/sqrt(fan_in)``, random biases): a fixed, deterministic, roughly
distance-preserving feature map, which is what the change and periodicity cues need.
The hot path (~0.7 ms of CPU for a 640×480 frame on one shared vCPU, see
``docs/bench/fusion.md``) is one batched product per stage over all sub-patches of the
frame: the pixel normalization, the stage-1 bias and the LayerNorm mean are folded into
the weights, sub-patches are regrouped by patch with a reshape/transpose view copy, and
scratch arrays are reused between frames of the same size.

Trained weights load from an ``.npz`` written by :meth:`PatchEmbedder.save` (keys
``w1 b1 g1 c1 w2 b2`` with ``w*`` shaped ``(fan_in, fan_out)``, plus the scalars
``patch pool hidden dim``; ``g1``/``c1`` are the LayerNorm scale and shift).
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["PatchEmbedder"]

_KEYS = ("w1", "b1", "g1", "c1", "w2", "b2")
_EPS = np.float32(1e-5)
_GELU_A = np.float32(-1.702)

_blas_primed = False


def _prime_blas() -> None:
    """Run one matrix product with a long inner dimension, once per process.

    The OpenBLAS bundled with numpy (0.3.31, Haswell kernel) runs the small products
    of the stem ~2.8× slower until the first product with an inner dimension of ~192
    or more has run: its kernel prefetches into parts of its work buffer that only
    such a product ever touches, and a prefetch to an unmapped page costs a page walk
    every time (seen with ``perf annotate``: the hot spot is the instruction after
    ``prefetcht1``). One 64×512×64 product (~0.1 ms) maps those pages for good.
    """
    global _blas_primed
    if not _blas_primed:
        a = np.ones((64, 512), dtype=np.float32)
        _ = a @ a.T
        _blas_primed = True


def _ln_gelu(
    y: np.ndarray,
    tmp: np.ndarray,
    var: np.ndarray,
    avg: np.ndarray,
    gain: np.ndarray | None,
    shift: np.ndarray | None,
) -> None:
    """LayerNorm then GELU, in place on ``y`` whose rows already have zero mean.

    The row mean is folded into the weights of the layer before (its columns are
    centered), so only the variance is computed here. GELU is the sigmoid form
    ``x * sigmoid(1.702 x)``; cv2's SIMD exp and divide are ~3× faster than numpy's on
    these float32 blocks. ``tmp`` (same shape as ``y``) and ``var`` (rows × 1) are
    scratch buffers.
    """
    np.multiply(y, y, out=tmp)
    np.matmul(tmp, avg, out=var)  # row mean of squares through BLAS: one pass
    var += _EPS
    np.sqrt(var, out=var)
    np.divide(np.float32(1.0), var, out=var)
    y *= var
    if gain is not None:
        y *= gain
    if shift is not None:
        y += shift
    np.multiply(y, _GELU_A, out=tmp)
    cv2.exp(tmp, dst=tmp)
    tmp += np.float32(1.0)
    cv2.divide(y, tmp, dst=y)


class _Buffers:
    """Scratch arrays for one frame size, reused between calls (no per-call allocation)."""

    def __init__(self, emb: PatchEmbedder, gh: int, gw: int) -> None:
        s, h, k = emb.sub, emb.hidden, emb.sub * emb.sub * 3
        n = gh * gw * 4  # sub-patches
        self.shape = (gh, gw)
        # One uint8 image per pooling pass (2×2 halvings, or one resize).
        self.pooled: list[np.ndarray] = []
        for f in _pool_passes(emb.pool):
            side = emb.patch // f
            self.pooled.append(np.empty((gh * side, gw * side, 3), dtype=np.uint8))
        self.pooled_view = _subpatch_view(self.pooled[-1], gh, gw, s) if self.pooled else None
        self.sub = np.empty((gh, gw, 2, 2, s), dtype=f"V{3 * s}")
        self.x = np.ones((n, k + 1), dtype=np.float32)  # last column stays 1: the bias
        self.y1 = np.empty((n, h), dtype=np.float32)
        self.t1 = np.empty((n, h), dtype=np.float32)
        self.v1 = np.empty((n, 1), dtype=np.float32)


def _pool_passes(pool: int) -> list[int]:
    """Cumulative pooling factor after each resize pass (``[]`` for ``pool=1``).

    A power of two runs as successive 2×2 halvings: cv2's ``INTER_AREA`` has a fast
    path for exactly 2× that a single 4× resize does not (0.15 vs 0.6 ms on 640×480).
    """
    if pool == 1:
        return []
    if pool & (pool - 1) == 0:
        return [1 << i for i in range(1, pool.bit_length())]
    return [pool]


def _subpatch_view(img: np.ndarray, gh: int, gw: int, s: int) -> np.ndarray:
    """``img`` (rows of contiguous pixels) as ``(gh, gw, R, C, y)`` rows of a sub-patch.

    Each element is one ``s``-pixel row of a sub-patch as an opaque ``3 * s``-byte
    value, so regrouping the sub-patches by patch copies ``3 * s`` bytes at a time
    instead of one byte (~2.5× faster than transposing the uint8 array).
    """
    v = img.reshape(gh, 2, s, gw * 2, 3 * s).view(f"V{3 * s}")
    return v.reshape(gh, 2, s, gw, 2).transpose(0, 3, 1, 4, 2)


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
        hidden: int = 24,
        pool: int = 4,
        weights: str | Path | None = None,
    ) -> None:
        """Create a stem, seeded-random or loaded from ``weights``.

        Args:
            patch: Patch side in pixels; must be a multiple of ``2 * pool``.
            dim: Embedding size.
            seed: Seed of the random weights (ignored when ``weights`` is given).
            hidden: Width of the sub-patch stage.
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
        if pool < 1 or patch < 2 * pool or patch % (2 * pool):
            raise ValueError(f"patch ({patch}) must be a positive multiple of 2 * pool ({pool})")
        if dim < 1 or hidden < 1:
            raise ValueError("dim and hidden must be positive")
        self.patch, self.dim, self.hidden, self.pool = patch, dim, hidden, pool
        self.sub = patch // pool // 2
        self._shapes = {
            "w1": (self.sub * self.sub * 3, hidden),
            "b1": (hidden,),
            "g1": (hidden,),
            "c1": (hidden,),
            "w2": (4 * hidden, dim),
            "b2": (dim,),
        }
        self._p = self._random(seed) if params is None else self._validated(params, weights)
        self._fold()
        self._avg = np.full((hidden, 1), 1.0 / hidden, dtype=np.float32)
        self._bufs: _Buffers | None = None
        self._lock = threading.Lock()
        _prime_blas()

    def _fold(self) -> None:
        """Precompute the hot-path weights (float64 math, float32 result).

        * The pixel normalization ``x / 255 - 0.5`` goes into stage 1, which then
          multiplies the raw pixel values.
        * The stage-1 bias becomes one more weight row (the input gets a constant 1
          column), so no separate pass adds it.
        * The LayerNorm mean is folded into stage 1: with the columns of ``w`` and ``b``
          centered, every output row has zero mean already (exactly, up to rounding),
          so the LayerNorm only has to scale.
        * A unit gain and a zero shift (the random stem) are skipped, not applied.
        """
        p = {k: v.astype(np.float64) for k, v in self._p.items()}
        w1 = p["w1"] / 255.0
        b1 = p["b1"] - 0.5 * p["w1"].sum(axis=0)
        w1 = np.vstack([w1, b1[None, :]])
        self._w1 = np.ascontiguousarray(w1 - w1.mean(axis=1, keepdims=True), dtype=np.float32)
        self._w2 = np.ascontiguousarray(self._p["w2"])
        self._b2 = self._p["b2"]
        self._g1 = None if np.all(self._p["g1"] == 1.0) else self._p["g1"]
        self._c1 = None if not np.any(self._p["c1"]) else self._p["c1"]

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

    def pooled(self) -> PatchEmbedder:
        """The same stem applied to images already pooled by ``pool``.

        Its patches are ``patch // pool`` pixels with no pooling of its own, and it
        shares this stem's weights (not its scratch arrays): embedding an image that
        was area-averaged ``pool`` times gives what this stem gives on the original,
        up to rounding. A caller that resizes anyway (to another scale) saves the
        pooling passes that way.
        """
        twin = copy.copy(self)
        twin.patch, twin.pool = self.patch // self.pool, 1
        twin._bufs, twin._lock = None, threading.Lock()
        return twin

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
        if gh == 0 or gw == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Reuse the scratch arrays of the last frame size; a concurrent call from
        # another thread gets fresh ones instead of waiting.
        if self._lock.acquire(blocking=False):
            try:
                bufs = self._bufs
                if bufs is None or bufs.shape != (gh, gw):
                    bufs = self._bufs = _Buffers(self, gh, gw)
                return self._embed(img, bufs)
            finally:
                self._lock.release()
        return self._embed(img, _Buffers(self, gh, gw))

    def _embed(self, img: np.ndarray, b: _Buffers) -> np.ndarray:
        gh, gw = b.shape
        crop = img[: gh * self.patch, : gw * self.patch]
        if img.strides[1:] != (3, 1):
            crop = np.ascontiguousarray(crop)  # pixels must be packed for the views below
        src = crop
        for dst in b.pooled:
            cv2.resize(src, dst.shape[1::-1], dst=dst, interpolation=cv2.INTER_AREA)
            src = dst
        view = (
            b.pooled_view if b.pooled_view is not None else _subpatch_view(crop, gh, gw, self.sub)
        )
        # Rows: sub-patches grouped by patch (raster order), then (R, C); columns: the
        # sub-patch's pixels (y, x, channel).
        np.copyto(b.sub, view)
        k = b.x.shape[1] - 1
        np.copyto(b.x[:, :k], b.sub.view(np.uint8).reshape(-1, k))
        np.matmul(b.x, self._w1, out=b.y1)
        _ln_gelu(b.y1, b.t1, b.v1, self._avg, self._g1, self._c1)
        out = np.matmul(b.y1.reshape(-1, 4 * self.hidden), self._w2)
        out += self._b2
        return out
