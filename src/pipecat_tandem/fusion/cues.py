#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Cheap perceptual cues computed on the fused stream (dMel codes, patch embeddings).

Cue kinds (``Cue.kind``; ``value`` meaning in brackets):

* ``speech_onset`` [mean speech-band level] / ``speech_offset`` [speech duration, s]:
  from dMel energy, with an adaptive noise floor and hysteresis
  (:class:`SpeechEnergyDetector`).
* ``visual_change`` [fraction of patches that changed]: a large share of the patch
  embeddings moved between consecutive images: a scene cut, a new slide, the camera
  turned (:class:`VisualChangeDetector`).
* ``motion_onset`` / ``motion_offset`` [repetitions counted in the ended segment]:
  localized change started or stopped (:class:`RepetitionCounter`).
* ``periodic_motion`` [period, s]: the motion in the current segment became periodic
  (waving, exercise).
* ``repetition`` [count so far in the segment]: one more cycle of periodic motion.

Every detector is a plain synchronous class fed in time order; :class:`CueDetector`
runs all of them on one micro-turn's features. Times are session seconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "Cue",
    "CueDetector",
    "RepetitionCounter",
    "SpeechEnergyDetector",
    "VisualChangeDetector",
    "patch_distances",
]


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


def _mel_band(n_mels: int, sample_rate: int, lo_hz: float, hi_hz: float) -> tuple[int, int]:
    top = 2595.0 * math.log10(1.0 + sample_rate / 2.0 / 700.0)
    centers = [
        700.0 * (10.0 ** (top * (m + 1) / (n_mels + 1) / 2595.0) - 1.0) for m in range(n_mels)
    ]
    lo = next((i for i, c in enumerate(centers) if c >= lo_hz), 0)
    hi = next((i for i, c in enumerate(centers) if c > hi_hz), n_mels)
    return lo, max(hi, lo + 1)


class SpeechEnergyDetector:
    """Speech-energy onset/offset from dMel codes.

    The per-hop energy is the mean code over the speech band (default 150–4000 Hz).
    A noise floor follows the energy down at once and up slowly (``floor_rise`` levels
    per second, only outside speech). Speech starts after ``min_speech`` seconds at or
    above ``floor + onset_margin`` and ends after ``min_silence`` seconds below
    ``floor + offset_margin``; each cue carries the time of the first hop of the run.
    """

    def __init__(
        self,
        *,
        n_mels: int = 80,
        sample_rate: int = 16000,
        band_hz: tuple[float, float] = (150.0, 4000.0),
        onset_margin: float = 3.0,
        offset_margin: float = 2.0,
        min_speech: float = 0.1,
        min_silence: float = 0.4,
        floor_rise: float = 0.5,
        hop: float = 0.01,
    ) -> None:
        """Create a detector (levels are dMel code units; see the class docstring)."""
        if offset_margin > onset_margin:
            raise ValueError("offset_margin must not exceed onset_margin (hysteresis)")
        self._lo, self._hi = _mel_band(n_mels, sample_rate, *band_hz)
        self.n_mels = n_mels
        self.onset_margin, self.offset_margin = onset_margin, offset_margin
        self.min_speech, self.min_silence = min_speech, min_silence
        self.floor_rise, self.hop = floor_rise, hop
        self.floor: float | None = None
        self.speaking = False
        self._run_start: float | None = None  # first hop of the current candidate run
        self._run_sum = 0.0
        self._run_n = 0
        self._speech_start = 0.0
        self._last_t: float | None = None

    def update(self, codes: npt.ArrayLike, times: npt.ArrayLike) -> list[Cue]:
        """Feed ``(n_hops, n_mels)`` codes and their hop times; returns new cues.

        Raises:
            ValueError: On mismatched shapes.
        """
        c = np.asarray(codes)
        t = np.asarray(times, dtype=np.float64).reshape(-1)
        if c.ndim != 2 or c.shape[1] != self.n_mels or c.shape[0] != t.shape[0]:
            raise ValueError(f"codes {c.shape} do not match {self.n_mels} mels and {t.shape} times")
        energy = c[:, self._lo : self._hi].mean(axis=1, dtype=np.float64)
        out: list[Cue] = []
        for e, ti in zip(energy.tolist(), t.tolist(), strict=True):
            if self._last_t is not None and ti < self._last_t:
                continue  # out of order: the timeline only moves forward
            dt = 0.0 if self._last_t is None else ti - self._last_t
            self._last_t = ti
            if self.floor is None:
                self.floor = e
            elif not self.speaking:
                self.floor = min(e, self.floor + self.floor_rise * dt)
            cue = self._step(e, ti)
            if cue is not None:
                out.append(cue)
        return out

    def _step(self, e: float, t: float) -> Cue | None:
        assert self.floor is not None
        if not self.speaking:
            if e >= self.floor + self.onset_margin:
                if self._run_start is None:
                    self._run_start, self._run_sum, self._run_n = t, 0.0, 0
                self._run_sum += e
                self._run_n += 1
                if t - self._run_start + self.hop >= self.min_speech - 1e-9:
                    self.speaking, self._speech_start = True, self._run_start
                    self._run_start = None
                    level = self._run_sum / max(self._run_n, 1)
                    return Cue("speech_onset", self._speech_start, level, {"floor": self.floor})
            else:
                self._run_start = None
            return None
        if e < self.floor + self.offset_margin:
            if self._run_start is None:
                self._run_start = t
            if t - self._run_start + self.hop >= self.min_silence - 1e-9:
                self.speaking = False
                start, self._run_start = self._run_start, None
                return Cue("speech_offset", start, start - self._speech_start, {})
        else:
            self._run_start = None
        return None


