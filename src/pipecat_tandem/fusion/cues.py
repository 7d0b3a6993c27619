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
  embeddings moved between consecutive images (a scene cut, a new slide, the lights
  off, the camera turned), or the view settled different from the last still view
  (someone walked in and stayed) (:class:`VisualChangeDetector`).
* ``motion_onset`` / ``motion_offset`` [repetitions counted in the ended segment]:
  localized change started or stopped (:class:`RepetitionCounter`, in
  :mod:`pipecat_tandem.fusion.repetition`).
* ``periodic_motion`` [period, s]: the motion in the current segment became periodic
  (waving, exercise).
* ``repetition`` [count so far in the segment]: one more cycle of periodic motion.

Every detector is a plain synchronous class fed in time order; :class:`CueDetector`
runs all of them on one micro-turn's features (computing the patch distances once for
the change and repetition detectors). Times are session seconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pipecat_tandem.fusion.cue_core import Cue, _PairDistances, patch_distances
from pipecat_tandem.fusion.repetition import RepetitionCounter

__all__ = [
    "Cue",
    "CueDetector",
    "RepetitionCounter",
    "SpeechEnergyDetector",
    "VisualChangeDetector",
    "patch_distances",
]


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

    The per-hop energy is the speech band's (default 150–4000 Hz) mean *power* as a
    code: ``log10(mean(10 ** (k * code))) / k`` with ``k = code_db / 10``, the dMel
    step of ``code_db`` dB per level. Not the mean code: a voiced consonant or a soft
    vowel ("l", "m", the "I" of "I went") is loud in a few low channels while the
    upper band stays at the room's level, and in -45 dBFS room noise through Opus
    the mean code of "Tell me" rose less than ``onset_margin`` for most of a
    second (the onset came 0.4-0.9 s late); the band's power follows its loudest
    channels and rose at once. On room noise both read about the same level.
    A noise floor follows the energy down at once and up slowly (``floor_rise`` levels
    per second, only outside speech). Speech starts after ``min_speech`` seconds at or
    above ``floor + onset_margin`` and ends after ``min_silence`` seconds below
    ``floor + offset_margin``; each cue carries the time of the first hop of the run.
    ``min_silence`` (0.9 s) is longer than the pause between two sentences of one
    thought (0.6-0.8 s): "tell me when I stop talking" is about the end of the turn.

    Two guards, from a caller's microphone through Opus: the floor starts as the
    median level of the first ``warmup`` seconds of signal (digital silence, every
    code 0 — a call's first decoded frames, a muted microphone — and the encoder's
    half-empty first window are not room noise), and "speech" whose level never
    dipped to ``floor + offset_margin`` for ``floor_window`` seconds is a new noise
    floor (a fan, a louder room), not speech — speech always dips between words — so
    the floor moves up to it and the detector cannot stay in speech forever.
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
        min_silence: float = 0.9,
        floor_rise: float = 0.5,
        floor_window: float = 2.0,
        warmup: float = 0.2,
        hop: float = 0.01,
        code_db: float = 6.25,
    ) -> None:
        """Create a detector (levels are dMel code units; see the class docstring).

        ``code_db`` is the dMel encoder's step in dB per level (its default: 100 dB
        over 16 levels).

        Raises:
            ValueError: On margins without hysteresis or a step that is not positive.
        """
        if offset_margin > onset_margin:
            raise ValueError("offset_margin must not exceed onset_margin (hysteresis)")
        if not code_db > 0.0:
            raise ValueError(f"code_db must be > 0 dB per level, got {code_db}")
        self._k = code_db / 10.0
        self._lo, self._hi = _mel_band(n_mels, sample_rate, *band_hz)
        self.n_mels = n_mels
        self.onset_margin, self.offset_margin = onset_margin, offset_margin
        self.min_speech, self.min_silence = min_speech, min_silence
        self.floor_rise, self.hop, self.floor_window = floor_rise, hop, floor_window
        self._lows: deque[tuple[float, float]] = deque()  # (time, energy): running minimum
        self.warmup = warmup
        self._warm: list[float] = []  # levels heard before the floor is known
        self._warm_t: float | None = None
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
        energy = self._energy(c[:, self._lo : self._hi])
        if self._fast_path(energy, t):
            return []
        out: list[Cue] = []
        for e, ti in zip(energy.tolist(), t.tolist(), strict=True):
            if self._last_t is not None and ti < self._last_t:
                continue  # out of order: the timeline only moves forward
            dt = 0.0 if self._last_t is None else ti - self._last_t
            self._last_t = ti
            if self.floor is None:
                if e > 0.0:  # digital silence is not the room's level
                    self._warm.append(e)
                self._warm_t = ti if self._warm_t is None else self._warm_t
                if ti - self._warm_t >= self.warmup - 1e-9:
                    self.floor = float(np.median(self._warm)) if self._warm else e
                    self._warm = []
                continue
            elif not self.speaking:
                self.floor = min(e, self.floor + self.floor_rise * dt)
            cue = self._step(e, ti)
            if cue is not None:
                out.append(cue)
        return out

    def _energy(self, band: np.ndarray) -> np.ndarray:
        """Each hop's band power in code units (digital silence, all codes 0, is 0)."""
        power = np.power(10.0, self._k * band.astype(np.float64))
        return np.log10(power.mean(axis=1)) / self._k

    def _fast_path(self, energy: np.ndarray, t: np.ndarray) -> bool:
        """Handle a block in which nothing can happen without the per-hop loop.

        That is: hops in time order, and either no hop reaches the onset level (outside
        speech) or no hop falls below the offset level (in speech). The state after it
        equals that of the loop: the floor recursion ``f_i = min(e_i, f_(i-1) + r dt)``
        unrolls to ``min_j (e_j + r (t_i - t_j))``, a running minimum.

        Returns:
            Whether the block was handled.
        """
        if t.size == 0 or self.floor is None or self._last_t is None:
            return t.size == 0
        if t[0] < self._last_t or (t.size > 1 and bool(np.any(t[1:] < t[:-1]))):
            return False
        if self.speaking:
            return False  # the per-hop loop tracks the level's running minimum
        else:
            r = self.floor_rise
            # Floor before each hop's own energy is considered, then with it.
            start = self.floor - r * self._last_t
            floor = np.minimum(np.minimum.accumulate(energy - r * t), start) + r * t
            if bool(np.any(energy >= floor + self.onset_margin)):
                return False
            self.floor = float(floor[-1])
        self._run_start = None
        self._last_t = float(t[-1])
        return True

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
                    self._lows.clear()
                    level = self._run_sum / max(self._run_n, 1)
                    return Cue("speech_onset", self._speech_start, level, {"floor": self.floor})
            else:
                self._run_start = None
            return None
        lows = self._lows
        while lows and lows[-1][1] >= e:
            lows.pop()
        lows.append((t, e))
        while lows[0][0] < t - self.floor_window:
            lows.popleft()
        low = lows[0][1]
        if t - self._speech_start >= self.floor_window and low >= self.floor + self.offset_margin:
            self.floor = low  # no dip in floor_window seconds: a new noise level
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


