#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""Motion starting and stopping (issue 16, part 2)."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from pipecat_tandem.fusion.cues import Cue
from pipecat_tandem.fusion.repetition import RepetitionCounter


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


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
