#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""A camera that sends black frames, starts late, stops, or changes size (issue 16's bad input).

What a person on a video call would expect of an attentive assistant:

* black frames (a muted camera) are no cue, and a watch on the user while the
  camera is dark is set with an honest "your camera looks dark right now, so I
  can't see you yet" (a watch on the view is not: a change from black is seen);
* before the camera's first image a watch is refused ("I can't see a camera right
  now."), after it the same watch is set and fires;
* a camera that stops refuses new watches, and a watch that was waiting on it is
  told once ("I've lost your camera, so I can't watch for that right now.") and
  fires if the camera comes back; one that goes dark while a watch on the user
  waits is told once too;
* a camera that drops to 320×240 and back mid-call is no view change, and a wave
  after it is still seen.

Real pipecat frames through the real ingest, fusion and awareness processors (the
tandem pipeline on virtual time, fake models), camera images drawn by the caller
benchmark's scenes through its webcam sensor model. The pure parts (what is a dark
image, when the camera counts as gone, the words) are ``tests/test_camera_policy.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pipecat.frames.frames import Frame, InputAudioRawFrame, InputImageRawFrame
from threadpoolctl import threadpool_limits

from pipecat_tandem.bench.caller.camera import Sensor
from pipecat_tandem.bench.caller.scenes import Person, Room, Wave
from pipecat_tandem.frames import CueFrame
from pipecat_tandem.pipelines.tandem import default_perception
from pipecat_tandem.policy.acknowledgements import (
    CAMERA_DARK,
    CAMERA_LOST,
    CAMERA_WENT_DARK,
    NO_CAMERA,
)
from pipecat_tandem.processors.micro_turn_ingest_processor import MicroTurnIngestProcessor
from tests.support.fake_llm import FakeReply
from tests.support.scenario import background_responder, run_scenario, say
from tests.support.virtual_time import run_virtual
from tests.test_awareness_ack import Model

FPS = 5.0  # what the call's transport sends (TransportParams: camera at 5 fps)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def _black(t: float, size: tuple[int, int]) -> np.ndarray:
    return np.zeros((size[1], size[0], 3), np.uint8)


def _images(draw, start: float, end: float, size=(640, 480)) -> list[tuple[float, Frame]]:
    """Camera images ``draw(t - start, size)`` at 5 fps from ``start`` to ``end``."""
    out: list[tuple[float, Frame]] = []
    for k in range(int(round((end - start) * FPS))):
        t = start + k / FPS
        rgb = draw(t - start, size)
        out.append((t, InputImageRawFrame(image=rgb.tobytes(), size=size, format="RGB")))
    return out


def _webcam(scene, seed: int = 0):
    """``scene`` seen through the webcam sensor model (auto-exposure, noise, flicker).

    The cue detectors are calibrated on a webcam's images, not on noise-free
    drawings (in which a 320×240 room's corner object alone can start motion).
    """
    sensor = Sensor(seed=seed)
    return lambda t, size: sensor.expose(scene.render(t, size), t)


def _audio(start: float, end: float) -> list[tuple[float, Frame]]:
    """A quiet microphone: 100 ms of silence at 16 kHz every 100 ms."""
    n = int(round((end - start) * 10))
    return [
        (start + k / 10, InputAudioRawFrame(audio=bytes(3200), sample_rate=16000, num_channels=1))
        for k in range(n)
    ]


def _call(script: list[tuple[float, Frame]], until: float) -> Any:
    """The tandem pipeline with real perception (ingest, fusion, cues) on virtual time."""
    r = run_virtual(
        run_scenario(
            script,
            interaction=Model(),
            background=background_responder(lambda task: FakeReply(text="x")),
            perception=default_perception,
            until=until,
        )
    )
    # Every image sent went through the cues (none dropped: nothing passes unseen).
    (ingest,) = [p for p in r.tandem.pipeline.processors if isinstance(p, MicroTurnIngestProcessor)]
    sent = sum(isinstance(f, InputImageRawFrame) for _, f in script)
    assert ingest.stats.images == sent and ingest.stats.images_rate_capped == 0, ingest.stats
    assert ingest.stats.windows_emitted >= int(until / 0.2) - 2, ingest.stats
    return r


