#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Periodicity of a motion segment: its feature series, its period, its cycles.

The numeric core of :class:`~pipecat_tandem.fusion.repetition.RepetitionCounter`,
pure numpy/OpenCV: :class:`Series` (a segment's feature vectors with running
moments), :func:`orthonormal` (one step of the tracked principal subspace),
:func:`spectral_period_of` (the fundamental period of the principal components) and
:func:`cycles` (how many cycles of it the components went through, following each
cycle's own length).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = [
    "N_COMPONENTS",
    "Series",
    "cycles",
    "orthonormal",
    "spectral_period",
    "spectral_period_of",
]

N_COMPONENTS = 4  # principal components whose spectra are summed
_HANN: dict[int, np.ndarray] = {}
_BINS: dict[int, np.ndarray] = {}
_HARMONICS = np.arange(1.0, 6.0)


def _bins(size: int) -> np.ndarray:
    """``arange(size // 2 + 1)`` as float64, cached per DFT size (powers of two)."""
    b = _BINS.get(size)
    if b is None:
        b = _BINS[size] = np.arange(size // 2 + 1, dtype=np.float64)
    return b


def _hann(n: int) -> np.ndarray:
    w = _HANN.get(n)
    if w is None:
        if len(_HANN) > 256:
            _HANN.clear()
        w = _HANN[n] = np.hanning(n)
    return w


class Series:
    """A segment's feature vectors (oldest first) with running sums for the covariance."""

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self._buf = np.empty((64, dims), dtype=np.float64)
        self._t = np.empty(64, dtype=np.float64)
        self._lo = self._hi = 0
        self.s1 = np.zeros(dims, dtype=np.float64)
        self.s2 = np.zeros((dims, dims), dtype=np.float64)

    def __len__(self) -> int:
        return self._hi - self._lo

    @property
    def feats(self) -> np.ndarray:
        """The feature vectors, ``(n, dims)``."""
        return self._buf[self._lo : self._hi]

    @property
    def times(self) -> np.ndarray:
        """Their times, ``(n,)``."""
        return self._t[self._lo : self._hi]

    def append(self, f: np.ndarray, t: float) -> None:
        """Add the vector ``f`` taken at ``t``."""
        if self._hi == self._buf.shape[0]:
            n = len(self)
            if n * 2 > self._buf.shape[0]:  # mostly full: grow, else just compact
                buf = np.empty((self._buf.shape[0] * 2, self.dims), dtype=np.float64)
                tb = np.empty(buf.shape[0], dtype=np.float64)
                buf[:n], tb[:n] = self.feats, self.times
                self._buf, self._t = buf, tb
            else:
                self._buf[:n] = self.feats.copy()
                self._t[:n] = self.times.copy()
            self._lo, self._hi = 0, n
        self._buf[self._hi] = f
        self._t[self._hi] = t
        self._hi += 1
        self.s1 += f
        self.s2 += np.outer(f, f)

    def popleft(self) -> None:
        """Drop the oldest vector."""
        f = self._buf[self._lo]
        self.s1 -= f
        self.s2 -= np.outer(f, f)
        self._lo += 1

    def resum(self) -> None:
        """Recompute the running sums exactly (they drift by rounding over long runs)."""
        f = self.feats
        self.s1 = f.sum(axis=0)
        self.s2 = f.T @ f

    def clear(self) -> None:
        """Drop every vector."""
        self._lo = self._hi = 0
        self.s1[:] = 0.0
        self.s2[:] = 0.0


def orthonormal(b: np.ndarray) -> np.ndarray | None:
    """Orthonormal columns with the span of ``b`` (Cholesky QR), or None if degenerate.

    The Gram matrix is only ``k×k`` (k = 4): plain Python beats numpy's linalg call
    overhead by several times here.
    """
    g = (b.T @ b).tolist()
    k = len(g)
    low = [[0.0] * k for _ in range(k)]
    for i in range(k):
        li = low[i]
        for j in range(i + 1):
            lj = low[j]
            acc = g[i][j]
            for m in range(j):
                acc -= li[m] * lj[m]
            if i == j:
                if not acc > 1e-12 * max(g[0][0], 1e-300):
                    return None
                li[i] = math.sqrt(acc)
            else:
                li[j] = acc / lj[j]
    inv = [[0.0] * k for _ in range(k)]  # inverse of the lower-triangular factor
    for i in range(k):
        li, vi = low[i], inv[i]
        vi[i] = 1.0 / li[i]
        for j in range(i):
            acc = 0.0
            for m in range(j, i):
                acc -= li[m] * inv[m][j]
            vi[j] = acc / li[i]
    return np.asarray(b @ np.array(inv).T)


def spectral_period(
    feats: np.ndarray, times: np.ndarray, min_share: float = 0.3
) -> tuple[float | None, float]:
    """Period (s) of a multichannel series ``(n, dims)``; see :func:`spectral_period_of`.

    Computes the top principal components exactly (the counter tracks them instead).
    """
    n = feats.shape[0]
    if n < 8:
        return None, 0.0
    centered = feats - feats.mean(axis=0)
    _, vecs = np.linalg.eigh(centered.T @ centered)
    comps = (centered @ vecs[:, ::-1][:, :N_COMPONENTS]).T
    return spectral_period_of(np.ascontiguousarray(comps), times, min_share)


def spectral_period_of(
    comps: np.ndarray, times: np.ndarray, min_share: float = 0.3
) -> tuple[float | None, float]:
    """Period (s) of the component series ``comps`` ``(k, n)`` and how periodic it is.

    The fundamental is the lowest-frequency spectral peak (summed over the
    components, Hann-windowed, zero-padded 4×, parabolic refinement) with at least
    ``min_share`` of the strongest peak's power; it counts only once the buffer holds
    two of its cycles (before that, a harmonic would pass for the period). The score is
    the share of the power within ``1 / span`` of the fundamental and its first
    harmonics (an autocorrelation at whole-frame lags would punish periods that are not
    a whole number of frames). ``(None, 0)`` when there is no such peak.
    """
    n = comps.shape[1]
    span = float(times[-1] - times[0])
    if n < 8 or span <= 0:
        return None, 0.0
    dt = span / (n - 1)
    size = 4 * (1 << (n - 1).bit_length())
    # float32: cv2's DFT is ~1.6× faster than in float64, and 24-bit mantissas are
    # plenty for locating a spectral peak.
    x = np.zeros((comps.shape[0], size), dtype=np.float32)
    np.multiply(comps, _hann(n), out=x[:, :n], casting="same_kind")
    # Real row DFT in CCS packing: [Re0, Re1, Im1, ..., Re(size/2)].
    spec: np.ndarray = np.asarray(cv2.dft(x, flags=cv2.DFT_ROWS), dtype=np.float32)
    np.square(spec, out=spec)
    sq = np.add.reduce(spec, axis=0)
    power = np.empty(size // 2 + 1, dtype=np.float64)
    power[0], power[-1] = sq[0], sq[-1]
    np.add(sq[1:-1:2], sq[2::2], out=power[1:-1])
    freqs = _bins(size) / (size * dt)
    lo, hi = np.searchsorted(freqs, (1.0 / span, 0.45 / dt)).tolist()
    if hi - lo < 3:
        return None, 0.0
    band = power[lo:hi]
    inner = band[1:-1]
    peaks = np.flatnonzero((inner >= band[:-2]) & (inner > band[2:])) + 1
    if peaks.size == 0:
        return None, 0.0
    strong = peaks[band[peaks] >= min_share * float(band[peaks].max())]
    i = int(strong[0])
    a, b, c = (math.log(v + 1e-30) for v in band[i - 1 : i + 2].tolist())
    shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    f0 = float(freqs[lo + i] + shift * (freqs[1] - freqs[0]))
    if f0 <= 0 or span * f0 < 2.0:
        # Seen less than twice: a harmonic of a longer cycle would pass for the period.
        return None, 0.0
    # Score: the share of the in-band power near the fundamental and its harmonics
    # (bins within 1 / span of f0, 2 f0, ..., 5 f0; the windows never overlap since
    # f0 >= 2 / span, so their sums add up).
    fb = freqs[lo:hi]
    harm = f0 * _HARMONICS
    first = np.searchsorted(fb, harm - 1.0 / span, "left")
    end = np.searchsorted(fb, harm + 1.0 / span, "right")
    csum = np.concatenate([[0.0], np.cumsum(band)])
    near = float((csum[end] - csum[first]).sum())
    total = float(csum[-1])
    score = near / total if total > 0 else 0.0
    return 1.0 / f0, score


def cycles(
    comps: np.ndarray,
    times: np.ndarray,
    start: float,
    end: float,
    period: float,
    bandwidth: float = 0.35,
) -> float:
    """How many cycles of about ``period`` the components went through from ``start`` to ``end``.

    The component with the most power near ``1 / period`` is band-passed there
    (Gaussian, ``bandwidth`` × the frequency wide, positive frequencies only: its
    analytic signal), and the unwrapped phase gained between ``start`` and ``end``
    is divided by 2π. The phase follows each cycle's own length, so a count of
    repetitions that are ±15 % long each is not a total time divided by a mean
    period (which needs that period to within ``1 / (2 n)``); and a harmonic (a
    body going down and up again passes every pose twice) is outside the band.

    Args:
        comps: ``(k, n)`` component series, sampled at ``times`` (about evenly).
        times: ``(n,)`` sample times, increasing.
        start: When the motion started.
        end: When it last moved.
        period: The fundamental period (s).
        bandwidth: The band's standard deviation, relative to the frequency.
    """
    n = comps.shape[1]
    span = float(times[-1] - times[0])
    if n < 4 or span <= 0 or period <= 0 or end <= start:
        return 0.0
    dt = span / (n - 1)
    size = 4 * (1 << (n - 1).bit_length())
    f0 = 1.0 / period
    freqs = np.fft.rfftfreq(size, dt)
    # One-sided band: the inverse of the positive half alone is the analytic signal.
    band = np.exp(-0.5 * ((freqs - f0) / (bandwidth * f0)) ** 2)
    spectra = np.fft.rfft(comps - comps.mean(axis=1, keepdims=True), size, axis=1) * band
    best = int(np.argmax(np.sum(np.abs(spectra) ** 2, axis=1)))
    full = np.zeros(size, dtype=np.complex128)
    full[: freqs.size] = spectra[best]
    analytic = np.fft.ifft(full)[:n]
    phase = np.unwrap(np.angle(analytic))
    # The phase at a time between samples: interpolated (the samples are ~0.2 s apart).
    a, b = np.interp([start, end], times, phase).tolist()
    return (b - a) / (2 * math.pi)


def even(comps: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``comps`` ``(k, n)`` resampled on an even grid at their median interval.

    The spectrum and the phase read samples as evenly spaced; a call's images are
    not (a busy server skips some, the network bunches them): with one image in four
    missing, a period in samples is a quarter too short in seconds. Linear
    interpolation puts them back on the clock; evenly spaced input comes back as is.
    """
    n = comps.shape[1]
    if n < 3:
        return comps, times
    steps = np.diff(times)
    dt = float(np.median(steps))
    if dt <= 0 or float(np.max(np.abs(steps - dt))) <= 0.1 * dt:
        return comps, times
    grid = times[0] + dt * np.arange(int((times[-1] - times[0]) / dt) + 1)
    out = np.empty((comps.shape[0], grid.size))
    for i, row in enumerate(comps):
        out[i] = np.interp(grid, times, row)
    return out, grid
