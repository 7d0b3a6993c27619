#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""Frame-level tests of MicroTurnIngestProcessor with pipecat's run_test."""

import numpy as np
from pipecat.frames.frames import (
    ErrorFrame,
    InputAudioRawFrame,
    InputImageRawFrame,
    UserImageRawFrame,
)
from pipecat.tests.utils import run_test

from pipecat_tandem.clock import ManualClock
from pipecat_tandem.frames import MicroTurnFrame
from pipecat_tandem.processors.micro_turn_ingest_processor import MicroTurnIngestProcessor


def _audio(t, *, n=320, rate=16000, channels=1, value=1000):
    frame = InputAudioRawFrame(
        audio=np.full(n * channels, value, np.int16).tobytes(),
        sample_rate=rate,
        num_channels=channels,
    )
    frame.metadata["session_time"] = t
    return frame


def _image(t, w=64, h=48, fmt="RGB", channels=3, cls=UserImageRawFrame, nbytes=None):
    data = np.random.default_rng(int(t * 100)).integers(0, 256, w * h * channels, dtype=np.uint8)
    raw = data.tobytes() if nbytes is None else data.tobytes()[:nbytes]
    frame = cls(image=raw, size=(w, h), format=fmt)
    frame.metadata["session_time"] = t
    return frame


def _proc(**kw):
    return MicroTurnIngestProcessor(clock=ManualClock(), tick=False, **kw)


async def test_passes_originals_and_emits_aligned_micro_turns():
    frames = [_audio(i * 0.02) for i in range(20)] + [_image(0.05), _image(0.25)]
    down, up = await run_test(
        _proc(),
        frames_to_send=frames,
        expected_down_frames=[InputAudioRawFrame] * 20
        + [UserImageRawFrame] * 2
        + [MicroTurnFrame] * 2,
    )
    turns = [f for f in down if isinstance(f, MicroTurnFrame)]
    assert [t.index for t in turns] == [0, 1]
    assert all(len(t.audio) == 3200 * 2 and t.sample_rate == 16000 for t in turns)
    assert not turns[0].audio_gap and not turns[1].audio_gap
    assert [len(t.images) for t in turns] == [1, 1]
    t0, w, h, data = turns[0].images[0]
    assert (t0, w, h, len(data)) == (0.05, 64, 48, 64 * 48 * 3)
    assert down[0].audio == frames[0].audio  # originals untouched


async def test_resamples_48k_stereo_and_flags_gaps():
    frames = [_audio(i * 0.02, n=960, rate=48000, channels=2) for i in range(5)]
    down, _ = await run_test(
        _proc(),
        frames_to_send=frames,
        expected_down_frames=[InputAudioRawFrame] * 5 + [MicroTurnFrame],
    )
    (turn,) = [f for f in down if isinstance(f, MicroTurnFrame)]
    pcm = np.frombuffer(turn.audio, np.int16)
    assert pcm.size == 3200 and turn.audio_gap  # only 100 ms of the window had audio
    assert abs(int(np.count_nonzero(pcm)) - 1600) <= 16
    assert np.all(np.abs(pcm[100:1500].astype(int) - 1000) <= 2)


async def test_bad_input_gives_error_frames_and_the_stream_goes_on():
    frames = [
        _audio(0.0, rate=4000),  # unsupported rate
        _audio(0.02, channels=9),  # absurd channel count
        InputAudioRawFrame(audio=b"\x00\x01\x02", sample_rate=16000, num_channels=1),
        InputAudioRawFrame(audio=b"", sample_rate=16000, num_channels=1),
        _image(0.05, nbytes=100),  # bad byte length
        _image(0.06, w=10, h=10),  # too small
        _image(0.07, fmt="YUV420"),  # unknown format
        InputImageRawFrame(image=b"", size=(0, 0), format="RGB"),  # empty
        _audio(0.1),  # a good one after all that
    ]
    down, up = await run_test(
        _proc(),
        frames_to_send=frames,
        expected_down_frames=[InputAudioRawFrame] * 4
        + [UserImageRawFrame] * 3
        + [InputImageRawFrame, InputAudioRawFrame, MicroTurnFrame],
        expected_up_frames=[ErrorFrame] * 8,
    )
    messages = " | ".join(f.error for f in up)
    for needle in (
        "4000 Hz",
        "channel count 9",
        "whole number",
        "empty audio",
        "needs",
        "smaller",
        "empty image",
        "YUV420",
    ):
        assert needle in messages
    (turn,) = [f for f in down if isinstance(f, MicroTurnFrame)]
    assert np.frombuffer(turn.audio, np.int16)[1600] == 1000


async def test_repeated_errors_are_rate_limited_but_counted():
    proc = _proc(error_interval=5.0)
    frames = [_audio(i * 0.02, rate=4000) for i in range(10)]
    await run_test(
        proc,
        frames_to_send=frames,
        expected_down_frames=[InputAudioRawFrame] * 10,
        expected_up_frames=[ErrorFrame],
    )
    assert proc.error_counts == {"audio_rate": 10}


async def test_non_rgb_converted_and_8k_downscaled():
    w, h = 7680, 4320
    big = UserImageRawFrame(image=bytes(w * h * 3), size=(w, h), format="RGB")
    big.metadata["session_time"] = 0.01
    rgba = _image(0.25, fmt="RGBA", channels=4)
    gray = _image(0.45, fmt="L", channels=1)
    down, _ = await run_test(
        _proc(),
        frames_to_send=[big, rgba, gray],
        expected_down_frames=[UserImageRawFrame] * 3 + [MicroTurnFrame] * 3,
    )
    turns = [f for f in down if isinstance(f, MicroTurnFrame)]
    ((_, bw, bh, bdata),) = turns[0].images
    assert bw * bh <= 1920 * 1080 and abs(bw / bh - 16 / 9) < 0.01 and len(bdata) == bw * bh * 3
    ((_, rw, rh, rdata),) = turns[1].images
    src = np.frombuffer(rgba.image, np.uint8).reshape(48, 64, 4)
    assert np.array_equal(np.frombuffer(rdata, np.uint8).reshape(48, 64, 3), src[..., :3])
    ((_, gw, gh, gdata),) = turns[2].images
    g = np.frombuffer(gdata, np.uint8).reshape(48, 64, 3)
    assert np.array_equal(g[..., 0], g[..., 2])


async def test_timer_keeps_micro_turns_coming_while_input_stalls():
    from pipecat.tests.utils import SleepFrame

    from pipecat_tandem.clock import LoopClock

    clock = LoopClock()
    proc = MicroTurnIngestProcessor(clock=clock, tick=True)
    frame = InputAudioRawFrame(audio=bytes(640), sample_rate=16000, num_channels=1)
    down, _ = await run_test(
        proc, frames_to_send=[frame, SleepFrame(sleep=0.8)], expected_down_frames=None
    )
    turns = [f for f in down if isinstance(f, MicroTurnFrame)]
    # Input stopped after 20 ms; windows kept closing on the timer, silent and flagged.
    assert len(turns) >= 2
    assert [t.index for t in turns] == list(range(turns[0].index, turns[0].index + len(turns)))
    assert all(t.audio_gap for t in turns[1:])
