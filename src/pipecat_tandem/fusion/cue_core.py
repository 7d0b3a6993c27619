#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Shared cue pieces: the :class:`Cue` value and patch-embedding distances."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Cue", "patch_distances"]


@dataclass(frozen=True)
class Cue:
    """A detected cue.

    Parameters:
        kind: See the module docstring.
        time: Session time of the cue, in seconds.
        value: Kind-specific number.
        detail: Extra numbers (scores, thresholds) for logs and debugging.
    """

    kind: str
    time: float
    value: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)


def patch_distances(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Per-patch normalized distance ``|a - b| / (|a| + |b|)`` in ``[0, 1]``.

    Identical embeddings give exactly 0.

    Raises:
        ValueError: If the shapes differ or are not ``(n_patches, dim)``.
    """
    x, y = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"patch embeddings must share a 2-D shape, got {x.shape} and {y.shape}")
    return _distances(x, _row_norms(x), y, _row_norms(y))


def _row_norms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", x, x))


def _distances(x: np.ndarray, nx: np.ndarray, y: np.ndarray, ny: np.ndarray) -> np.ndarray:
    d = x - y
    num = np.sqrt(np.einsum("ij,ij->i", d, d))
    den = nx + ny
    np.maximum(den, np.float32(1e-12), out=den)
    num /= den
    return num


class _PairDistances:
    """Distances of each image's patches to the previous image's, norms computed once."""

    def __init__(self) -> None:
        self._prev: np.ndarray | None = None
        self._prev_norms: np.ndarray | None = None

    @property
    def prev(self) -> np.ndarray | None:
        """The previous image's embeddings (the array last fed)."""
        return self._prev

    def __call__(self, x: np.ndarray) -> np.ndarray | None:
        """Feed the next image; the distances to the previous one or ``None``.

        ``None`` when there is no previous image or it has another shape.
        """
        nx = _row_norms(x) if x.ndim == 2 else None
        prev, pn = self._prev, self._prev_norms
        self._prev, self._prev_norms = x, nx
        if prev is None or pn is None or nx is None or prev.shape != x.shape:
            return None
        return _distances(prev, pn, x, nx)
