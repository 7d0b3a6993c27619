#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""Motion starting and stopping, timed (issue 16, part 2).

``calibration.check`` holds a squats clip's ``motion_onset`` to within
``MOTION_ONSET_WITHIN_S`` of the body starting to move and its ``motion_offset`` to
within ``MOTION_OFFSET_WITHIN_S`` of it stopping, with nothing in between and
nothing after; the codec clips (``test_cues_vp8``, ``test_cues_h264``) grade with it.
"""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from pipecat_tandem.bench.caller.calibration import (
    MOTION_OFFSET_WITHIN_S,
    MOTION_ONSET_WITHIN_S,
    Clip,
    check,
    motion_delays,
)
from pipecat_tandem.bench.caller.scenes import Room
from pipecat_tandem.fusion.cues import Cue
from pipecat_tandem.fusion.repetition import RepetitionCounter


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def _squats(n: int = 3) -> Clip:
    return Clip(f"squats_{n}_0", ((14.0, Room(0)),), "count", 3.0, 10.0, n=n)


def _cues(onset: float, offset: float, *extra: Cue, n: int = 3) -> list[Cue]:
    reps = [Cue("repetition", 4.0 + 2 * k, float(k + 1)) for k in range(n)]
    cues = [Cue("motion_onset", onset, 0.1), *reps, Cue("motion_offset", offset, float(n))]
    return sorted([*cues, *extra], key=lambda c: c.time)


def test_motion_cues_on_time_pass_and_their_delays_are_reported():
    clip = _squats()
    cues = _cues(3.6, 11.8)
    assert check(clip, cues) == []
    assert motion_delays(clip, cues) == pytest.approx((0.6, 1.8))


@pytest.mark.parametrize(
    ("onset", "offset", "problem"),
    [
        (3.0 + MOTION_ONSET_WITHIN_S + 0.2, 11.8, "onset came 1.2 s after"),
        (3.6, 10.0 + MOTION_OFFSET_WITHIN_S + 0.2, "offset came 2.7 s after"),
        (3.6, 8.0, "offset 2.0 s before the motion stopped"),
    ],
)
def test_a_late_onset_a_late_offset_or_a_stop_while_moving_is_wrong(onset, offset, problem):
    problems = check(_squats(), _cues(onset, offset))
    assert len(problems) == 1 and problem in problems[0], problems


def test_motion_starting_again_after_it_stopped_is_wrong():
    # "Tell me when I start moving" would be answered to a body standing still.
    problems = check(_squats(), _cues(3.6, 11.8, Cue("motion_onset", 12.0, 0.05)))
    assert problems and "more than once" in problems[0]


def test_no_motion_cues_at_all_is_wrong():
    clip = _squats()
    reps = [c for c in _cues(3.6, 11.8) if c.kind == "repetition"]
    assert motion_delays(clip, reps) == (None, None)
    assert any("no motion onset/offset" in p for p in check(clip, reps))


def test_one_moving_image_after_a_motion_offset_does_not_start_motion_again():
    # After squats a body settles: one image of it moves a few patches. The run of
    # images that started the squats' segment must not count towards the next one
    # (it did: a motion_onset right after the motion_offset, in 3-4 of 12 squats clips
    # at every sender size).
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, (192, 16)).astype(np.float32)
    counter = RepetitionCounter()
    cues: list[Cue] = []
    t = 0.0
    for k in range(100):
        t = k * 0.2
        img = base.copy()
        if 3.0 <= t < 8.0:  # a body moving: a third of the view changes every image
            img[40:104] += rng.normal(0, 0.5, (64, 16)).astype(np.float32)
        cues += counter.update(img, t)
        if cues and cues[-1].kind == "motion_offset":
            break
    kinds = [c.kind for c in cues]
    assert kinds[0] == "motion_onset" and kinds[-1] == "motion_offset", kinds
    settle = base.copy()
    settle[60:66] += 0.5  # six patches of the outline shift once
    after = counter.update(settle, t + 0.2) + counter.update(base, t + 0.4)
    assert [c.kind for c in after] == []
