#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""Motion on a live camera's stream: start-up, and a wave updated every other image (issue 16).

A live aiortc sender starts at a low bitrate and ramps it up: for about a second
after the first frame the picture sharpens, which moves four to eight patches of
the cues' view by 0.04-0.08 at every image. In 4 of 10 loopback calls at 1280×720
that started motion 1.0-1.2 s after the stream's first image, and the segment it
opened then held the wave that came later, whose period drowned in it. Pure logic:
patch embeddings made here, fed to the counter image by image (no codec, no clock).

The same live 1280×720 stream updates a waving arm's patches unevenly: most of them
move 0.03-0.045 in one image and 0.013-0.016 in the next, so the counter saw two to
seven moving patches from image to image, never the four a 16:9 view needs three
times in a row, and started motion late or never (6 of 12 calls seen). Motion now
also starts once the patches moving in an image *or the one before* reach the count
for six images in a row (1.2 s): a sway and its clean-up last under a second.

A camera that stops and resumes at the same frame size is a new stream too: its
sender ramps up again, so the warm-up restarts after a second without an image (a
frame or two dropped is not a resume), and a wave through a freeze stays one wave.

In a 16:9 view an arm is a few patches of 252: its period is looked for in the
patches that moved as the motion started, not in every patch's (whose compression
noise drowned a 1.2 Hz wave's period at 1280×720).
"""

import math

import numpy as np

from tests.test_cues_habituation import _cues

_DIM = 16
_FPS = 5.0
_SHARPEN = [30, 31, 44, 45, 70, 71, 90, 91]  # textured patches the start-up sharpens
_ARM = [40, 41, 53, 54, 66]  # a forearm


def _still(cols, seed):
    """A generator, a 12×``cols`` view's patch embeddings, and zero offsets for them."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 1.0, (12 * cols, _DIM)).astype(np.float32)
    return rng, base, np.zeros_like(base)


def _pose(wave, t, u, v):
    """The arm's offsets at ``t`` going round the ``u``, ``v`` circle, or ``None``."""
    if wave is None or not wave[1] <= t < wave[2]:
        return None
    theta = 2 * math.pi * wave[0] * (t - wave[1])
    return math.cos(theta) * u + math.sin(theta) * v


def _circle(rng, n):
    """Two random ``(n, _DIM)`` directions, each row of norm 0.35: an arm's circle."""
    return _unit(*rng.normal(0.0, 1.0, (2, n, _DIM)).astype(np.float32))


def _unit(u, v):
    """``u`` and ``v`` with each row scaled to norm 0.35."""
    return (0.35 * w / np.linalg.norm(w, axis=1, keepdims=True) for w in (u, v))


def _noisy(rng, x):
    """``x`` with sensor and codec noise (~0.007 as a patch distance)."""
    return x + rng.normal(0.0, 0.01, x.shape).astype(np.float32)


def _stream(cols, total, *, seed, t0=1.4, startup=1.2, wave=None, arm=None, wander=0.0):
    """``(time, embeddings)`` of a 12×``cols`` view from ``t0`` for ``total`` s, 5 a second.

    Args:
        cols: Patches across (21: a 16:9 camera in the cues' view).
        total: Seconds of stream.
        seed: Seeds the embeddings and the noise.
        t0: The stream's first image (a 1280×720 sender's first frame arrives 1.2-1.6 s
            into a loopback call).
        startup: Seconds during which the ``_SHARPEN`` patches move by ~0.06 at
            every image (the encoder's bitrate ramp).
        wave: ``(hz, start, end)``: the ``_ARM`` patches go round a circle (~0.1 a
            step at 5 images a second).
        arm: Patches for the arm instead of ``_ARM``, going round a smaller circle
            (rows of norm 0.35, as ``_circle``'s).
        wander: Every patch embedding takes a random step this size a dimension at
            every image, as a still scene's decoded patches do while the codec
            requantises them and the sensor's exposure drifts: the same at every
            patch, so none moves over the frame's median, but over seconds they
            wander as far as the arm goes round its circle.
    """
    rng, base, offsets = _still(cols, seed)
    patches = _ARM if arm is None else arm
    u, v = rng.normal(0.0, 0.5, (2, len(patches), _DIM)).astype(np.float32)
    if arm is not None:
        u, v = _unit(u, v)
    out = []
    for t in t0 + np.arange(int(total * _FPS)) / _FPS:
        if t - t0 < startup:
            step = rng.normal(0.0, 1.0, (len(_SHARPEN), _DIM)).astype(np.float32)
            offsets[_SHARPEN] += 0.5 * step / np.linalg.norm(step, axis=1, keepdims=True)
        if wander:
            offsets += rng.normal(0.0, wander, offsets.shape).astype(np.float32)
        pose = _pose(wave, t, u, v)
        if pose is not None:
            offsets[patches] = pose
        out.append((t, _noisy(rng, base + offsets)))
    return out


