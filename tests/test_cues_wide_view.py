#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""Motion counted in patches, whatever the camera's aspect ratio (issue 16).

The cues' view (:class:`~pipecat_tandem.fusion.cue_view.CueView`) scales every frame
to 480 pixels high, so a 4:3 camera gives 12×16 patches and a 16:9 one 12×21: the
wider camera sees more at its sides, and an arm covers as many patches in both.
Asked for 1.5 % of the frame's patches throughout, the 16:9 camera's wave needed
four moving patches where the 4:3 one's needs three, and a 1.2 Hz low-contrast wave
at 1280×720, which moves two to four once the arm is up, was never seen. Pure
logic: patch embeddings made here, fed to the counter image by image (no loop, no
codec).
"""

import math

import numpy as np

from pipecat_tandem.fusion import RepetitionCounter

_DIM = 16
_FPS = 5.0
_WAVE = [40, 41, 53]  # the patches a waving forearm passes through


def _view(cols, total, *, seed, wave=None, raised=(), jumps=None):
    """``(time, embeddings)`` of a 12×``cols`` view, 5 images a second for ``total`` s.

    Args:
        cols: Patches across (16: a 4:3 camera, 21: a 16:9 one, in the cues' view).
        total: Seconds.
        seed: Seeds the embeddings and the noise.
        wave: ``(hz, start, end)``: the ``_WAVE`` patches go round a circle in
            embedding space (each moves by the same distance, about 0.1, at every
            image), from ``start`` to ``end``.
        raised: Patches that also move for the wave's first three images (the arm
            coming up moves more of the view than the wave itself).
        jumps: ``{image index: patches}`` that jump at that image (a codec's clean-up
            after a still body's shift, a small object in a corner).
    """
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 1.0, (12 * cols, _DIM)).astype(np.float32)
    u, v = rng.normal(0.0, 1.0, (2, len(_WAVE), _DIM)).astype(np.float32)
    offsets = np.zeros_like(base)
    out = []
    for k in range(int(total * _FPS)):
        t = k / _FPS
        if wave is not None:
            hz, start, end = wave
            if start <= t < end:
                theta = 2 * math.pi * hz * (t - start)
                offsets[_WAVE] = 0.5 * (math.cos(theta) * u + math.sin(theta) * v)
            if start <= t < start + 0.6:
                offsets[list(raised)] = rng.normal(0.0, 0.5, (len(raised), _DIM))
        for p in (jumps or {}).get(k, ()):
            offsets[p] = rng.normal(0.0, 0.5, _DIM)
        noise = rng.normal(0.0, 0.01, base.shape).astype(np.float32)  # a sensor, a codec
        out.append((t, base + offsets + noise))
    return out


def _cues(frames):
    counter = RepetitionCounter()
    cues = []
    for t, x in frames:
        cues += counter.update(x, t)
    return [(c.kind, round(c.time, 1), round(c.value, 2)) for c in cues]


def _periodic(cues):
    return [c for c in cues if c[0] == "periodic_motion"]


def test_a_three_patch_wave_is_seen_in_a_16_9_view_as_in_a_4_3_one():
    for cols in (16, 21):  # 640×480 and 1280×720 in the cues' view
        frames = _view(cols, 9.0, seed=cols, wave=(1.2, 2.0, 6.0), raised=[52, 64])
        cues = _cues(frames)
        periodic = _periodic(cues)
        assert periodic, (cols, cues)
        assert 2.0 <= periodic[0][1] <= 6.5
        assert abs(periodic[0][2] - 1 / 1.2) < 0.2
        kinds = [c[0] for c in cues if c[0].startswith("motion")]
        assert kinds == ["motion_onset", "motion_offset"], cues


def test_three_patches_for_four_images_do_not_start_motion_in_a_16_9_view():
    # The codec's clean-up after a still body's shift at 1280×720: three or four
    # patches for four images in a row, then nothing (1.5 % of 12×21 is four).
    jumps = {10: [60, 61, 62], 11: [60, 61, 73], 12: [61, 62, 74], 13: [60, 62, 73]}
    assert _cues(_view(21, 8.0, seed=1, jumps=jumps)) == []


def test_two_moving_images_apart_and_a_corner_object_are_no_motion():
    # A twitch (moving, still, moving, then still), and a small object going round
    # a corner for 60 s (two patches at every image): neither is motion.
    twitch = {10: [60, 61, 62, 63], 12: [60, 61, 62, 63]}
    corner = {k: [0, 1] for k in range(300)}
    assert _cues(_view(16, 6.0, seed=2, jumps=twitch)) == []
    assert _cues(_view(21, 60.0, seed=3, jumps=corner)) == []
