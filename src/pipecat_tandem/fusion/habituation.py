#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Per-patch habituation: what each patch of the view usually does, and what is new.

The motion counter of :class:`~pipecat_tandem.fusion.repetition.RepetitionCounter`
counts a patch as moving when its distance to the previous image exceeds the frame's
median by ``motion_delta`` (0.04). That one threshold has to sit above two things a
still clip always shows on decoded VP8: a small object moving in a corner (1-3
patches, 0.05-0.14 above the median, at every image) and a standing person's sway
(4-6 patches, 0.04-0.07, one image every ~2 s, then the codec's clean-up). A weak
wave (low contrast, or 1.6-2.0 Hz) moves its arm's 5-7 patches only 0.01-0.03 above
the median, where they moved 0.000-0.005 before, so the counter saw 0-2 moving
patches and no wave.

:class:`PatchBaseline` keeps, for every patch, its habitual level: a slow average
of how far above the median it moves (``tau`` seconds). Two things follow from it:

* **new weak motion**: a patch moving at least ``weak_delta`` above the median *and*
  ``ratio`` times its own habitual level, in ``persist`` images in a row, moves in a
  way it did not before (the arm that was still for seconds). The sway's patches
  have a habitual level of 0.01-0.02 (their spikes and the codec's clean-up after
  each), so their clean-up after a spike is not new; a lone spike lasts one image.
* **habituated patches**: a patch whose level is above ``habituated`` keeps moving
  (the corner object). The counter leaves those out of the feature series whose
  period it looks for, so the corner object's motion does not drown a small arm's.

Pure logic on the per-patch excess distances (no I/O, no clock): times come from
the caller. A change of patch count (another frame size) starts over.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["PatchBaseline"]


class PatchBaseline:
    """Each patch's habitual motion, and the patches whose weak motion is new.

    Feed every image's per-patch excess (distance to the previous image minus the
    frame's median distance) in time order with :meth:`update`; it returns which
    patches move newly. :meth:`habituated` says which patches keep moving.

    The habitual level is an exponential average of the excess clipped to
    ``[0, cap]`` with time constant ``tau``; over the first images it is their plain
    mean (the average's weight is at least ``1 / n``), so a patch that moves from
    the first image on is habitual at once. Nothing is new in the first ``warmup``
    seconds (the codec's start-up, no history yet), nor in the first ``warmup``
    seconds after the camera resumes (more than ``resume_gap`` without an image).

    Example::

        base = PatchBaseline()
        new = base.update(d - np.median(d), t)  # bool per patch
    """

    def __init__(
        self,
        *,
        tau: float = 8.0,
        weak_delta: float = 0.012,
        ratio: float = 2.25,
        persist: int = 3,
        warmup: float = 2.0,
        cap: float = 0.2,
        habituated: float = 0.01,
        resume_gap: float = 1.0,
    ) -> None:
        """Create an empty baseline.

        Args:
            tau: Time constant of the habitual level, s: a 4 s wave raises its
                arm's level by less than half of its motion.
            weak_delta: Least excess that can be new motion (compression noise of a
                still patch stays under 0.01).
            ratio: How many times its habitual level a patch must move to move
                newly (1.75-2.5 gave the same cues on the calibration clips; 1.5
                let still persons' sway through at 320×240 and 640×480).
            persist: Images in a row a patch must move newly to count (a sway's
                spike is one image; 2 started motion on still persons at
                320×240 and 480×360, where the codec's clean-up lasts longer).
            warmup: Seconds after the first image before anything is new.
            cap: Excess above this counts as ``cap`` in the level (a scene cut
                does not make every patch habitual).
            habituated: Level above which a patch keeps moving, and is left out
                of a motion segment's series (the corner object's patches are at
                0.02-0.04, a sway's at 0.01-0.02, an arm's before a wave under
                0.005; 0.008-0.015 gave the same cues on the calibration clips).
            resume_gap: A longer time without an image is a camera that stopped
                and resumed (as for the motion counter's ``resume_gap``): its
                sender ramps up again, sharpening the picture for a second, so the
                warm-up starts over. The habitual levels are kept (the view has the
                same size), and the time unseen does not count in them.

        Raises:
            ValueError: If a time or threshold is not positive, ``ratio`` is below
                1 or ``persist`` below 1.
        """
        positive = tau > 0 and weak_delta > 0 and cap > 0 and habituated > 0 and resume_gap > 0
        if not (positive and warmup >= 0):
            raise ValueError(
                "tau, weak_delta, cap, habituated and resume_gap must be > 0, warmup >= 0"
            )
        if ratio < 1.0 or persist < 1:
            raise ValueError(f"ratio must be >= 1 and persist >= 1, got {ratio}, {persist}")
        self.tau, self.weak_delta, self.ratio = tau, weak_delta, ratio
        self.persist, self.warmup, self.cap = persist, warmup, cap
        self.habituated_level, self.resume_gap = habituated, resume_gap
        self._level: np.ndarray | None = None
        self._run = np.zeros(0, dtype=np.int32)
        self._n = 0
        self._t0 = self._t = 0.0

    @property
    def level(self) -> np.ndarray | None:
        """Each patch's habitual level (a copy), or ``None`` before the first image."""
        return None if self._level is None else self._level.copy()

    def reset(self) -> None:
        """Forget every patch's history."""
        self._level = None
        self._run = np.zeros(0, dtype=np.int32)
        self._n = 0

    def update(self, excess: npt.ArrayLike, t: float) -> np.ndarray:
        """Feed one image's per-patch excess distances, taken at ``t`` (s).

        Args:
            excess: ``(n_patches,)`` distance to the previous image minus the
                frame's median distance.
            t: The image's time; an earlier time than the last counts as no time.

        Returns:
            ``bool (n_patches,)``: the patches that moved newly (see the class
            docstring) in this image and the ``persist - 1`` before it.

        Raises:
            ValueError: If ``excess`` is not one-dimensional or not finite.
        """
        x = np.asarray(excess, dtype=np.float64)
        if x.ndim != 1 or not np.all(np.isfinite(x)):
            raise ValueError(f"excess must be a finite 1-D array, got shape {x.shape}")
        if self._level is None or self._level.shape != x.shape:
            self.reset()
            self._level = np.zeros(x.shape)
            self._run = np.zeros(x.shape, dtype=np.int32)
            self._t0 = self._t = t
        elif t - self._t > self.resume_gap:
            # The camera resumed: its start-up is not new motion, and a run of new
            # motion does not go on across what was not seen.
            self._t0 = self._t = t
            self._run[:] = 0
        dt = max(t - self._t, 0.0)
        self._t = max(t, self._t)
        if self._t - self._t0 >= self.warmup - 1e-9:
            novel = (x >= self.weak_delta) & (x > self.ratio * self._level)
            self._run = np.where(novel, self._run + 1, 0).astype(np.int32)
        # The image itself joins the level after the comparison: new motion is new
        # against what came before it.
        self._n += 1
        alpha = max(1.0 - math.exp(-dt / self.tau), 1.0 / self._n)
        self._level += alpha * (np.clip(x, 0.0, self.cap) - self._level)
        return np.asarray(self._run >= self.persist)

    def habituated(self) -> np.ndarray | None:
        """``bool (n_patches,)``: the patches that keep moving; ``None`` before any image."""
        if self._level is None:
            return None
        return np.asarray(self._level > self.habituated_level)