def test_the_encoders_start_up_is_not_motion():
    for seed in range(3):
        assert _cues(_stream(21, 12.0, seed=seed)) == [], seed


def test_the_start_up_was_motion_without_the_warmup():
    # What the counter did before: the sharpening started motion at once.
    cues = _cues(_stream(21, 12.0, seed=0), warmup=0.0)
    assert cues and cues[0][0] == "motion_onset" and cues[0][1] < 3.0, cues


def test_a_wave_after_the_start_up_is_seen_and_a_new_frame_size_warms_up_again():
    frames = _stream(21, 10.0, seed=4, wave=(1.2, 5.0, 9.0))
    # The camera switches to 4:3 (12×16 in the cues' view): its encoder starts over.
    frames += _stream(16, 8.0, seed=5, t0=11.4)
    cues = _cues(frames)
    periodic = [c for c in cues if c[0] == "periodic_motion"]
    assert periodic and 5.0 <= periodic[0][1] <= 9.5, cues
    assert not [c for c in cues if c[1] < 5.0 or c[1] > 11.4], cues


def _skipping(cols, total, *, seed, wave=None, burst=None, arm=(40, 41, 61, 62, 82, 83)):
    """A still view in which moving patches are updated only every other image.

    Args:
        cols: Patches across.
        total: Seconds from 0, 5 images a second.
        seed: Seeds the embeddings and the noise.
        wave: ``(hz, start, end)``: the ``arm`` patches go round a circle; all but
            the last two are updated in even images only (a live encoder skipping
            their blocks), the last two in every image: two or six of the six
            by default move from one image to the next.
        burst: ``(start, images)``: two pairs of patches jump by ~0.06 in turn for
            that many images (a sway and the codec's clean-up after it: two moving
            patches an image, four over two).
        arm: The arm's patches.
    """
    rng, base, offsets = _still(cols, seed)
    u, v = _circle(rng, len(arm))
    groups = ([100, 101], [121, 122])
    out = []
    for k in range(int(total * _FPS)):
        t = k / _FPS
        pose = _pose(wave, t, u, v)
        if pose is not None:
            fresh = range(len(arm)) if k % 2 == 0 else range(len(arm) - 2, len(arm))
            for i in fresh:
                offsets[arm[i]] = pose[i]
        if burst is not None and 0 <= k - int(burst[0] * _FPS) < burst[1]:
            for p in groups[k % 2]:
                step = rng.normal(0.0, 1.0, _DIM).astype(np.float32)
                offsets[p] += 0.5 * step / np.linalg.norm(step)
        out.append((t, _noisy(rng, base + offsets)))
    return out


def test_a_wave_whose_patches_move_every_other_image_is_seen():
    for seed in range(3):
        cues = _cues(_skipping(21, 12.0, seed=seed, wave=(1.2, 5.0, 9.0)))
        periodic = [c for c in cues if c[0] == "periodic_motion"]
        assert periodic and 5.0 <= periodic[0][1] <= 9.5, (seed, cues)
        assert abs(periodic[0][2] - 1 / 1.2) < 0.15, (seed, cues)
        assert not [c for c in cues if c[1] < 5.0], (seed, cues)


