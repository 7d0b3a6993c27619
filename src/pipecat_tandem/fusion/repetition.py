#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Motion segments, periodicity and repetition counting from patch embeddings.

:class:`RepetitionCounter` is one of the cue detectors of
:mod:`pipecat_tandem.fusion.cues` (it emits ``motion_onset``, ``motion_offset``,
``periodic_motion`` and ``repetition`` cues). It is incremental: a motion segment's
feature vectors live in one growable array with running first and second moments, the
principal subspace is tracked from image to image (one subspace-iteration step on the
running covariance, with an exact eigendecomposition every ``refresh`` images), and the
spectrum uses OpenCV's real row DFT, so an image costs ~0.1 ms whatever the segment
length instead of a fresh eigendecomposition and FFT over the whole segment.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt

from pipecat_tandem.fusion.cue_core import Cue, patch_distances
from pipecat_tandem.fusion.habituation import PatchBaseline
from pipecat_tandem.fusion.periodicity import (
    N_COMPONENTS,
    Series,
    cycles,
    even,
    orthonormal,
    spectral_period_of,
)

__all__ = ["RepetitionCounter"]


class RepetitionCounter:
    """Motion segments, periodicity and repetition counts from the patch time series.

    Each image is reduced to a short vector: every patch embedding is projected on
    ``n_proj`` fixed random directions (so *where* things are stays visible), and the
    result is randomly projected to ``dims`` numbers (inner products survive, by
    Johnson–Lindenstrauss). Motion energy is the mean of the top 2 % patch distances to
    the previous image minus their median, which ignores sensor noise. An image is
    *moving* when the energy exceeds ``motion_threshold`` **and** at least
    ``min_moving_patches`` patches moved (distance above the median by
    ``motion_delta``): a small object moving in a corner, or a compression artefact,
    moves one or two patches of a 640×480 frame, a waving arm three to seven, a body
    many more (measured on VP8-decoded frames, see
    ``docs/bench/cues-caller-section.md``). Patches are counted in the cues' view
    (:class:`~pipecat_tandem.fusion.cue_view.CueView`: every frame 480 pixels high),
    where the codec's clean-up after a still body's pixel shift moves up to three
    patches by 0.035-0.04 for two or three images in a row at every sender size, and
    a wave moves three or more by over 0.04: hence ``motion_delta`` 0.04 and three
    patches at least. *Starting* motion also needs ``min_moving_share`` of the frame's
    patches: the view's height is fixed, so a wider camera adds patches at its sides,
    and at 1280×720 (12×21 patches, where 1.5 % is four) the codec's clean-up after a
    still body's shift moved three or four patches for four images in a row. Once
    started, ``min_moving_patches`` is enough, at any width: an arm covers as many
    patches in a 16:9 view as in a 4:3 one, and a 1.2 Hz low-contrast wave at
    1280×720 moves two to four (asked for four throughout, it never had the six
    strong images a period is looked for at, and was never seen).

    Weak motion that is *new where it happens* counts too
    (:class:`~pipecat_tandem.fusion.habituation.PatchBaseline`, ``habituate``): a
    low-contrast or 1.6-2.0 Hz wave moves its arm's patches only 0.01-0.03 above the
    median, under ``motion_delta``, where they had moved under 0.005 for seconds;
    a patch moving 2.25 times its own habitual level (and at least 0.012) three
    images in a row is counted as moving. The corner object's patches (always
    moving) and the sway's (a spike every ~2 s, then the codec's clean-up) have a
    habitual level that their motion does not exceed that much. The patches that
    kept moving before a segment began are left out of its feature series, so the
    corner object's motion does not drown a small arm's period; and the series has
    only the patches that moved in the images that started the segment: in the
    12×21 view of a 1280×720 camera a wave's arm is three to five patches, and with
    all the others' compression noise in it a 1.2 Hz wave's period scored 0.10-0.15
    (0.5-0.8 for the arm's patches alone) and was never found. When all of those
    patches were habituated already (the motion went on from before the habituation
    was looked at), they are kept. A motion segment starts at a moving image
    and ends after ``still_secs`` without one that moves *strongly* (energy at least
    ``strong_share`` of the segment's peak, and as many moving patches as
    ``strong_share`` of the median of its recent strong images: a still body's pixel
    shift after the squats moves 6 patches where a squat moves 25, but its energy,
    which saturates, reached half the peak and kept the count going). Its period is
    only looked for while at least half of its recent images moved strongly. Motion
    starts at ``onset_images`` moving images in a row (one still image allowed among
    them did start a 1.6 Hz wave at 480×360, which alternates 2-7 moving patches, but
    also a still person at 320×240 / 250 kbit/s, whose compression noise moves 1-7),
    or at ``sustained_images`` in a row counting the patches that moved in the image
    *or the one before*: a live 1280×720 sender updates a waving arm's patches
    unevenly (0.03-0.045, then 0.013-0.016, image after image), so a 16:9 view's count
    went 7, 3, 7, 2, 5, 1 and a 1.2 Hz wave started motion late or never (6 of 12
    loopback calls seen); a standing person's sway and its clean-up last under a
    second (four in a row started motion on one in live 640×480 calls, six did not).
    That count leaves out the patches that kept moving before (habituated, and moved
    within ``busy_secs``): over two images a corner object's patches and one of a
    sway's clean-up made three, and started motion on three still persons of twelve
    at 320×240. That count needs ``min_moving_patches`` at any width, not the
    16:9 share: over pairs of images a live 1280×720 sender's 1.2 Hz wave moved its
    arm's three to five patches (it missed 5 of 13 loopback calls asked for four),
    and the share is there for the codec's clean-up after a still body's shift,
    which lasts four images, never six (a still stretch's longest run over pairs at
    1280×720: two images offline, three in live calls). No motion starts in the first
    ``warmup`` seconds of a stream: a live sender's bitrate ramp sharpens the
    picture, which moved four to eight patches for a second and started motion in 4
    of 12 calls; motion still going when the warm-up ends counts from its start. A
    stream starts at the first image, at a new frame size, and when the camera
    resumes after ``resume_gap`` seconds without an image (its encoder starts
    over); the image after the gap is not compared with the one before it (what
    happened in between was not seen), and a segment in motion goes on with it.
    Within a segment, motion after ``restart_secs`` of stillness with nothing
    counted yet restarts the count's clock.

    Inside a segment (at most ``max_secs`` buffered) the period is the lowest strong
    spectral peak of the vectors' top principal components (a frequency, so a period of
    6.65 frames at 5 fps is measured as such; an autocorrelation only sees whole-frame
    lags); it counts when at least ``min_periodicity`` of the spectrum's power is at
    the fundamental and its harmonics (0.35: a 1.2 Hz wave seen through a 1280×720
    camera's wider view scores 0.36-0.45, a 640×480 one 0.55). The count is the number
    of cycles the components went through from the start of the motion to the last
    strongly moving image, followed by the phase of
    the component band-passed at the period
    (:func:`~pipecat_tandem.fusion.periodicity.cycles`): each rep keeps its own length
    (±15 % in a real set), where moving time / period needed the period to within
    1 / (2 n) and counted 3 as 4 and 9 as 8 at a real caller. The series is put back on
    an even clock first (a call's images are not evenly spaced). A rep counts once
    ``count_at`` of it is done (0.65: a phase read at the edge of the motion runs a
    little ahead, and a count said is never taken back). The count does not depend on
    how the pose maps onto the embeddings (the distance from the rest pose saturates
    once a body has moved at all: measured on decoded VP8, it cannot count trips).
    Counts are reported once the motion is periodic (a ``periodic_motion`` cue) and
    never go down.

    The principal subspace is tracked incrementally (see the module docstring); it is
    recomputed exactly every ``refresh`` images.
    """

    def __init__(
        self,
        *,
        motion_threshold: float = 0.02,
        motion_delta: float = 0.04,
        min_moving_share: float = 0.015,
        min_moving_patches: int = 3,
        strong_share: float = 0.5,
        onset_images: int = 3,
        sustained_images: int = 6,
        restart_secs: float = 0.8,
        still_secs: float = 1.5,
        max_secs: float = 120.0,
        min_periodicity: float = 0.35,
        n_proj: int = 2,
        dims: int = 32,
        seed: int = 0,
        refresh: int = 8,
        count_at: float = 0.65,
        baseline: PatchBaseline | None = None,
        habituate: bool = True,
        warmup: float = 2.0,
        resume_gap: float = 1.0,
        busy_secs: float = 2.0,
    ) -> None:
        """Create a counter (see the class docstring).

        ``baseline`` is the per-patch habituation (a default
        :class:`~pipecat_tandem.fusion.habituation.PatchBaseline` when not given);
        ``habituate=False`` counts only patches above ``motion_delta``, as before it.
        ``warmup``: no motion starts within this many seconds of a stream's first
        image (or of a new frame size, or of a resume; in loopback calls the start-up
        started motion 1.0-1.2 s after the first image). ``sustained_images``: how
        many images in a row, counting the patches that moved in the image or the one
        before, also start motion (4 started it on a sway in live 640×480 calls).
        ``resume_gap``: a longer time without an image is the camera stopping and
        resuming, which warms up again. Images come every 0.2 s (the ingest keeps one
        per 0.2 s slot), 0.4 s when a frame is dropped or late; a second without one
        is not jitter but a stopped camera (muted, or frozen until its next key
        frame), and a resumed sender ramps its bitrate again. ``busy_secs``: a
        habituated patch that moved this recently is left out of the count over pairs
        of images (the corner object's patches move every second or so; those a
        start-up sharpened, habituated for seconds after it, have stopped).

        Raises:
            ValueError: If ``dims`` or ``refresh`` is below 1.
        """
        if dims < 1 or refresh < 1:
            raise ValueError("dims and refresh must be >= 1")
        self.motion_threshold, self.still_secs = motion_threshold, still_secs
        self.motion_delta, self.min_moving_share = motion_delta, min_moving_share
        self.min_moving_patches, self.strong_share = min_moving_patches, strong_share
        self.onset_images, self.restart_secs = onset_images, restart_secs
        self.sustained_images = sustained_images
        self.count_at, self.warmup, self.resume_gap = count_at, warmup, resume_gap
        self.busy_secs = busy_secs
        self._stream_t0 = 0.0  # the current stream's first image
        default = PatchBaseline(resume_gap=resume_gap)  # resumes as the counter does
        self.baseline = (baseline or default) if habituate else None
        # Patches left out of the segment's feature series (habituated when it began).
        self._quiet_out: np.ndarray | None = None
        # The patches in the series: those that moved as it started, less the left-out ones.
        self._keep: np.ndarray | None = None
        self._habitual: np.ndarray | None = None
        self._peak = 0.0  # the segment's strongest motion energy
        self._areas: deque[int] = deque(maxlen=25)  # moving patches of recent strong images
        self._strong: deque[bool] = deque(maxlen=12)  # recent images: moved strongly?
        # Moving images before onset: the image before each, its time, energy, moving patches.
        self._candidate: list[tuple[np.ndarray, float, float, np.ndarray]] = []
        self._raw_run = 0  # images in a row that moved on their own (the end of the candidates)
        self._prev_mask: np.ndarray | None = None  # the patches that moved in the last image
        self._moved_at: np.ndarray | None = None  # when each patch last moved
        self._busy: np.ndarray | None = None  # habitual, and moved lately (see ``busy_secs``)
        self._prev_energy = 0.0
        self.max_secs, self.min_periodicity = max_secs, min_periodicity
        self.n_proj, self.dims, self.seed, self.refresh = n_proj, dims, seed, refresh
        self._proj: np.ndarray | None = None
        self._proj2: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._prev_t: float | None = None
        self._series = Series(dims)
        self._basis: np.ndarray | None = None
        self._since_exact = 0
        self.in_motion = False
        self._onset = 0.0  # time of the rest image the motion started from
        self._last_moving = 0.0
        self._still_since: float | None = None
        self.count = 0
        self.period: float | None = None
        self.periodicity = 0.0
        self.last_energy = 0.0
        self.last_moving_patches = 0

    def _patch_projections(self, x: np.ndarray) -> np.ndarray:
        """Every patch embedding projected on the ``n_proj`` fixed directions."""
        flat = x.shape[0] * self.n_proj
        if self._proj is None or self._proj2 is None or self._proj2.shape[0] != flat:
            rng = np.random.default_rng([self.seed, x.shape[0], x.shape[1]])
            self._proj = rng.standard_normal((x.shape[1], self.n_proj)).astype(np.float32)
            self._proj2 = (rng.standard_normal((flat, self.dims)) / np.sqrt(self.dims)).astype(
                np.float32
            )
        return np.asarray(x @ self._proj)

    def _feature(self, y: np.ndarray) -> np.ndarray:
        """The feature vector of one image's patch projections: the segment's patches only."""
        assert self._proj2 is not None
        y = y.copy()
        if self._keep is not None and self._keep.shape[0] == y.shape[0]:
            y[~self._keep] = 0.0
        return np.asarray(y.reshape(-1) @ self._proj2, dtype=np.float64)

    def _series_patches(self, moved: np.ndarray) -> None:
        """The segment's series is of the patches in ``moved``, less those that kept moving."""
        keep = moved.copy()
        out = self._quiet_out
        if out is not None and out.shape == keep.shape:
            # The corner object's motion would drown a small arm's period; but if the
            # motion is where things kept moving (it went on from before the
            # habituation was looked at), it is all there is.
            rest = keep & ~out
            if np.count_nonzero(rest) >= self.min_moving_patches:
                keep = rest
        self._keep = keep
        self._basis = None

    def _push(self, x: np.ndarray, t: float) -> None:
        """Add the image ``x`` taken at ``t`` to the segment's feature series."""
        self._series.append(self._feature(self._patch_projections(x)), t)

    def update(self, emb: npt.ArrayLike, t: float) -> list[Cue]:
        """Feed the next image's patch embeddings; returns new cues."""
        x = np.asarray(emb, dtype=np.float32)
        prev = self._prev
        d = None
        if prev is not None and prev.shape == x.shape and x.ndim == 2:
            d = patch_distances(prev, x)
        return self._step(x, t, d)

    def _step(self, x: np.ndarray, t: float, d: np.ndarray | None) -> list[Cue]:
        """:meth:`update` with the distances to the previous image already computed."""
        prev, self._prev = self._prev, x
        prev_t, self._prev_t = self._prev_t, t
        if x.ndim != 2 or x.shape[0] == 0:
            return []
        if prev is None or prev_t is None or d is None:
            self._new_stream(t)  # the first image, or a new frame size
            return self._end_segment(t) if self.in_motion else []
        if t - prev_t > self.resume_gap:
            # The camera stopped and resumed: its encoder ramps up again, and the
            # distance across the gap is whatever happened while nothing was seen. A
            # segment in motion goes on (a squat set through a freeze is one set); what
            # comes next says whether it still moves.
            self._new_stream(t)
            if self.in_motion:
                self._push(x, t)
            return []
        energy, area, median = _motion_energy(d, self.motion_delta)
        excess = d - median
        mask = excess > self.motion_delta
        if self.baseline is not None:
            # Weak motion new where it happens (an arm still for seconds) counts too;
            # patches above ``motion_delta`` are counted already.
            if not self.in_motion and not self._candidate:
                # What kept moving before this image: if motion starts here, its
                # own patches are not among them.
                self._habitual = self.baseline.habituated()
                self._busy = self._habitual
                moved_at = self._moved_at
                if self._busy is not None and moved_at is not None:
                    # Habitual *and* still moving: a start-up's sharpened patches stay
                    # habitual for ~14 s (tau 8 s) after it, and an arm over them
                    # would not count; the corner object moved a second ago.
                    if moved_at.shape == self._busy.shape:
                        self._busy = self._busy & (t - moved_at <= self.busy_secs)
            new = self.baseline.update(excess, t)
            area += int(np.count_nonzero(new & (excess <= self.motion_delta)))
            mask |= new
        # The patches that moved in this image or the one before: a live encoder
        # updates a moving arm's patches in one image and barely in the next.
        prev_mask, prev_energy = self._prev_mask, self._prev_energy
        self._prev_mask, self._prev_energy = mask, energy
        pooled = area
        if prev_mask is not None and prev_mask.shape == mask.shape:
            either = mask | prev_mask
            busy = self._busy
            if busy is not None and busy.shape == either.shape:
                # Not the patches that kept moving before: a corner object moves one or
                # two of its four patches in an image, another one or two in the next,
                # and with one patch of a sway's clean-up that made three.
                either &= ~busy
            pooled = int(np.count_nonzero(either))
        if self._moved_at is None or self._moved_at.shape != mask.shape:
            self._moved_at = np.full(mask.shape, -np.inf)
        self._moved_at[mask] = t
        self.last_energy, self.last_moving_patches = energy, area
        out: list[Cue] = []
        moving = energy > self.motion_threshold and area >= self.min_moving_patches
        # Starting takes a share of the frame too: a wider view's codec clean-up moves
        # more patches (see the class docstring); a wave once started does not grow.
        least = max(self.min_moving_patches, math.ceil(self.min_moving_share * d.size))
        starts = moving and area >= least
        if not self.in_motion:
            # Over pairs of images, ``min_moving_patches`` at any width: the share is for
            # a clean-up of four images, which never lasts the ``sustained_images``.
            sustained = (
                max(energy, prev_energy) > self.motion_threshold
                and pooled >= self.min_moving_patches
            )
            if not (starts or sustained):
                self._candidate, self._raw_run = [], 0
                return out
            # A moving image or two is a twitch (a body shifting by a pixel, the
            # codec's refresh after it); motion starts at the ``onset_images``-th in
            # a row, or once it kept moving, over pairs of images, for
            # ``sustained_images`` in a row.
            self._candidate.append((prev, prev_t, energy, mask))
            self._raw_run = self._raw_run + 1 if starts else 0
            if t - self._stream_t0 < self.warmup:
                return out  # the encoder's start-up: motion must outlast it
            # Moving since the start-up: it counts from its start.
            since_startup = self._candidate[0][1] - self._stream_t0 < self.warmup
            if not since_startup and self._raw_run >= self.onset_images:
                self._candidate = self._candidate[-self.onset_images :]
            if self._raw_run < self.onset_images and len(self._candidate) < self.sustained_images:
                return out
            # The run is used up: the next segment needs a run of its own (kept, one
            # moving image right after a motion_offset started motion again).
            run, self._candidate, self._raw_run = self._candidate, [], 0
            self.in_motion, self._still_since = True, None
            self.count, self.period, self.periodicity = 0, None, 0.0
            self._onset = run[0][1]
            # Fixed for the whole segment: a patch dropped or added halfway would be a
            # step in every feature, which the spectrum would read as motion.
            self._quiet_out = self._habitual
            # Of the patches that moved in the run only: in a 1280×720 view a wave's
            # arm is 3-5 patches of 252, and the others' compression noise drowned its
            # period. Fixed, as the left-out ones: a patch joining halfway would be a
            # step in every feature.
            self._series_patches(np.logical_or.reduce([c[3] for c in run]))
            self._peak = 0.0
            self._strong.clear()
            self._areas.clear()
            out.append(Cue("motion_onset", t, energy))
            # The image before the first moving one is the pose the motion started
            # from; the images of the run follow it.
            for image, when, _, _ in run:
                self._push(image, when)
        elif (
            starts
            and self.count == 0
            and self._still_since is not None
            and t - self._still_since >= self.restart_secs
        ):
            # Still for a while before anything was counted: what starts now is the
            # motion to count (a twitch before the first squat does not lengthen it).
            self._series.clear()
            # The twitch's patches stay in and the new motion's join: the series starts
            # over here, so no feature steps halfway.
            keep = self._keep
            self._series_patches(
                mask | keep if keep is not None and keep.shape == mask.shape else mask
            )
            self._onset, self._peak = prev_t, 0.0
            self._strong.clear()
            self._areas.clear()
            self._push(prev, prev_t)
        self._push(x, t)
        self._peak = max(self._peak, energy)
        # A segment's motion is what moves strongly for it: a body standing still after
        # its squats shifts by a pixel now and then, which moves its outline's patches
        # a little; that neither extends the moving time (the count) nor the segment.
        strong = moving and energy >= self.strong_share * self._peak
        if strong and self._areas:
            strong = area >= self.strong_share * float(np.median(self._areas))
        self._strong.append(strong)
        if strong:
            self._areas.append(area)
            self._still_since, self._last_moving = None, t
        elif self._still_since is None:
            self._still_since = t
        if sum(self._strong) >= 6 and 2 * sum(self._strong) >= len(self._strong):
            # Periodic only while it keeps moving: a codec's start-up or one twitch
            # followed by stillness has no period.
            out.extend(self._analyse(t))
        if self._still_since is not None and t - self._still_since >= self.still_secs:
            out.extend(self._end_segment(t))
        return out

    def _new_stream(self, t: float) -> None:
        """A stream starts at ``t``: warm up again, and forget motion that was starting."""
        self._stream_t0 = t
        self._candidate, self._raw_run = [], 0
        self._prev_mask, self._prev_energy = None, 0.0

    def _end_segment(self, t: float) -> list[Cue]:
        cue = Cue("motion_offset", t, float(self.count), {"period": self.period})
        self.in_motion = False
        self._series.clear()
        self._basis = None
        self._still_since = None
        return [cue]

    def _analyse(self, t: float) -> list[Cue]:
        series = self._series
        times = series.times
        while len(series) > 8 and times[-1] - times[0] > self.max_secs:
            series.popleft()  # the period only needs recent cycles
            times = series.times
        out: list[Cue] = []
        if len(series) < 8:
            return out
        comps = self._components()
        period, score = spectral_period_of(comps, times)
        if period is None or score < self.min_periodicity:
            return out
        if self.period is None:
            out.append(Cue("periodic_motion", t, period, {"score": score}))
        self.period, self.periodicity = period, score
        # Cycles followed one by one (their lengths differ), not moving time / period.
        # On an even clock (a call's images are not evenly spaced); the period search
        # stays on the samples: interpolating across a gap flattens a fast wave.
        done = cycles(*even(comps, times), self._onset, self._last_moving, period)
        n = int(math.floor(done + 1.0 - self.count_at))
        if n > self.count:
            self.count = n
            out.append(Cue("repetition", t, float(n), {"period": period}))
        return out

    def _components(self) -> np.ndarray:
        """The segment projected on its top principal directions, ``(k, n)``."""
        series = self._series
        n = len(series)
        k = min(N_COMPONENTS, self.dims)
        mean = series.s1 / n
        cov = series.s2 - n * np.outer(mean, mean)
        basis = None
        if self._basis is not None and self._since_exact < self.refresh:
            basis = orthonormal(cov @ self._basis)  # one subspace-iteration step
            self._since_exact += 1
        if basis is None:
            series.resum()
            mean = series.s1 / n
            cov = series.s2 - n * np.outer(mean, mean)
            _, vecs = np.linalg.eigh(cov)
            basis = np.ascontiguousarray(vecs[:, ::-1][:, :k])
            self._since_exact = 0
        self._basis = basis
        return np.asarray((series.feats @ basis - mean @ basis).T)


def _motion_energy(d: np.ndarray, delta: float) -> tuple[float, int, float]:
    """The top 2 % distances' mean minus the median, how many exceed it by ``delta``, the median.

    One sort for all three: a full sort of a frame's few hundred distances is ~5×
    faster than a partition at three positions (numpy's multi-``kth`` partition has a
    high fixed cost).
    """
    size = d.size
    k = max(1, size // 50)
    lo, hi = (size - 1) // 2, size // 2
    p = np.sort(d)
    median = 0.5 * (float(p[lo]) + float(p[hi]))
    moving = size - int(np.searchsorted(p, median + delta, side="right"))
    return float(p[size - k :].mean()) - median, moving, median
