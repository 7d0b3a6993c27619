#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""MicroTurnAssembler and the streaming resampler (pure, no event loop)."""

import numpy as np
import pytest

from pipecat_tandem.fusion import MicroTurnAssembler, StreamResampler, to_mono

N = 3200  # samples per 200 ms window at 16 kHz


def _tone(n, value):
    return np.full(n, value, dtype=np.int16)


def test_windows_are_aligned_to_the_clock():
    asm = MicroTurnAssembler()
    # 20 ms chunks starting at 0.33 s: the first window is [0.2, 0.4).
    for i in range(20):
        asm.add_audio(_tone(320, i + 1), arrival=0.33 + (i + 1) * 0.02, start=0.33 + i * 0.02)
    turns = asm.poll(0.33 + 0.4 + 0.1)
    assert [t.index for t in turns] == [1, 2]
    assert [t.start for t in turns] == pytest.approx([0.2, 0.4])
    assert all(t.audio.shape == (N,) and t.audio.dtype == np.int16 for t in turns)
    assert turns[0].audio_gap and turns[0].missing_samples == int(0.13 * 16000)
    assert not turns[1].audio_gap
    # Samples land at their exact offsets.
    assert turns[0].audio[int(0.13 * 16000)] == 1
    assert turns[1].audio[0] == 4  # 0.40 s falls in the 4th chunk (0.39..0.41)


def test_a_complete_window_goes_at_its_end_without_waiting_for_late_input():
    # Audio arriving as it is spoken (20 ms chunks, timed by arrival) completes
    # [0, 0.2) at 0.2 s: it is emitted then, not max_delay later; an image arriving
    # after that is timed after it, so nothing can be late for it.
    asm = MicroTurnAssembler(max_delay=0.1)
    asm.add_image("view", time=0.05)
    for i in range(9):
        asm.add_audio(_tone(320, 1), arrival=(i + 1) * 0.02)
    assert asm.poll(0.199) == []  # not complete yet
    asm.add_audio(_tone(320, 1), arrival=0.2)
    (turn,) = asm.poll(0.2)
    assert turn.index == 0 and not turn.audio_gap and [t for t, _ in turn.images] == [0.05]
    # A hole (a lost packet) makes the window wait for its max_delay, as before.
    asm.add_audio(_tone(320, 1), arrival=0.22)
    asm.add_audio(_tone(320, 1), arrival=0.40, start=0.38)
    assert asm.poll(0.40) == []
    assert [t.index for t in asm.poll(0.50)] == [1]


def test_without_early_emission_a_window_waits_its_max_delay():
    asm = MicroTurnAssembler(max_delay=0.1, early=False)
    asm.add_audio(_tone(N, 1), arrival=0.2, start=0.0)
    assert asm.poll(0.2) == [] and [t.index for t in asm.poll(0.3)] == [0]


def test_gap_is_filled_with_silence_and_flagged():
    asm = MicroTurnAssembler()
    asm.add_audio(_tone(1600, 7), arrival=0.1, start=0.0)  # only the first 100 ms
    (turn,) = asm.poll(0.3)
    assert turn.audio_gap and turn.missing_samples == 1600
    assert np.all(turn.audio[:1600] == 7) and np.all(turn.audio[1600:] == 0)
    # No input at all: windows keep coming, silent and flagged.
    turns = asm.poll(0.9)
    assert [t.index for t in turns] == [1, 2, 3]
    assert all(t.audio_gap and not t.audio.any() for t in turns)


def test_out_of_order_chunks_are_placed_by_timestamp():
    asm = MicroTurnAssembler()
    chunks = [(i * 0.02, _tone(320, i + 1)) for i in range(10)]
    for start, pcm in reversed(chunks):
        asm.add_audio(pcm, arrival=0.25, start=start)
    (turn,) = asm.poll(0.3)
    assert not turn.audio_gap
    expected = np.concatenate([pcm for _, pcm in chunks])
    assert np.array_equal(turn.audio, expected)


def test_late_input_is_dropped_and_counted():
    asm = MicroTurnAssembler()
    asm.add_audio(_tone(3200, 1), arrival=0.2, start=0.0)
    assert len(asm.poll(0.35)) == 1
    placed = asm.add_audio(_tone(320, 2), arrival=0.36, start=0.1)  # window 0 is gone
    assert placed == 0 and asm.stats.audio_samples_late == 320
    assert asm.add_image(b"x", time=0.05, now=0.36) == "late"
    assert asm.stats.images_late == 1
    # A chunk straddling the boundary keeps its on-time part.
    assert asm.add_audio(_tone(640, 3), arrival=0.4, start=0.19) == 480


def test_far_future_input_is_dropped_and_counted():
    asm = MicroTurnAssembler(max_ahead=2.0)
    assert asm.add_audio(_tone(320, 1), arrival=0.0, start=10.0) == 0
    assert asm.stats.audio_samples_future == 320
    assert asm.add_image(b"x", time=10.0, now=0.0) == "future"