def patch_distances(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Per-patch normalized distance ``|a - b| / (|a| + |b|)`` in ``[0, 1]``.

    Identical embeddings give exactly 0.

    Raises:
        ValueError: If the shapes differ or are not ``(n_patches, dim)``.
    """
    x, y = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"patch embeddings must share a 2-D shape, got {x.shape} and {y.shape}")
    d = x - y
    num = np.sqrt(np.einsum("ij,ij->i", d, d))
    den = np.sqrt(np.einsum("ij,ij->i", x, x)) + np.sqrt(np.einsum("ij,ij->i", y, y))
    return (num / np.maximum(den, 1e-12)).astype(np.float32)


class VisualChangeDetector:
    """Scene-level change between consecutive images.

    A patch "changed" when its normalized distance exceeds ``patch_threshold``; a
    ``visual_change`` cue fires when at least ``fraction`` of the patches changed, at most
    once per ``refractory`` seconds. A change of frame size always counts as a change.
    """

    def __init__(
        self, *, patch_threshold: float = 0.12, fraction: float = 0.35, refractory: float = 1.0
    ) -> None:
        """Create a detector (see the class docstring)."""
        self.patch_threshold, self.fraction, self.refractory = patch_threshold, fraction, refractory
        self._prev: np.ndarray | None = None
        self._last_cue = -math.inf
        self.last_score = 0.0  # mean patch distance of the latest pair
        self.last_fraction = 0.0

    def update(self, emb: npt.ArrayLike, t: float) -> list[Cue]:
        """Feed the next image's patch embeddings; returns new cues."""
        x = np.asarray(emb, dtype=np.float32)
        prev, self._prev = self._prev, x
        if prev is None:
            return []
        if prev.shape != x.shape:
            frac, score = 1.0, 1.0
        else:
            d = patch_distances(prev, x)
            frac = float(np.mean(d > self.patch_threshold)) if d.size else 0.0
            score = float(d.mean()) if d.size else 0.0
        self.last_score, self.last_fraction = score, frac
        if frac >= self.fraction and t - self._last_cue >= self.refractory:
            self._last_cue = t
            return [Cue("visual_change", t, frac, {"score": score})]
        return []


class RepetitionCounter:
    """Motion segments, periodicity and repetition counts from the patch time series.

    Each image is reduced to a short vector: every patch embedding is projected on
    ``n_proj`` fixed random directions (so *where* things are stays visible), and the
    result is randomly projected to ``dims`` numbers (inner products survive, by
    Johnson–Lindenstrauss). Motion energy is the mean of the top 2 % patch distances to
    the previous image minus their median, which ignores sensor noise. A motion segment
    starts when the energy exceeds ``motion_threshold`` and ends after ``still_secs``
    below it.

    Inside a segment (at most ``max_secs`` buffered) the period is the lowest strong
    spectral peak of the vectors' top principal components (a frequency, so a period of
    6.65 frames at 5 fps is measured as such; an autocorrelation only sees whole-frame
    lags). The count is the moving time (first to last moving image) divided by the
    period, rounded: a rep counts once it is half done, as people count aloud, and the
    count does not depend on how the pose maps onto the embeddings. Counts are reported
    once the motion is periodic (a ``periodic_motion`` cue) and never go down.
    """

    def __init__(
        self,
        *,
        motion_threshold: float = 0.02,
        still_secs: float = 1.5,
        max_secs: float = 120.0,
        min_periodicity: float = 0.4,
        n_proj: int = 2,
        dims: int = 32,
        seed: int = 0,
    ) -> None:
        """Create a counter (see the class docstring)."""
        self.motion_threshold, self.still_secs = motion_threshold, still_secs
        self.max_secs, self.min_periodicity = max_secs, min_periodicity
        self.n_proj, self.dims, self.seed = n_proj, dims, seed
        self._proj: np.ndarray | None = None
        self._proj2: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._prev_t: float | None = None
        self._feats: deque[np.ndarray] = deque()
        self._times: deque[float] = deque()
        self.in_motion = False
        self._onset = 0.0  # time of the rest image the motion started from
        self._last_moving = 0.0
        self._still_since: float | None = None
        self.count = 0
        self.period: float | None = None
        self.periodicity = 0.0
        self.last_energy = 0.0

    def _project(self, x: np.ndarray) -> np.ndarray:
        flat = x.shape[0] * self.n_proj
        if self._proj is None or self._proj2 is None or self._proj2.shape[0] != flat:
            rng = np.random.default_rng([self.seed, x.shape[0], x.shape[1]])
            self._proj = rng.standard_normal((x.shape[1], self.n_proj)).astype(np.float32)
            self._proj2 = (rng.standard_normal((flat, self.dims)) / np.sqrt(self.dims)).astype(
                np.float32
            )
        return np.asarray((x @ self._proj).reshape(-1) @ self._proj2, dtype=np.float64)

    def update(self, emb: npt.ArrayLike, t: float) -> list[Cue]:
        """Feed the next image's patch embeddings; returns new cues."""
        x = np.asarray(emb, dtype=np.float32)
        prev, self._prev = self._prev, x
        prev_t, self._prev_t = self._prev_t, t
        if x.ndim != 2 or x.shape[0] == 0:
            return []
        if prev is None or prev_t is None or prev.shape != x.shape:
            return self._end_segment(t) if self.in_motion else []
        d = patch_distances(prev, x)
        k = max(1, d.size // 50)
        top = np.partition(d, d.size - k)[d.size - k :]
        self.last_energy = energy = float(top.mean() - np.median(d))
        out: list[Cue] = []
        moving = energy > self.motion_threshold
        if not self.in_motion:
            if not moving:
                return out
            self.in_motion, self._still_since = True, None
            self.count, self.period, self.periodicity = 0, None, 0.0
            self._onset = prev_t
            out.append(Cue("motion_onset", t, energy))
            # The previous image is the pose the motion started from.
            self._feats.append(self._project(prev))
            self._times.append(self._onset)
        self._feats.append(self._project(x))
        self._times.append(t)
        if moving:
            self._still_since, self._last_moving = None, t
        elif self._still_since is None:
            self._still_since = t
        out.extend(self._analyse(t))
        if self._still_since is not None and t - self._still_since >= self.still_secs:
            out.extend(self._end_segment(t))
        return out

    def _end_segment(self, t: float) -> list[Cue]:
        cue = Cue("motion_offset", t, float(self.count), {"period": self.period})
        self.in_motion = False
        self._feats.clear()
        self._times.clear()
        self._still_since = None
        return [cue]

    def _analyse(self, t: float) -> list[Cue]:
        while len(self._times) > 8 and self._times[-1] - self._times[0] > self.max_secs:
            self._feats.popleft()  # the period only needs recent cycles
            self._times.popleft()
        out: list[Cue] = []
        if len(self._feats) < 8:
            return out
        period, score = _spectral_period(np.stack(self._feats), np.asarray(self._times))
        if period is None or score < self.min_periodicity:
            return out
        if self.period is None:
            out.append(Cue("periodic_motion", t, period, {"score": score}))
        self.period, self.periodicity = period, score
        n = int(math.floor((self._last_moving - self._onset) / period + 0.5))
        if n > self.count:
            self.count = n
            out.append(Cue("repetition", t, float(n), {"period": period}))
        return out


def _spectral_period(
    feats: np.ndarray, times: np.ndarray, min_share: float = 0.3
) -> tuple[float | None, float]:
    """Period (s) of a multichannel series and how periodic it is, or ``(None, 0)``.

    The fundamental is the lowest-frequency spectral peak (summed over the top
    principal components, Hann-windowed, zero-padded 4×, parabolic refinement) with at
    least ``min_share`` of the strongest peak's power; it counts only once the buffer
    holds two of its cycles (before that, a harmonic would pass for the period). The
    score is the share of the power within ``1 / span`` of the fundamental and its
    first harmonics (an autocorrelation at whole-frame lags would punish
    periods that are not a whole number of frames).
    """
    n = feats.shape[0]
    span = float(times[-1] - times[0])
    if n < 8 or span <= 0:
        return None, 0.0
    dt = span / (n - 1)
    centered = feats - feats.mean(axis=0)
    _, vecs = np.linalg.eigh(centered.T @ centered)
    comps = centered @ vecs[:, ::-1][:, :4]
    size = 4 * (1 << (n - 1).bit_length())
    spec = np.abs(np.fft.rfft(comps * np.hanning(n)[:, None], n=size, axis=0)) ** 2
    power = spec.sum(axis=1)
    freqs = np.fft.rfftfreq(size, d=dt)
    lo = int(np.searchsorted(freqs, 1.0 / span))
    hi = int(np.searchsorted(freqs, 0.45 / dt))
    if hi - lo < 3:
        return None, 0.0
    band = power[lo:hi]
    inner = band[1:-1]
    peaks = np.flatnonzero((inner >= band[:-2]) & (inner > band[2:])) + 1
    if peaks.size == 0:
        return None, 0.0
    strong = peaks[band[peaks] >= min_share * float(band[peaks].max())]
    i = int(strong[0])
    a, b, c = np.log(band[i - 1] + 1e-30), np.log(band[i] + 1e-30), np.log(band[i + 1] + 1e-30)
    shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    f0 = float(freqs[lo + i] + shift * (freqs[1] - freqs[0]))
    if f0 <= 0 or span * f0 < 2.0:
        # Seen less than twice: a harmonic of a longer cycle would pass for the period.
        return None, 0.0
    # Score: the share of the in-band power near the fundamental and its harmonics.
    width = 1.0 / span
    near = np.zeros(band.size, dtype=bool)
    fb = freqs[lo:hi]
    for k in range(1, 6):
        near |= np.abs(fb - k * f0) <= width
    total = float(band.sum())
    score = float(band[near].sum()) / total if total > 0 else 0.0
    return 1.0 / f0, score


class CueDetector:
    """All cue detectors behind one call per micro-turn.

    Example::

        det = CueDetector()
        cues = det.update(codes, hop_times, [emb], [image_time])
    """

    def __init__(
        self,
        *,
        speech: SpeechEnergyDetector | None = None,
        visual: VisualChangeDetector | None = None,
        repetition: RepetitionCounter | None = None,
    ) -> None:
        """Create the detectors (defaults for any not given)."""
        self.speech = speech or SpeechEnergyDetector()
        self.visual = visual or VisualChangeDetector()
        self.repetition = repetition or RepetitionCounter()

    def update(
        self,
        codes: npt.ArrayLike,
        hop_times: npt.ArrayLike,
        patches: Sequence[npt.ArrayLike],
        image_times: Sequence[float],
    ) -> list[Cue]:
        """Run every detector on one micro-turn; cues come back in time order.

        Raises:
            ValueError: On mismatched shapes or list lengths.
        """
        if len(patches) != len(image_times):
            raise ValueError("patches and image_times must have the same length")
        cues = self.speech.update(codes, hop_times) if np.asarray(codes).size else []
        for emb, t in zip(patches, image_times, strict=True):
            cues.extend(self.visual.update(emb, t))
            cues.extend(self.repetition.update(emb, t))
        cues.sort(key=lambda c: c.time)
        return cues