def test_a_three_patch_arm_updated_every_other_image_is_seen_at_16_9_as_at_4_3():
    # One patch updated in even images only, two in every image: two or three move
    # from one image to the next, three over pairs of images. A 4:3 view started
    # motion on that; a 16:9 one asked for its share (four) over pairs of images too,
    # and never did, as a live 1280×720 sender's 1.2 Hz wave (three to five patches
    # over pairs) was missed in 5 of 13 loopback calls.
    for cols in (16, 21):
        for seed in range(3):
            frames = _skipping(cols, 12.0, seed=seed, wave=(1.2, 5.0, 9.0), arm=(40, 61, 62))
            cues = _cues(frames)
            periodic = [c for c in cues if c[0] == "periodic_motion"]
            assert periodic and 5.0 <= periodic[0][1] <= 9.5, (cols, seed, cues)
            assert abs(periodic[0][2] - 1 / 1.2) < 0.15, (cols, seed, cues)
            assert not [c for c in cues if c[1] < 5.0], (cols, seed, cues)


def test_a_burst_of_alternating_patches_under_six_images_is_not_motion():
    # Five images (1 s) of two patches each, in turn: four over pairs of images,
    # but not for six in a row. Asked for four in a row, the counter starts motion
    # (as it did on a standing person's sway at 4.1 s in live 640×480 calls).
    burst = _skipping(21, 10.0, seed=7, burst=(4.0, 5))
    assert _cues(burst) == []
    assert _cues(burst, sustained_images=4)


def _resumed(seed, *, stop=7.2, resume=10.0, total=10.0, wave=None):
    """A 16:9 stream from 1.4 s that stops at ``stop`` and resumes at ``resume``.

    The resumed stream has the same view and starts over like a new one: its
    encoder's bitrate ramp sharpens the ``_SHARPEN`` patches for 1.2 s again.
    """
    first = [f for f in _stream(21, stop - 1.4, seed=seed) if f[0] < stop]
    return first + _stream(21, total, seed=seed, t0=resume, wave=wave)


def test_a_camera_that_resumes_at_the_same_size_warms_up_again():
    # The same view stopped for 2.8 s, then the sender's start-up again: no motion.
    # Before the warm-up restarted on a resume it ran from the first image only, and
    # the resumed sender's ramp started motion ~0.4 s after the resume.
    for seed in range(3):
        assert _cues(_resumed(seed)) == [], seed


def test_a_wave_after_a_resume_is_seen():
    cues = _cues(_resumed(4, resume=9.0, wave=(1.2, 12.5, 16.5)))
    periodic = [c for c in cues if c[0] == "periodic_motion"]
    assert periodic and 12.5 <= periodic[0][1] <= 17.0, cues
    assert not [c for c in cues if c[1] < 12.5], cues


def test_a_dropped_frame_or_two_is_not_a_resume():
    # A wave from 3.6 s, just after the warm-up, with no image between 3.8 and 4.6 s
    # (three frames dropped or late): motion starts as it would without the hole.
    # Were that a resume, nothing could start before 6.6 s.
    frames = _stream(21, 10.0, seed=1, wave=(1.2, 3.6, 8.0))
    frames = [f for f in frames if not 3.9 < f[0] < 4.5]
    for gap, late in ((1.0, False), (0.5, True)):
        cues = _cues(frames, resume_gap=gap)
        onsets = [c[1] for c in cues if c[0] == "motion_onset"]
        assert onsets and (onsets[0] >= 6.6) == late, (gap, cues)
        assert [c for c in cues if c[0] == "periodic_motion"], (gap, cues)


def test_a_wave_goes_on_through_a_freeze():
    # 1.5 s without an image in the middle of a wave is one wave: no motion_offset
    # at the resume, and no second onset after it.
    frames = _stream(21, 16.0, seed=2, wave=(1.2, 4.0, 13.0))
    frames = [f for f in frames if not 8.0 < f[0] < 9.5]
    cues = _cues(frames)
    kinds = [c[0] for c in cues]
    assert kinds.count("motion_onset") == 1 and "periodic_motion" in kinds, cues
    offsets = [c[1] for c in cues if c[0] == "motion_offset"]
    assert offsets and offsets[0] >= 13.0, cues


