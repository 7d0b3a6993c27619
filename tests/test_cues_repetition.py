#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""Cue detectors on synthetic media: repetition counting, periodicity, visual change."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from pipecat_tandem.fusion import (
    Cue,
    CueDetector,
    PatchEmbedder,
    RepetitionCounter,
    SpeechEnergyDetector,
    VisualChangeDetector,
)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # Small matrices: OpenBLAS threads on 2 shared cores are ~10x slower (docs/bench/fusion.md).
    with threadpool_limits(limits=1):
        yield


def periodic_video(seed, *, n_reps, period, fps=5.0, w=320, h=240, noise=6.0, profile="pulse"):
    """A disk doing ``n_reps`` repetitions between 1 s of rest before and 2 s after.

    ``pulse``: rest -> far -> rest along a random line (a squat, a curl).
    ``loop``: one full turn around an ellipse per repetition, from and back to rest.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(60, 190, 3)
    bg = (
        base
        + xx[..., None] * rng.uniform(-0.15, 0.15, 3)
        + yy[..., None] * rng.uniform(-0.15, 0.15, 3)
    )
    color = np.where(base > 128, base - rng.uniform(80, 120, 3), base + rng.uniform(80, 120, 3))
    ang, amp = rng.uniform(0, 2 * np.pi), rng.uniform(60, 90)
    t_move = n_reps * period
    times = np.arange(0, 1.0 + t_move + 2.0, 1.0 / fps)
    # A bank of noisy backgrounds (a prime count, so it never lines up with a period)
    # keeps generation cheap; the noise is still fresh at every repetition.
    bank = np.clip(bg + rng.normal(0, noise, (31, h, w, 3)), 0, 255).astype(np.uint8)
    disk = np.clip(color, 0, 255).astype(np.uint8)
    r = 28
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    frames = []
    for k, t in enumerate(times):
        tm = min(max(t - 1.0, 0.0), t_move)
        if profile == "pulse":
            ph = 0.5 - 0.5 * np.cos(2 * np.pi * tm / period)
            cx = w / 2 + (ph - 0.5) * 2 * amp * np.cos(ang)
            cy = h / 2 + (ph - 0.5) * 2 * amp * np.sin(ang) * 0.8
        else:
            th = ang + 2 * np.pi * tm / period
            cx, cy = w / 2 + amp * np.cos(th), h / 2 + amp * 0.7 * np.sin(th)
        img = bank[k % 31].copy()
        x0, y0 = int(round(cx)), int(round(cy))
        ys, xs = y0 + dy, x0 + dx
        inside = (dx + x0 - cx) ** 2 + (dy + y0 - cy) ** 2 <= r**2
        inside &= (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        img[ys[inside], xs[inside]] = disk
        frames.append(img)
    return times, frames


def _run(counter, times, frames, emb):
    cues: list[Cue] = []
    for t, f in zip(times, frames, strict=True):
        cues.extend(counter.update(emb.embed(f), float(t)))
    return cues


def test_repetition_count_exact_on_90_percent_of_seeded_videos():
    emb = PatchEmbedder()
    rng = np.random.default_rng(123)
    results = []
    for i in range(30):
        n = int(rng.integers(3, 13))
        period = float(rng.uniform(1.2, 3.0))
        noise = float(rng.uniform(2, 10))
        profile = ("loop", "pulse")[i % 2]
        times, frames = periodic_video(i, n_reps=n, period=period, noise=noise, profile=profile)
        cues = _run(RepetitionCounter(), times, frames, emb)
        reps = [c.value for c in cues if c.kind == "repetition"]
        assert reps == sorted(reps)  # counts never go down
        offsets = [c for c in cues if c.kind == "motion_offset"]
        assert len(offsets) == 1 and offsets[0].value == (reps[-1] if reps else 0)
        results.append((n, int(reps[-1]) if reps else 0))
    exact = sum(n == got for n, got in results)
    assert exact >= 27, results  # >= 90 %


def test_periodic_motion_cue_reports_the_period():
    emb = PatchEmbedder()
    times, frames = periodic_video(5, n_reps=6, period=2.0, noise=4.0)
    cues = _run(RepetitionCounter(), times, frames, emb)
    kinds = [c.kind for c in cues]
    assert kinds[0] == "motion_onset" and kinds[-1] == "motion_offset"
    (periodic,) = [c for c in cues if c.kind == "periodic_motion"]
    assert periodic.value == pytest.approx(2.0, rel=0.1)
    assert 1.0 < periodic.time < 1.0 + 6 * 2.0


def test_still_noisy_video_gives_no_motion_cues():
    emb = PatchEmbedder()
    times, frames = periodic_video(9, n_reps=3, period=2.0, noise=10.0)
    still = [frames[0]] * 40
    rng = np.random.default_rng(0)
    noisy = [np.clip(f + rng.normal(0, 10, f.shape), 0, 255).astype(np.uint8) for f in still]
    det = CueDetector()
    cues = []
    for i, f in enumerate(noisy):
        cues += det.update(np.zeros((0, 80), np.uint8), np.zeros(0), [emb.embed(f)], [i * 0.2])
    assert cues == []


def test_visual_change_refractory_and_size_change():
    det = VisualChangeDetector(refractory=1.0)
    a, b = np.ones((12, 8), np.float32), -np.ones((12, 8), np.float32)
    assert det.update(a, 0.0) == []
    assert [c.kind for c in det.update(b, 0.2)] == ["visual_change"]
    assert det.update(a, 0.4) == []  # within the refractory period
    assert det.update(np.ones((6, 8), np.float32), 1.5)[0].value == 1.0  # new frame size


def test_speech_detector_hysteresis_and_validation():
    det = SpeechEnergyDetector(min_speech=0.1, min_silence=0.3)
    times = np.arange(100) * 0.01
    codes = np.zeros((100, 80), np.uint8)
    codes[20:25] = 12  # 50 ms blip: too short for speech
    codes[40:80] = 12  # then 0.2 s of silence: not yet an offset
    cues = det.update(codes, times)
    assert [(c.kind, round(c.time, 2)) for c in cues] == [("speech_onset", 0.4)]
    cues = det.update(np.zeros((40, 80), np.uint8), 1.0 + np.arange(40) * 0.01)
    assert [(c.kind, round(c.time, 2)) for c in cues] == [("speech_offset", 0.8)]
    with pytest.raises(ValueError):
        det.update(np.zeros((3, 40), np.uint8), np.zeros(3))
    with pytest.raises(ValueError):
        det.update(np.zeros((3, 80), np.uint8), np.zeros(2))
    assert det.update(np.full((5, 80), 15, np.uint8), np.zeros(5)) == []  # out of order: ignored


def test_speech_loud_in_a_few_low_channels_over_room_noise_is_speech_at_once():
    # A voiced "l" or "m" (or a soft vowel) is loud in the lowest quarter of the speech
    # band while the rest stays at the room's level: the band's mean code rises by
    # ~1.5 levels (under the onset margin of 3), its power by ~5.
    rng = np.random.default_rng(5)
    det = SpeechEnergyDetector()
    lo = 6  # the first of the detector's 150-4000 Hz channels (80 mels at 16 kHz)
    codes = (5 + rng.integers(0, 2, (300, 80))).astype(np.uint8)  # 3 s of room noise
    codes[100:130, lo : lo + 14] = 11  # 0.3 s of voicing from 1.0 s
    times = np.arange(300) * 0.01
    cues = []
    for i in range(0, 300, 20):
        cues += det.update(codes[i : i + 20], times[i : i + 20])
    assert [(c.kind, round(c.time, 2)) for c in cues] == [
        ("speech_onset", 1.0),
        ("speech_offset", 1.3),
    ]
    with pytest.raises(ValueError):
        SpeechEnergyDetector(code_db=0.0)


def test_cue_detector_rejects_mismatched_lists():
    with pytest.raises(ValueError):
        CueDetector().update(np.zeros((0, 80), np.uint8), np.zeros(0), [np.zeros((1, 4))], [])
