"""Cues on video as it arrives through WebRTC: aiortc's VP8 codec, a webcam's sensor (issue 16).

Each clip is filmed through a sensor model (auto-exposure, noise, flicker), encoded
and decoded by aiortc's own VP8 encoder and decoder with a call's settings, sampled
at the server's 5 fps, and given to the server's cue detectors. No network and no
clock: deterministic and faster than real time. The full grid (seeds, resolutions,
frame rates, bitrates) is ``benchmarks/bench_cues_vp8.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from pipecat_tandem.bench.caller.calibration import Clip, check, clips, run_clip
from pipecat_tandem.fusion.cues import VisualChangeDetector
from pipecat_tandem.fusion.repetition import RepetitionCounter

pytest.importorskip("aiortc")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def _clip(seed: int, prefix: str) -> Clip:
    (clip,) = [c for c in clips(seed) if c.name.startswith(prefix)]
    return clip


def test_sixty_seconds_of_a_small_object_in_a_corner_and_camera_noise_fire_no_cue():
    clip = _clip(0, "idle_")
    assert clip.shots[0][0] == 60.0
    assert check(clip, run_clip(clip)) == []


#: One clip of each kind at 640×480, (seed, name prefix): the fast set CI runs per codec.
FAST_CLIPS = [
    (1, "still_person_"),  # breathing, a pixel of sway: no motion, no wave
    (0, "cut_"),  # a new slide: one change, at once
    (2, "lights_off_"),  # one change; the auto-exposure climbing after it is not another
    (3, "enter_"),  # a person walks in and stays: one change once the view settles
    (1, "wave_"),  # periodic motion while waving, nothing before
    (2, "squats_"),  # five squats, counted five; motion starts and stops on time
]


@pytest.mark.parametrize(("seed", "prefix"), FAST_CLIPS)
def test_cues_are_right_on_decoded_vp8_at_640x480(seed, prefix):
    clip = _clip(seed, prefix)
    assert check(clip, run_clip(clip)) == []


@pytest.mark.parametrize("prefix", ["cut_", "squats_"])
def test_cues_are_right_on_a_small_low_bitrate_camera(prefix):
    clip = _clip(0, prefix)
    assert check(clip, run_clip(clip, size=(320, 240), bitrate=250_000)) == []


#: Senders a browser's camera falls back to (or starts at): (size, fps, bitrate).
_SENDERS = {
    "320x240": ((320, 240), 15.0, 250_000),
    "480x360": ((480, 360), 10.0, 500_000),
    "1280x720": ((1280, 720), 15.0, 1_500_000),
}


@pytest.mark.parametrize(
    ("sender", "seed"),
    # At 1280x720 seed 2 (2.0 Hz): seed 0's 1.2 Hz wave is still at the periodicity
    # threshold there (docs/bench/cues-caller-section.md).
    [("320x240", 0), ("480x360", 0), ("1280x720", 2)],
)
def test_a_wave_is_seen_whatever_size_the_camera_sends(sender, seed):
    # A forearm is one 40-pixel patch of a 320x240 frame and ten of a 1280x720 one;
    # the cues see every frame at 480 pixels high, where it is three to seven.
    size, fps, bitrate = _SENDERS[sender]
    clip = _clip(seed, "wave_")
    assert check(clip, run_clip(clip, size=size, fps=fps, bitrate=bitrate)) == []


@pytest.mark.parametrize(
    ("sender", "seed", "prefix"),
    [
        ("320x240", 0, "idle_"),  # 60 s: the corner object, sensor noise, a starved codec
        ("320x240", 2, "lights_off_"),  # the codec's start-up is not motion
        ("480x360", 2, "still_person_"),  # a pixel of sway, scaled up, is not motion
    ],
)
def test_a_small_camera_fires_no_cue_on_noise_compression_or_a_still_person(sender, seed, prefix):
    size, fps, bitrate = _SENDERS[sender]
    clip = _clip(seed, prefix)
    assert check(clip, run_clip(clip, size=size, fps=fps, bitrate=bitrate)) == []


def test_a_view_that_settles_different_is_one_change_and_drift_is_none():
    det = VisualChangeDetector(settle=1.0)
    rng = np.random.default_rng(0)
    room = rng.normal(0, 1, (48, 16)).astype(np.float32)
    cues = []
    t = 0.0
    for _ in range(10):  # still, with a slow drift (auto-exposure)
        t += 0.2
        cues += det.update(room * (1 + 0.01 * t), t)
    assert cues == []
    person = room.copy()
    person[10:16] = rng.normal(0, 1, (6, 16))  # 6 of 48 patches: someone walked in
    for _ in range(10):
        t += 0.2
        cues += det.update(person, t)
    assert [c.kind for c in cues] == ["visual_change"]
    assert cues[0].detail["rule"] == "settled" and cues[0].value == pytest.approx(6 / 48)


def test_one_moving_patch_or_a_twitch_is_not_motion():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, (192, 16)).astype(np.float32)
    counter = RepetitionCounter()
    cues = []
    for k in range(40):  # one patch (a small object in a corner) changes every image
        img = base.copy()
        img[3] = rng.normal(0, 1, 16)
        if k in (20, 21):  # and two images where a body's outline shifts
            img[50:56] += 0.3
        cues += counter.update(img, k * 0.2)
    assert cues == []


@pytest.fixture(scope="module")
def voice():
    pytest.importorskip("piper")
    from pipecat_tandem.bench.caller.voice import CallerVoice

    return CallerVoice(steady=True)


@pytest.mark.parametrize("noise_dbfs", [None, -55.0, -45.0])
def test_the_caller_stopping_talking_is_heard_through_opus_with_room_noise(voice, noise_dbfs):
    from pipecat_tandem.bench.caller.calibration import (
        SPEECH_LINES,
        check_speech,
        speech_clip,
        voice_span,
    )
    from pipecat_tandem.bench.caller.codec_loop import hear_speech, through_opus

    for i, line in enumerate(SPEECH_LINES):
        spoken = voice.utterance([line], 0.0)
        cues = hear_speech(through_opus(speech_clip(spoken, noise_dbfs=noise_dbfs, seed=i)))
        assert check_speech(cues, voice_span(spoken)) == [], line
