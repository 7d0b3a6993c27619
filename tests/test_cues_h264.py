#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""Cues on video as it arrives through WebRTC's other codec: aiortc's H.264 (issue 16).

The clips of ``test_cues_vp8``'s 640×480 test, filmed through the same webcam
sensor model, sent through libx264 at the settings of aiortc's ``H264Encoder``,
aiortc's RTP packetization and depacketization and aiortc's ``H264Decoder``,
sampled at the server's 5 fps and graded by the same ``calibration.check``. The
grid (seeds, sender sizes) is ``benchmarks/bench_cues_vp8.py --codec h264``.
"""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from pipecat_tandem.bench.caller.calibration import check, clips, run_clip
from tests.test_cues_vp8 import FAST_CLIPS, _clip  # the same clips

pytest.importorskip("aiortc")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def test_every_frame_comes_back_from_h264_at_its_send_time():
    import av

    from pipecat_tandem.bench.caller.camera import Sensor, film
    from pipecat_tandem.bench.caller.codec_loop import through

    if "libx264" not in av.codecs_available:
        pytest.skip("this PyAV has no libx264 encoder")
    room = clips(0)[0].shots[0][1]
    frames = list(film([(1.0, room)], fps=15.0, size=(640, 480), sensor=Sensor(seed=1)))
    decoded = list(through(iter(frames), "h264", bitrate=500_000, server_fps=1000.0))
    assert [t for t, _ in decoded] == [t for t, _ in frames]
    assert all(rgb.shape == (480, 640, 3) for _, rgb in decoded)
    kept = list(through(iter(frames), "h264", bitrate=500_000))  # the server's 5 fps
    assert [round(t, 2) for t, _ in kept] == [0.0, 0.2, 0.4, 0.6, 0.8]


@pytest.mark.parametrize(("seed", "prefix"), FAST_CLIPS)
def test_cues_are_right_on_decoded_h264_at_640x480(seed, prefix):
    clip = _clip(seed, prefix)
    assert check(clip, run_clip(clip, codec="h264")) == []