class VisualChangeDetector:
    """Scene-level change: a cut between two images, or a view that settled different.

    Two rules, both on the share of patches whose normalized distance exceeds
    ``patch_threshold``:

    * **cut**: at least ``fraction`` of the patches changed between consecutive images
      (a new slide, the lights going off, the camera turned);
    * **settled**: the view was still for ``settle`` seconds (at most ``still_share``
      of the patches, or two, moved by ``settled_threshold`` between consecutive
      images) and differs from the last settled view in at least ``settled_fraction``
      of its patches, by more than ``settled_threshold`` (someone walked in and
      stayed, a large object was put down; a person is 8-10 % of the patches of a
      640×480 or 320×240 frame). A still view that differs less becomes the new
      reference, so the auto-exposure's slow drift never adds up.

    A small object moving in a corner changes a patch or two and never settles the
    view into something new; a squat or a wave ends where it started. Cues are at
    most one per ``refractory`` seconds; after one, the next settled view becomes the
    reference without a cue (the auto-exposure re-adapting after the lights went off
    is not a second change). A change of frame size always counts as a cut.
    """

    def __init__(
        self,
        *,
        patch_threshold: float = 0.12,
        fraction: float = 0.35,
        refractory: float = 1.0,
        settled_fraction: float = 0.05,
        settled_threshold: float = 0.07,
        still_share: float = 0.02,
        settle: float = 1.5,
    ) -> None:
        """Create a detector (see the class docstring)."""
        self.patch_threshold, self.fraction, self.refractory = patch_threshold, fraction, refractory
        self.settled_threshold = settled_threshold
        self.settled_fraction, self.still_share, self.settle = settled_fraction, still_share, settle
        self._prev: np.ndarray | None = None
        self._ref: np.ndarray | None = None  # the last settled view (None: take the next)
        self._still_since: float | None = None
        self._last_cue = -math.inf
        self.last_score = 0.0  # mean patch distance of the latest pair
        self.last_fraction = 0.0
        self.last_settled_fraction = 0.0  # share changed against the reference view

    def update(self, emb: npt.ArrayLike, t: float) -> list[Cue]:
        """Feed the next image's patch embeddings; returns new cues."""
        x = np.asarray(emb, dtype=np.float32)
        prev = self._prev
        d = patch_distances(prev, x) if prev is not None and prev.shape == x.shape else None
        return self._step(x, t, d)

    def _step(self, x: np.ndarray, t: float, d: np.ndarray | None) -> list[Cue]:
        """:meth:`update` with the distances to the previous image already computed."""
        prev, self._prev = self._prev, x
        if prev is None:
            return []
        if d is None:
            frac, score = 1.0, 1.0
        else:
            frac = float(np.count_nonzero(d > self.patch_threshold)) / d.size if d.size else 0.0
            score = float(d.mean()) if d.size else 0.0
        self.last_score, self.last_fraction = score, frac
        if frac >= self.fraction:
            self._ref, self._still_since = None, None
            return self._cue(t, frac, {"score": score, "rule": "cut"})
        # Still: hardly a patch moved even a little (a squat's slow turn moves many a
        # little, without any of them passing ``patch_threshold``).
        if d is None or np.count_nonzero(d > self.settled_threshold) > max(
            2, self.still_share * d.size
        ):
            self._still_since = None
            return []
        if self._still_since is None:
            self._still_since = t
        if t - self._still_since < self.settle - 1e-9:
            return []
        ref = self._ref
        if ref is None or ref.shape != x.shape:
            self._ref = x
            return []
        moved = patch_distances(ref, x)
        share = float(np.count_nonzero(moved > self.settled_threshold)) / moved.size
        self.last_settled_fraction = share
        self._ref = x
        if share >= self.settled_fraction:
            return self._cue(t, share, {"score": float(moved.mean()), "rule": "settled"})
        return []

    def _cue(self, t: float, value: float, detail: dict[str, Any]) -> list[Cue]:
        if t - self._last_cue < self.refractory:
            return []
        self._last_cue = t
        return [Cue("visual_change", t, value, detail)]


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
        self._pairs = _PairDistances()

    def update(
        self,
        codes: npt.ArrayLike,
        hop_times: npt.ArrayLike,
        patches: Sequence[npt.ArrayLike],
        image_times: Sequence[float],
        dark: Sequence[bool] | None = None,
    ) -> list[Cue]:
        """Run every detector on one micro-turn; cues come back in time order.

        ``dark`` flags the images in which nothing can be seen
        (:func:`~pipecat_tandem.fusion.darkness.image_is_dark`: a muted camera's black
        frames). The view change sees them (the picture going black or coming back
        is a change), the motion counter does not: there is no motion to see in
        black, and the picture after a second of it is a camera resuming, which
        warms up again. Fed to the counter, black frames were its warm-up and its
        habituation, and the room shown after them was new in every patch: through
        the webcam sensor model, a still person shown after 8 s of black started
        motion 1-2 s later in 5 of 6 seeds (none with the black frames skipped).

        Raises:
            ValueError: On mismatched shapes or list lengths.
        """
        if len(patches) != len(image_times) or (dark is not None and len(dark) != len(patches)):
            raise ValueError("patches, image_times and dark must have the same length")
        embs = [np.asarray(e, dtype=np.float32) for e in patches]
        if any(e.ndim != 2 for e in embs):
            raise ValueError("patch embeddings must be 2-D (n_patches, dim) arrays")
        cues = self.speech.update(codes, hop_times) if np.asarray(codes).size else []
        for i, (x, t) in enumerate(zip(embs, image_times, strict=True)):
            if dark is not None and dark[i]:
                cues.extend(self.visual.update(x, t))
                continue
            # One distance computation for both detectors, when both saw the same images
            # as this detector (they may also have been fed on their own).
            prev = self._pairs.prev
            shared = self.visual._prev is prev and self.repetition._prev is prev
            d = self._pairs(x)
            if shared:
                cues.extend(self.visual._step(x, t, d))
                cues.extend(self.repetition._step(x, t, d))
            else:
                cues.extend(self.visual.update(x, t))
                cues.extend(self.repetition.update(x, t))
        cues.sort(key=lambda c: c.time)
        return cues