def _spoken(r) -> list[tuple[float, str]]:
    return [(u.start, u.text) for u in r.output.spoken]


def _cues(r) -> list[tuple[float, str]]:
    return [(e["t"], e["cue"]) for e in r.of_kind("cue")]


# Black frames


def test_twenty_seconds_of_black_frames_fire_no_cue():
    for size in ((640, 480), (320, 240)):
        r = _call(_audio(0.0, 21.0) + _images(_black, 0.5, 20.5, size), until=21.0)
        assert _cues(r) == [], size


def _unmuted(seed: int) -> list[tuple[float, Frame]]:
    """A muted camera's black frames until 12 s, then a person standing still."""
    person = Person(Room(seed), seed=seed + 3)
    return (
        _audio(0.0, 20.0) + _images(_black, 0.0, 12.0) + _images(_webcam(person, seed), 12.0, 20.0)
    )


@pytest.mark.parametrize("seed", [0, 2, 4])
def test_a_camera_unmuted_after_black_frames_is_one_view_change_and_no_motion(seed):
    # Fed to the motion counter, the black frames were its warm-up and habituation,
    # and the room after them new in every patch: motion started 1-2 s after the
    # camera came back (5 of 6 seeds), with no one moving.
    cues = _cues(_call(_unmuted(seed), until=20.0))
    assert [kind for _, kind in cues] == ["visual_change"], cues
    assert 12.0 <= cues[0][0] <= 12.5


def test_a_watch_on_the_user_with_a_black_camera_says_it_looks_dark():
    # The wave watch is set with the honest note, the view watch plainly (a change
    # from black is seen); the picture coming back is said once, after it.
    script = (
        _unmuted(0) + say(3.0, "tell me when I wave") + say(6.0, "tell me when the screen changes")
    )
    r = _call(script, until=20.0)
    spoken = _spoken(r)
    assert [text for _, text in spoken] == [
        f"Okay, I'll tell you when I see you wave. {CAMERA_DARK}",
        "Sure, I'll tell you when the view changes.",
        "The view just changed.",
    ], spoken
    assert spoken[2][0] >= 12.0
    assert [e["notice"] for e in r.of_kind("camera_notice")] == ["dark"]  # with the ack only


# A camera that starts late


def test_a_camera_that_starts_late_refuses_a_watch_then_serves_one():
    # Audio from the start, the first image at 5 s; the person waves from 12 to 16 s.
    person = Person(Room(4), wave=Wave(12.0 - 5.0, seconds=4.0, hz=1.6), seed=7)
    script = (
        _audio(0.0, 20.0)
        + _images(_webcam(person, 4), 5.0, 20.0)
        + say(1.5, "tell me when I wave")
        + say(8.0, "tell me when I wave")
    )
    r = _call(script, until=20.0)
    spoken = _spoken(r)
    assert [text for _, text in spoken] == [
        NO_CAMERA,
        "Okay, I'll tell you when I see you wave.",
        "I see you waving!",
    ], spoken
    assert 12.0 <= spoken[2][0] <= 16.5
    assert len(r.of_kind("interjection_refused")) == 1 and len(r.of_kind("delegated")) == 1


# A camera that stops


def _small(start: float, end: float, level: int = 128) -> list[tuple[float, Frame]]:
    """A small camera (enough for the awareness processor), two images a second."""
    image = bytes([level]) * (4 * 4 * 3)
    return [
        (start + k * 0.5, InputImageRawFrame(image=image, size=(4, 4), format="RGB"))
        for k in range(int(round((end - start) / 0.5)))
    ]