def test_contiguous_stream_without_timestamps_and_resync():
    asm = MicroTurnAssembler()
    # Arrival jitter of +-10 ms does not break contiguity.
    t = 0.0
    for i in range(10):
        t += 0.02 + (0.01 if i % 2 else -0.01)
        asm.add_audio(_tone(320, 5), arrival=t)
    # Audio resumes 0.5 s late (lost packets): re-anchored at its arrival, gap stays silent.
    asm.add_audio(_tone(320, 6), arrival=0.72)
    assert asm.stats.audio_resyncs == 1
    turns = asm.poll(1.0)
    audio = np.concatenate([tu.audio for tu in turns])
    assert np.count_nonzero(audio == 5) == 3200
    assert np.count_nonzero(audio == 6) == 320
    assert audio[int(0.70 * 16000)] == 6


def test_images_rate_capped_and_kept_in_time_order():
    asm = MicroTurnAssembler(max_fps=5.0)
    for i in range(30):  # 30 fps, 1 s
        asm.add_image(i, time=i * (1 / 30), now=1.0)
    assert asm.stats.images_rate_capped == 25
    turns = asm.poll(1.5)
    assert [len(t.images) for t in turns] == [1, 1, 1, 1, 1, 0, 0]
    # The latest image of each slot is kept: the view as the window closes.
    assert [t.images[0][1] for t in turns[:5]] == [5, 11, 17, 23, 29]
    # Out of order: an older image of the same slot does not replace a newer one.
    asm2 = MicroTurnAssembler(max_fps=5.0)
    asm2.add_image("new", time=0.15, now=0.2)
    assert asm2.add_image("old", time=0.01, now=0.2) == "rate_capped"
    (turn,) = asm2.poll(0.4)
    assert [p for _, p in turn.images] == ["new"]


def test_backlog_is_skipped_not_burst():
    asm = MicroTurnAssembler(max_backlog=5)
    asm.add_audio(_tone(320, 1), arrival=0.02, start=0.0)
    turns = asm.poll(3600.0)
    assert len(turns) == 5
    assert asm.stats.windows_skipped > 17000


def test_flush_emits_pending_windows():
    asm = MicroTurnAssembler()
    asm.add_audio(_tone(320, 1), arrival=0.5, start=0.45)
    assert asm.poll(0.5) == []
    turns = asm.flush()
    assert [t.index for t in turns] == [2]


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.add_audio(np.zeros(10, np.float32), arrival=0.0),
        lambda a: a.add_audio(np.zeros((2, 5), np.int16), arrival=0.0),
        lambda a: a.add_audio(np.zeros(10, np.int16), arrival=float("nan")),
        lambda a: a.add_image(b"", time=float("inf")),
    ],
)
def test_malformed_input_raises_clearly(call):
    with pytest.raises(ValueError):
        call(MicroTurnAssembler())


def test_empty_audio_is_a_no_op_and_bad_config_rejected():
    asm = MicroTurnAssembler()
    assert asm.add_audio(np.zeros(0, np.int16), arrival=1.0) == 0
    assert asm.poll(5.0) == []
    with pytest.raises(ValueError):
        MicroTurnAssembler(window=0.00001)
    with pytest.raises(ValueError):
        MicroTurnAssembler(max_delay=0.05, jitter=0.1)


def test_resample_48k_stereo_to_16k_mono():
    rate = 48000
    t = np.arange(rate) / rate
    left = np.sin(2 * np.pi * 440 * t) * 8000
    right = np.sin(2 * np.pi * 440 * t) * 4000
    stereo = np.stack([left, right], axis=1).astype(np.int16)
    rs = StreamResampler(in_rate=rate)
    out = []
    for i in range(0, rate, 960):  # 20 ms transport frames
        out.append(rs.process(to_mono(stereo[i : i + 960].tobytes(), num_channels=2)))
    y = np.concatenate(out)
    assert y.dtype == np.int16 and abs(y.size - 16000) <= 16  # held-back FIR tail only
    ref = np.sin(2 * np.pi * 440 * np.arange(y.size) / 16000) * 6000
    assert np.sqrt(np.mean((y[64:] - ref[64:]) ** 2)) < 30  # seamless across chunks


def test_resample_removes_content_above_new_nyquist():
    rate = 48000
    t = np.arange(rate) / rate
    x = (np.sin(2 * np.pi * 12000 * t) * 10000).astype(np.float32)  # aliases at 16 kHz
    y = StreamResampler(in_rate=rate).process(x)
    assert np.sqrt(np.mean(y[64:].astype(np.float64) ** 2)) < 300


def test_to_mono_rejects_bad_layout():
    with pytest.raises(ValueError):
        to_mono(b"\x00\x01\x02", num_channels=1)
    with pytest.raises(ValueError):
        to_mono(b"\x00" * 6, num_channels=2)
    with pytest.raises(ValueError):
        to_mono(b"\x00" * 4, num_channels=0)
