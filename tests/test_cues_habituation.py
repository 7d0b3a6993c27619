#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""Per-patch habituation: a weak wave is new motion, a corner object and a sway are not.

On decoded VP8 a weak wave (low contrast, 1.6-2.0 Hz) moves its arm's patches only
0.01-0.03 above the frame's median distance, under the counter's 0.04, while a
small object in a corner moves 0.05-0.14 at every image and a standing person's
sway moves 4-6 patches by 0.04-0.07 one image every ~2 s, then less for two or three
(docs/benchmarks.md, issue 16). Pure logic: patch embeddings made here, fed image by
image (no codec, no clock).
"""

import math

import numpy as np
import pytest

from pipecat_tandem.fusion import RepetitionCounter
from pipecat_tandem.fusion.cue_core import patch_distances
from pipecat_tandem.fusion.habituation import PatchBaseline

_DIM = 16
_FPS = 5.0
_ARM = [40, 41, 56, 57, 72]  # the patches a waving forearm passes through
_CORNER = [0, 1]
_SWAY = {0: 0.5, 1: 0.17, 2: 0.17, 3: 0.17, 4: 0.17, 5: 0.17}  # a spike, then the codec's clean-up
_BODY = [[118, 119, 134, 135, 150], [103, 104, 120, 136, 151]]  # a torso's two sides


def _step(rng, size):
    """A random vector of norm ``size``: as a move, a patch distance of about ``size / 8``."""
    v = rng.normal(0.0, 1.0, _DIM)
    return (size * v / np.linalg.norm(v)).astype(np.float32)


def _room(total, *, seed, wave=None):
    """``(time, embeddings)`` of a 12×16 view at 5 images a second for ``total`` s.

    A corner object moves two patches by ~0.1 at every image; a still person's
    torso sways, one side then the other every 2 s (five patches by ~0.06, then by
    ~0.02 for a second as the codec cleans up, ~0.01 in between: about twice their
    habitual level, as on decoded VP8); sensor noise moves every patch by ~0.007.
    ``wave``: ``(hz, start, end)``: the arm's patches go round a small circle, moving
    ~0.025 at every image (a low-contrast wave).
    """
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 1.0, (192, _DIM)).astype(np.float32)
    u, v = rng.normal(0.0, 1.0, (2, len(_ARM), _DIM)).astype(np.float32)
    u *= 0.12 / np.linalg.norm(u, axis=1, keepdims=True)
    v *= 0.12 / np.linalg.norm(v, axis=1, keepdims=True)
    offsets = np.zeros_like(base)
    out = []
    for k in range(int(total * _FPS)):
        t = k / _FPS
        for p in _CORNER:  # somewhere else in its corner at every image
            offsets[p] = _step(rng, 0.6)
        for side, patches in enumerate(_BODY):  # each side sways every 4 s, in turn
            sway = _SWAY.get((k + 10 * side) % 20, 0.08)
            for p in patches:
                offsets[p] += _step(rng, sway)
        if wave is not None and wave[1] <= t < wave[2]:
            theta = 2 * math.pi * wave[0] * (t - wave[1])
            offsets[_ARM] = math.cos(theta) * u + math.sin(theta) * v
        noise = rng.normal(0.0, 0.01, base.shape).astype(np.float32)
        out.append((t, base + offsets + noise))
    return out


def _cues(frames, **kwargs):
    counter = RepetitionCounter(**kwargs)
    cues = []
    for t, x in frames:
        cues += counter.update(x, t)
    return [(c.kind, round(c.time, 1), round(c.value, 2)) for c in cues]


def test_the_scene_moves_as_on_decoded_vp8():
    # The premise: the arm moves under the 0.04 threshold, the corner and the sway over it.
    frames = _room(12.0, seed=0, wave=(1.6, 5.0, 9.0))
    excess = []
    for (_, a), (_, b) in zip(frames, frames[1:], strict=False):
        d = patch_distances(a, b)
        excess.append(d - np.median(d))
    e = np.array(excess)
    arm = e[26:44][:, _ARM]
    assert 0.01 < float(np.median(arm)) < 0.035 and float(np.max(arm)) < 0.04
    assert float(np.min(e[:, _CORNER])) > 0.05
    assert float(np.max(e[:, _BODY[0]])) > 0.04


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_weak_wave_is_new_motion_where_the_corner_and_the_sway_are_not(seed):
    waved = _cues(_room(12.0, seed=seed, wave=(1.6, 5.0, 9.0)))
    periodic = [c for c in waved if c[0] == "periodic_motion"]
    assert periodic and 5.0 <= periodic[0][1] <= 9.5, waved
    assert abs(periodic[0][2] - 1 / 1.6) < 0.1, waved
    assert not [c for c in waved if c[1] < 5.0], waved
    # Without the wave: the corner object and the sway for 30 s are no motion (a
    # baseline asking for 1.5 times the habitual level, not 2.25, starts motion here).
    assert _cues(_room(30.0, seed=seed)) == []


def test_without_habituation_the_weak_wave_is_not_seen():
    # What the counter did before the baseline: 0-2 patches over 0.04 in the wave.
    waved = _cues(_room(12.0, seed=0, wave=(1.6, 5.0, 9.0)), habituate=False)
    assert not [c for c in waved if c[0] == "periodic_motion"], waved


def test_a_patch_that_keeps_moving_is_habituated_and_a_still_one_moving_is_new():
    base = PatchBaseline()
    x = np.zeros(10)
    new = []
    for k in range(40):
        x[:] = 0.0
        x[0] = 0.08  # the corner object: every image from the first
        if k >= 20:
            x[5] = 0.02  # an arm, still for 4 s, moving weakly from then on
        if k == 12:
            x[7] = 0.06  # one spike (a sway)
        new.append(base.update(x, k / _FPS).copy())
    new_arr = np.array(new)
    assert not new_arr[:, 0].any()  # habitual from the first image on
    assert not new_arr[:, 7].any()  # one image is not motion
    # New from the third image in a row (``persist``), for seconds: a wave's time.
    assert not new_arr[20:22, 5].any() and new_arr[22:32, 5].all()
    hab = base.habituated()
    assert hab is not None and hab[0] and not hab[5] and not hab[7]
    for k in range(40, 100):  # an arm that keeps moving becomes habitual in turn
        last = base.update(x, k / _FPS)
    assert not last[5]


def test_the_baseline_starts_over_on_a_new_frame_size_and_rejects_bad_input():
    base = PatchBaseline()
    base.update(np.full(6, 0.1), 0.0)
    assert base.level is not None and base.level.shape == (6,)
    base.update(np.zeros(8), 0.2)  # another camera size: no history yet
    level = base.level
    assert level is not None and level.shape == (8,) and not level.any()
    with pytest.raises(ValueError, match="1-D"):
        base.update(np.zeros((2, 4)), 0.4)
    with pytest.raises(ValueError, match="finite"):
        base.update(np.array([0.0, np.nan]), 0.4)
    with pytest.raises(ValueError, match="ratio"):
        PatchBaseline(ratio=0.5)
    with pytest.raises(ValueError, match="tau"):
        PatchBaseline(tau=0.0)


def _resumed(gap, **kwargs):
    """A baseline's new patches: 10 s of a corner object, ``gap`` s unseen, then a ramp.

    After the gap patch 5 moves weakly at every image for 1.6 s (a resumed sender's
    bitrate ramp sharpening the picture), then from 2.4 s after it patch 7 does (an
    arm). Returns the baseline, the resumed images' times and their new patches.
    """
    base = PatchBaseline(**kwargs)
    x = np.zeros(10)
    x[0] = 0.08  # the corner object, from the first image
    for k in range(50):
        base.update(x, k / _FPS)
    times = 9.8 + gap + np.arange(20) / _FPS
    new = []
    for k, t in enumerate(times):
        x[5] = 0.03 if k < 8 else 0.0
        x[7] = 0.03 if k >= 12 else 0.0
        new.append(base.update(x, float(t)).copy())
    return base, times, np.array(new)


def test_a_camera_that_resumes_warms_up_again():
    # Nothing is new in the 2 s after a resume, as after the first image: the ramp's
    # sharpening was new motion from its third image (``persist``) before the
    # baseline restarted its warm-up at a resume (the counter already did).
    base, times, new = _resumed(3.0)
    assert not new[:10].any()
    assert not new[:, 5].any()
    # Warmed up: an arm moving from 2.4 s after the resume is new from its third image.
    assert not new[12:14, 7].any() and new[14:, 7].all()
    hab = base.habituated()  # what it knew before the gap is kept
    assert hab is not None and hab[0] and not hab[5]
    counter = RepetitionCounter(resume_gap=0.5)  # its baseline resumes with it
    assert counter.baseline is not None and counter.baseline.resume_gap == 0.5


def test_a_dropped_frame_or_two_does_not_warm_the_baseline_up_again():
    # 0.8 s without an image (three frames dropped or late) is not a resume: the
    # patch moving from right after it is new from its third image.
    for gap, kwargs in ((0.8, {}), (3.0, {"resume_gap": 5.0})):
        _, _, new = _resumed(gap, **kwargs)
        assert not new[:2, 5].any() and new[2:8, 5].all(), gap
