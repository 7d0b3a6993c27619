#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""What the assistant can see of a camera, as pure code (issue 16's bad input).

Whether an image is dark (a muted camera's black frames, not a dark room: the
threshold against the lights-off calibration clips), when a camera counts as gone
or dark and when the user is told, and the words. No loop, no frames; the same
through the processors is ``tests/test_camera_bad_input.py``.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from pipecat_tandem.bench.caller.calibration import clips
from pipecat_tandem.bench.caller.camera import Sensor, film
from pipecat_tandem.fusion.darkness import DARK_LEVEL, image_is_dark, image_level
from pipecat_tandem.policy.acknowledgements import CAMERA_DARK, acknowledge
from pipecat_tandem.policy.camera import CameraPresence, asks_if_seen
from pipecat_tandem.policy.interjections import parse_interjection

FPS = 5.0  # the server keeps five images a second


def test_a_dark_room_is_not_a_dark_camera():
    # The lights-off clips: the light drops to 6 % and the auto-exposure climbs.
    # Every image of it, also the first after the lights went off, is not dark.
    for seed in range(3):
        (clip,) = [c for c in clips(seed) if c.name.startswith("lights_off_")]
        for size in ((640, 480), (320, 240)):
            sensor = Sensor(seed=zlib.crc32(clip.name.encode()) % 997)
            levels = [
                image_level(rgb.tobytes(), *size)
                for t, rgb in film(list(clip.shots), fps=FPS, size=size, sensor=sensor)
                if t >= 5.0
            ]
            assert min(levels) > 2 * DARK_LEVEL, (clip.name, size, min(levels))


def test_a_dark_room_through_vp8_is_not_a_dark_camera():
    # The codec smooths the sensor's noise: the first image after the lights went
    # off is darker through aiortc's VP8 (12.3-15.3 for seeds 0-11), still not dark.
    pytest.importorskip("aiortc")
    from pipecat_tandem.bench.caller.codec_loop import through_vp8
    from pipecat_tandem.bench.caller.scenes import Dimmed

    for seed in (4, 7):  # the darkest two
        (clip,) = [c for c in clips(seed) if c.name.startswith("lights_off_")]
        person = clip.shots[0][1]
        sensor = Sensor(seed=zlib.crc32(clip.name.encode()) % 997)
        frames = film(
            [(1.0, person), (1.0, Dimmed(person))], fps=15, size=(640, 480), sensor=sensor
        )
        levels = [
            image_level(rgb.tobytes(), 640, 480) for t, rgb in through_vp8(frames) if t >= 1.0
        ]
        assert min(levels) > DARK_LEVEL + 2, (clip.name, min(levels))


def test_what_is_a_dark_image():
    black = bytes(64 * 48 * 3)
    assert image_is_dark(black, 64, 48) is True
    rng = np.random.default_rng(0)
    near_black = rng.integers(0, 4, 64 * 48 * 3, dtype=np.uint8).tobytes()
    assert image_is_dark(near_black, 64, 48) is True  # a covered lens, a codec's noise
    lit = np.full((48, 64, 3), 60, np.uint8)
    lit[:2, :2] = 0
    assert image_is_dark(lit.tobytes(), 64, 48) is False
    hot = np.zeros((48, 64, 3), np.uint8)
    hot[10, 10] = 255  # one hot pixel does not light a black image
    assert image_is_dark(hot.tobytes(), 64, 48) is True
    # Alpha is not light; grey images have one channel.
    assert image_is_dark(bytes([0, 0, 0, 255]) * (64 * 48), 64, 48, "RGBA") is True
    assert image_is_dark(bytes([90]) * (64 * 48), 64, 48, "GRAY") is False
    assert image_is_dark(black, 64, 48, None) is True  # no format: RGB
    assert image_is_dark(black[:-1], 64, 48) is None
    assert image_is_dark(black, 64, 48, "YUV") is None
    assert image_is_dark(black, 64, 48, 3) is None  # a frame changed after it was built
    assert image_is_dark("x" * 9216, 64, 48) is None


def test_camera_presence_states_and_notices():
    cam = CameraPresence(timeout_s=5.0, dark_after_s=1.0)
    assert cam.state(0.0) == "none" and cam.next_notice_at(watching=True, seeing=True) is None
    cam.image(1.0, dark=True)  # one black frame (a camera opening) is not a dark camera
    assert cam.state(1.5) == "live"
    cam.image(2.0, dark=True)
    assert cam.state(2.0) == "dark"
    cam.image(2.2, dark=None)  # not known: the camera is still dark
    assert cam.state(2.2) == "dark"
    assert cam.next_notice_at(watching=True, seeing=True) == 6.0  # dark for 5 s
    assert cam.next_notice_at(watching=True, seeing=False) == 7.2  # no image for 5 s
    assert cam.due_notice(5.9, watching=True, seeing=True) is None
    assert cam.due_notice(6.0, watching=True, seeing=True) == "dark"
    assert cam.due_notice(6.5, watching=True, seeing=True) is None  # once
    assert cam.due_notice(7.2, watching=True, seeing=True) == "lost"
    assert cam.state(7.3) == "none" and cam.due_notice(30.0, watching=True, seeing=True) is None
    assert cam.next_notice_at(watching=True, seeing=True) is None
    cam.image(31.0, dark=False)  # back, and lit
    assert cam.state(31.0) == "live"
    assert cam.due_notice(36.0, watching=False, seeing=False) is None  # nothing waits
    assert cam.due_notice(36.0, watching=True, seeing=False) == "lost"
    cam.seen(40.0)  # a cue from the images: they arrive
    assert cam.state(41.0) == "live"
    cam.image(42.0, dark=True)
    cam.said_dark()  # the acknowledgement said it
    cam.image(46.5, dark=True)
    assert cam.due_notice(47.5, watching=True, seeing=True) is None
    with pytest.raises(ValueError):
        CameraPresence(timeout_s=0)


def test_the_acknowledgement_of_a_watch_on_a_dark_camera():
    wave, count, view, timer = (
        parse_interjection(t)
        for t in (
            "tell me when I wave",
            "count my squats",
            "tell me when the screen changes",
            "tell me when ten seconds have passed",
        )
    )
    assert acknowledge(count, camera="dark") == f"Okay, I'll count your squats. {CAMERA_DARK}"
    assert acknowledge(wave, camera="dark", variant=1).endswith(f"wave. {CAMERA_DARK}")
    # A change from black is seen; a timer needs no camera; a lit camera is not dark.
    assert acknowledge(view, camera="dark") == "Okay, I'll tell you when the view changes."
    assert CAMERA_DARK not in acknowledge(timer, camera="dark")
    assert acknowledge(count, camera="live") == "Okay, I'll count your squats."


@pytest.mark.parametrize(
    "text",
    [
        "Can you see me?",
        "Hi! Can you see me?",
        "can you see me now",
        "Are you able to see me right now?",
        "Do you see my camera?",
        "Could you see anything?",
        "Is my camera on?",
        "Is my video working?",
        "Am I on camera?",
        "Can you still see me?",
    ],
)
def test_questions_about_being_seen(text):
    assert asks_if_seen(text)


@pytest.mark.parametrize(
    "text",
    [
        "Do you see what I mean?",
        "Do you see anything wrong with my plan?",
        "Can you see me waving?",  # about a wave: a watch's or the model's
        "Tell me when you can see me.",
        "See you later!",
        "I can't see you.",
        "Can you see if the store is open?",
        "",
    ],
)
def test_other_utterances_are_not(text):
    assert not asks_if_seen(text)