def _corner_and_sway(total, *, seed):
    """A still person at 4:3 (12×16) with a small object in the top-left corner.

    As in decoded 320×240 clips: the corner object moves one of its four patches by
    ~0.1 at every image, another at the next; every 4 s from 3 s the torso sways
    (five patches by ~0.06 in one image), then the codec cleans up for 2 s, one of
    the outline's patches by ~0.055 at every image. One or two patches move in an
    image (never the three a 4:3 view needs three times in a row), but the corner's
    two and the outline's two over a pair of images make four.
    """
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 1.0, (192, _DIM)).astype(np.float32)
    offsets = np.zeros_like(base)
    corner, outline = [0, 1, 17, 16], [103, 134, 119, 136]
    torso = [103, 118, 119, 134, 135]

    def move(patch, size):
        step = rng.normal(0.0, 1.0, _DIM).astype(np.float32)
        offsets[patch] += size * step / np.linalg.norm(step)

    out = []
    for k in range(int(total * _FPS)):
        t = k / _FPS
        move(corner[k % 4], 0.6)
        phase = t - 3.0 - 4.0 * math.floor((t - 3.0) / 4.0) if t >= 3.0 else -1.0
        if 0.0 <= phase < 0.1:
            for p in torso:
                move(p, 0.5)
        elif 0.1 < phase < 2.1:
            move(outline[k % 4], 0.45)
        out.append((t, _noisy(rng, base + offsets)))
    return out


def test_a_corner_object_and_a_sways_clean_up_over_pairs_of_images_are_not_motion():
    # The patches that kept moving (the corner object's) do not count over pairs of
    # images: with them, the corner's two and the clean-up's one or two made three
    # for six images in a row and started motion on still persons at 320×240.
    for seed in range(3):
        assert _cues(_corner_and_sway(30.0, seed=seed)) == [], seed


def _over_the_start_up(seed):
    """``_skipping``'s wave at 1.2 Hz from 6 s, on the patches the start-up sharpened."""
    rng, base, offsets = _still(21, seed)
    arm = _SHARPEN[:6]
    u, v = _circle(rng, len(arm))
    out = []
    for k in range(60):
        t = 1.4 + k / _FPS
        if k < 6:  # the start-up, 1.2 s
            step = rng.normal(0.0, 1.0, (len(_SHARPEN), _DIM)).astype(np.float32)
            offsets[_SHARPEN] += 0.5 * step / np.linalg.norm(step, axis=1, keepdims=True)
        pose = _pose((1.2, 6.0, 10.0), t, u, v)
        if pose is not None:
            for i in range(6) if k % 2 == 0 else range(4, 6):
                offsets[arm[i]] = pose[i]
        out.append((t, _noisy(rng, base + offsets)))
    return out


def test_an_arm_over_the_start_ups_patches_still_starts_motion():
    # The start-up leaves its patches habituated for seconds (their level decays
    # with tau 8 s), but they stopped moving: they count over pairs of images. Left
    # out for being habituated alone, the wave never started motion.
    for seed in range(3):
        frames = _over_the_start_up(seed)
        onsets = [c[1] for c in _cues(frames) if c[0] == "motion_onset"]
        assert onsets and 6.0 <= onsets[0] <= 10.0, (seed, onsets)
        assert not [c for c in _cues(frames, busy_secs=math.inf) if c[0] == "motion_onset"]


# A 1.2 Hz wave of a four-patch arm in a view whose every patch wanders.
_SMALL = {"wave": (1.2, 5.0, 9.0), "arm": [52, 53, 73, 74], "wander": 0.05}


def test_a_small_arm_in_a_wide_view_is_periodic_while_the_rest_wanders():
    # The period is looked for in the patches that moved as the motion started. With
    # every patch of the view in the series, the other 248's wandering drowned the
    # arm's period (no periodic motion for any of these seeds), as the compression
    # noise of a 1280×720 view drowned a 1.2 Hz wave's (score 0.10-0.15 offline,
    # 0.5-0.8 for the arm's patches alone).
    for seed in range(4):
        cues = _cues(_stream(21, 11.0, seed=seed, t0=0.0, startup=0.0, **_SMALL))
        periodic = [c for c in cues if c[0] == "periodic_motion"]
        assert periodic and 5.0 <= periodic[0][1] <= 9.5, (seed, cues)
        assert abs(periodic[0][2] - 1 / 1.2) < 0.06, (seed, cues)
        assert not [c for c in cues if c[1] < 5.0], (seed, cues)
    assert _cues(_stream(21, 20.0, seed=0, t0=0.0, startup=0.0, wander=0.05)) == []
