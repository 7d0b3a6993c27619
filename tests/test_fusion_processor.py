#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""Frame-level tests of EncoderFreeFusionProcessor (fused format, cues, bad input)."""

import numpy as np
import pytest
from pipecat.frames.frames import ErrorFrame, TextFrame
from pipecat.tests.utils import run_test
from threadpoolctl import threadpool_limits

from pipecat_tandem.frames import CueFrame, FusedMicroTurnFrame, MicroTurnFrame
from pipecat_tandem.fusion import CueDetector, RepetitionCounter
from pipecat_tandem.processors.encoder_free_fusion_processor import EncoderFreeFusionProcessor


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # Small matrices: OpenBLAS threads on 2 shared cores are ~10x slower (docs/bench/fusion.md).
    with threadpool_limits(limits=1):
        yield


def _scene(seed, w=320, h=240, noise=4.0, frame_seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(40, 200, 3) + np.stack(
        [
            np.sin(xx / rng.uniform(8, 30)) * 40,
            np.cos(yy / rng.uniform(8, 30)) * 40,
            np.sin((xx + yy) / rng.uniform(8, 30)) * 40,
        ],
        axis=-1,
    )
    noisy = base + np.random.default_rng(frame_seed).normal(0, noise, base.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _turn(i, image=None, audio=None):
    pcm = np.zeros(3200, np.int16) if audio is None else audio
    images = []
    if image is not None:
        h, w, _ = image.shape
        images = [(i * 0.2 + 0.01, w, h, image.tobytes())]
    return MicroTurnFrame(index=i, start=i * 0.2, duration=0.2, audio=pcm.tobytes(), images=images)


async def test_fused_frame_format():
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(3200) * 3000).astype(np.int16)
    frames = [_turn(0, _scene(1), audio), _turn(1, _scene(1, frame_seed=1))]
    proc = EncoderFreeFusionProcessor(cues=CueDetector(repetition=RepetitionCounter()))
    down, _ = await run_test(
        proc, frames_to_send=frames + [TextFrame("hi")], expected_down_frames=None
    )
    fused = [f for f in down if isinstance(f, FusedMicroTurnFrame)]
    assert len(fused) == 2 and isinstance(down[-1], TextFrame)
    f0 = fused[0]
    assert f0.version == "tandem.fused/2" and f0.index == 0 and f0.start == 0.0
    assert f0.dmel.shape == (20, 80) and f0.dmel.dtype == np.uint8 and f0.dmel.max() < f0.n_levels
    assert np.allclose(f0.hop_times, np.arange(20) * 0.01)
    assert f0.hop == 0.01 and f0.duration == 0.2
    assert len(f0.patches) == 1 and f0.patches[0].shape == (48, 192)
    assert f0.patches[0].dtype == np.float32 and f0.grids == [(6, 8)]
    assert f0.image_times == [0.01]
    assert np.allclose(fused[1].hop_times, 0.2 + np.arange(20) * 0.01)
    assert not any(isinstance(f, MicroTurnFrame) for f in down)  # consumed by default


async def _fused_and_cues(proc, frames):
    down, _ = await run_test(proc, frames_to_send=frames, expected_down_frames=None)
    fused = [f for f in down if isinstance(f, FusedMicroTurnFrame)]
    cues = [(f.kind, f.time, f.value) for f in down if isinstance(f, CueFrame)]
    return fused, cues


async def test_a_camera_taller_than_480_px_is_embedded_at_480_and_the_cues_do_not_change():
    # A 1280x720 camera: a scene cut at micro-turn 6. The stream's patches are of the
    # frame at 480 px high (the cues' own view), so the cues are exactly those of the
    # full-size stream, and the patch work is that of a 640x480 camera.
    frames = [_turn(i, _scene(1 if i < 6 else 2, 1280, 720, frame_seed=i)) for i in range(10)]
    small, cues = await _fused_and_cues(EncoderFreeFusionProcessor(), frames)
    full, full_cues = await _fused_and_cues(EncoderFreeFusionProcessor(max_height=None), frames)
    assert small[0].grids == [(12, 21)] and small[0].patches[0].shape == (12 * 21, 192)
    assert full[0].grids == [(18, 32)] and full[0].patches[0].shape == (18 * 32, 192)
    assert cues == full_cues and [k for k, _, _ in cues] == ["visual_change"]
    # A lower height of its own: the stream shrinks further, the cues stay at 480.
    lower, lower_cues = await _fused_and_cues(EncoderFreeFusionProcessor(max_height=360), frames)
    assert lower[0].grids == [(9, 16)] and lower[0].patches[0].shape == (9 * 16, 192)
    assert lower_cues == cues
    # A camera at or under the height is embedded as it came.
    vga, _ = await _fused_and_cues(EncoderFreeFusionProcessor(), [_turn(0, _scene(1, 640, 480))])
    assert vga[0].grids == [(12, 16)]


@pytest.mark.parametrize("bad", [0, -480, True])
def test_a_max_height_that_cannot_be_is_refused(bad):
    with pytest.raises(ValueError, match="max_height"):
        EncoderFreeFusionProcessor(max_height=bad)


async def test_scene_change_cue_within_two_micro_turns():
    change_at = 10  # micro-turn index where the scene cuts
    frames = [_turn(i, _scene(1 if i < change_at else 2, frame_seed=i)) for i in range(16)]
    down, _ = await run_test(
        EncoderFreeFusionProcessor(), frames_to_send=frames, expected_down_frames=None
    )
    changes = [f for f in down if isinstance(f, CueFrame) and f.kind == "visual_change"]
    assert len(changes) == 1
    assert change_at * 0.2 <= changes[0].time <= (change_at + 2) * 0.2
    assert changes[0].value > 0.5


async def test_speech_onset_and_offset_cues():
    rng = np.random.default_rng(1)
    quiet = [(rng.standard_normal(3200) * 30).astype(np.int16) for _ in range(5)]
    loud = [(rng.standard_normal(3200) * 5000).astype(np.int16) for _ in range(5)]
    tail = [(rng.standard_normal(3200) * 30).astype(np.int16) for _ in range(5)]
    frames = [_turn(i, audio=a) for i, a in enumerate(quiet + loud + tail)]
    down, _ = await run_test(
        EncoderFreeFusionProcessor(), frames_to_send=frames, expected_down_frames=None
    )
    cues = [(f.kind, f.time) for f in down if isinstance(f, CueFrame)]
    assert [k for k, _ in cues] == ["speech_onset", "speech_offset"]
    # The causal 25 ms window lets loud audio reach 15 ms past its end.
    assert abs(cues[0][1] - 1.0) <= 0.011 and 2.0 <= cues[1][1] <= 2.03


async def test_malformed_micro_turns_error_and_stream_goes_on():
    bad_rate = _turn(0)
    bad_rate.sample_rate = 8000
    bad_image = _turn(1)
    bad_image.images = [(0.2, 64, 48, b"\x00" * 10)]
    odd = _turn(2)
    odd.audio = b"\x00" * 7
    down, up = await run_test(
        EncoderFreeFusionProcessor(),
        frames_to_send=[bad_rate, bad_image, odd, _turn(3)],
        expected_down_frames=[FusedMicroTurnFrame],
        expected_up_frames=[ErrorFrame] * 3,
    )
    assert down[0].index == 3
    assert "8000 Hz" in up[0].error and "not 64x48 RGB" in up[1].error and "odd" in up[2].error


async def test_a_micro_turn_spoiled_after_construction_does_not_stop_fusion():
    # Regression (issue 13): a micro-turn whose index was not a number (frames are
    # mutable dataclasses) left it as the stream's last index, and every later valid
    # micro-turn failed on it: nothing was fused for the rest of the call.
    bad_rate = _turn(0)
    bad_rate.sample_rate = -16000
    bad_index = _turn(1)
    bad_index.index = "x"  # type: ignore[assignment]
    bad_images = _turn(2)
    bad_images.images = ["junk"]  # type: ignore[list-item]
    down, up = await run_test(
        EncoderFreeFusionProcessor(),
        frames_to_send=[bad_rate, bad_index, bad_images, _turn(3), _turn(4)],
        expected_down_frames=[FusedMicroTurnFrame] * 2,
        expected_up_frames=[ErrorFrame] * 3,
    )
    assert [f.index for f in down] == [3, 4]
    assert "-16000 Hz" in up[0].error and "'x'" in up[1].error