def _run(script, until):
    """The tandem pipeline without perception: cues are scripted."""
    return run_virtual(
        run_scenario(
            script,
            interaction=Model(),
            background=background_responder(lambda task: FakeReply(text="x")),
            until=until,
        )
    )


def test_a_new_watch_after_the_camera_stopped_is_refused():
    # Images until 2.5 s; camera_timeout_s (5 s) later a watch cannot be served.
    r = _run(_small(0.5, 3.0) + say(9.0, "count my squats"), 13)
    assert [text for _, text in _spoken(r)] == [NO_CAMERA]
    assert r.of_kind("interjection_refused")[0]["reason"] == "no camera"
    assert not r.of_kind("delegated")


@pytest.mark.parametrize(
    ("request_", "gap", "notice", "cue", "said"),
    [
        # The camera's last image at 3.5 s, back at 12 s: told at 8.5 s.
        ("tell me when I wave", [], "lost", "periodic_motion", "I see you waving!"),
        # Muted (black frames) from 4 s to 12 s: told at 9 s.
        ("count my squats", _small(4.0, 12.0, level=0), "dark", "repetition", "One."),
    ],
)
def test_a_waiting_watch_is_told_once_that_the_camera_went_and_goes_on(
    request_, gap, notice, cue, said
):
    # The watch is set at 2 s; the user is told once, and the cue after the
    # camera came back (15 s) is said.
    script = (
        _small(0.5, 4.0)
        + say(1.0, request_)
        + gap
        + _small(12.0, 20.0)
        + [(15.0, CueFrame(kind=cue, time=15.0, value=1.0))]
    )
    r = _run(script, until=20)
    spoken = _spoken(r)
    told, due = {"lost": (CAMERA_LOST, 8.5), "dark": (CAMERA_WENT_DARK, 9.0)}[notice]
    assert [text for _, text in spoken][1:] == [told, said], spoken
    assert due <= spoken[1][0] <= due + 0.5
    assert spoken[2][0] >= 15.0
    assert [e["notice"] for e in r.of_kind("camera_notice")] == [notice]


def test_the_camera_lost_again_is_told_again_and_no_watch_no_notice():
    script = _small(0.5, 4.0) + say(1.0, "tell me when the screen changes") + _small(10.0, 12.0)
    r = _run(script, until=20)
    lost = [t for t, text in _spoken(r) if text == CAMERA_LOST]
    assert len(lost) == 2 and 8.5 <= lost[0] <= 9.0 and 16.5 <= lost[1] <= 17.0, _spoken(r)
    # A timer needs no camera: its loss is not news.
    r = _run(_small(0.5, 4.0) + say(1.0, "tell me when ten seconds have passed"), until=14)
    assert CAMERA_LOST not in [text for _, text in _spoken(r)]


# A camera that changes size


def test_a_camera_that_drops_to_320x240_and_back_is_no_change_and_a_wave_is_seen():
    # The same view at 640×480, then 320×240 (a browser under load), then 640×480
    # again; the person waves from 15 to 19 s.
    person = Person(Room(2), wave=Wave(15.0, seconds=4.0, hz=1.6), seed=5)
    camera = _webcam(person, 2)

    def draw(offset):
        return lambda t, size: camera(t + offset, size)

    script = (
        _audio(0.0, 22.0)
        + _images(draw(0.0), 0.0, 5.0, (640, 480))
        + _images(draw(5.0), 5.0, 10.0, (320, 240))
        + _images(draw(10.0), 10.0, 22.0, (640, 480))
    )
    cues = [(round(t, 1), kind) for t, kind in _cues(_call(script, until=22.0))]
    assert [c for c in cues if c[1] == "visual_change"] == [], cues
    assert [c for c in cues if c[0] < 15.0] == [], cues
    assert [c for c in cues if c[1] == "periodic_motion" and 15.0 <= c[0] <= 19.5], cues
