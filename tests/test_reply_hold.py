"""A reply does not start over a caller who has just started talking again.

The pure decision (:mod:`pipecat_tandem.turns.reply_hold`) without a loop, then the
gate in a real pipecat pipeline on virtual time.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from pipecat.frames.frames import (
    BotStoppedSpeakingFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.processors.reply_hold_gate import ReplyHoldGate, audio_seconds
from pipecat_tandem.turns.reply_hold import CallerSound, ReplyHold
from tests.support.virtual_time import run_virtual

RATE = 16000


def pcm(rms: float, seconds: float = 0.02, seed: int = 0) -> bytes:
    """Noise-like 16 kHz int16 audio with the given RMS."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(RATE * seconds)) * rms
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def feed(sound: CallerSound, rms: float, start: float, seconds: float) -> float:
    """Feed 20 ms frames from ``start`` for ``seconds``; returns the time after them."""
    t = start
    for i in range(round(seconds / 0.02)):
        sound.feed(pcm(rms, seed=i), now=t)
        t = round(t + 0.02, 6)
    return t


# -- CallerSound ----------------------------------------------------------------


def test_a_voice_sounds_and_silence_does_not():
    sound = CallerSound()
    t = feed(sound, 0.0, 0.0, 0.5)
    assert not sound.sounding(t) and sound.last_sound == -math.inf
    t = feed(sound, 3000.0, t, 0.1)
    assert sound.sounding(t - 0.02)
    t = feed(sound, 0.0, t, 0.3)
    assert not sound.sounding(t) and sound.quiet_for(t) >= 0.25


def test_a_steady_hum_is_not_sound_but_a_voice_over_it_is():
    sound = CallerSound()
    t = feed(sound, 400.0, 0.0, 3.0)  # a fan at -38 dBFS, for 3 s
    assert not sound.sounding(t), "a steady hum became 'sound'"
    t = feed(sound, 4000.0, t, 0.06)
    assert sound.sounding(t - 0.02)


def test_a_quiet_breath_after_a_loud_voice_is_not_sound():
    sound = CallerSound()
    t = feed(sound, 0.0, 0.0, 0.2)
    t = feed(sound, 8000.0, t, 0.5)
    t = feed(sound, 200.0, t, 0.3)  # -32 dB under the voice
    assert not sound.sounding(t)


def test_caller_sound_refuses_nonsense():
    with pytest.raises(ValueError):
        CallerSound(relative_level=0)
    with pytest.raises(ValueError):
        CallerSound(noise_ratio=0.5)
    with pytest.raises(TypeError):
        CallerSound().feed("loud", now=0.0)  # type: ignore[arg-type]
    CallerSound().feed(b"", now=0.0)  # empty and odd frames are fine
    CallerSound().feed(b"\x01", now=0.0)


# -- ReplyHold ------------------------------------------------------------------


def test_a_reply_to_a_silent_caller_is_never_held():
    hold = ReplyHold(CallerSound())
    feed(hold.sound, 0.0, 0.0, 1.0)
    assert hold.on_bot_audio(1.0) is False and hold.holds == 0


def test_a_reply_over_a_sounding_caller_waits_until_they_are_quiet():
    hold = ReplyHold(CallerSound(), quiet_s=0.25)
    t = feed(hold.sound, 3000.0, 0.0, 0.2)
    assert hold.on_bot_audio(t) is True and hold.holding
    assert hold.on_bot_audio(t + 0.02) is True  # the rest of it waits too
    t = feed(hold.sound, 0.0, t, 0.2)
    assert not hold.should_release(t)
    assert hold.next_check_in(t) == pytest.approx(0.03)  # last sound at 0.18 s
    assert hold.should_release(t + 0.1)
    assert not hold.holding and hold.holds == 1


def test_audio_past_a_replys_start_is_never_held():
    hold = ReplyHold(CallerSound(), yield_s=0.5)
    assert hold.on_bot_audio(0.0) is True and hold.pacing  # the start is paced
    assert hold.audio_wait(0.0) == 0.0
    hold.sent(0.5)
    assert not hold.pacing and hold.on_bot_audio(0.1) is False
    t = feed(hold.sound, 3000.0, 0.1, 0.3)
    assert hold.on_bot_audio(t) is False and hold.audio_wait(t) == 0.0
    hold.bot_stopped()
    assert hold.on_bot_audio(t) is True and hold.holding  # the next reply, over the caller


def test_without_a_yield_window_a_released_reply_is_never_held():
    hold = ReplyHold(CallerSound())
    assert hold.on_bot_audio(0.0) is False
    t = feed(hold.sound, 3000.0, 0.0, 0.3)
    assert hold.on_bot_audio(t) is False and hold.yields == 0


def test_a_replys_start_goes_out_at_most_lead_s_ahead_of_the_clock():
    hold = ReplyHold(CallerSound(), yield_s=1.0, lead_s=0.1)
    assert hold.on_bot_audio(0.0)
    sent = 0.0
    while hold.audio_wait(0.0) == 0.0:
        hold.sent(0.02)
        sent += 0.02
    assert sent == pytest.approx(0.12)  # sent while at most 0.1 s ahead
    assert hold.audio_wait(0.0) == pytest.approx(0.02)
    assert hold.audio_wait(0.05) == 0.0  # the clock caught up
    for _ in range(45):
        hold.sent(0.02)
    assert not hold.pacing  # one second paced: the rest goes out as it comes


def test_a_caller_going_on_pauses_the_start_of_a_reply_and_quiet_resumes_it():
    hold = ReplyHold(CallerSound(), quiet_s=0.25, yield_s=1.0)
    t = feed(hold.sound, 3000.0, 0.0, 0.5)
    t = feed(hold.sound, 0.0, t, 0.7)  # a long pause: the reply starts
    assert hold.on_bot_audio(t) and hold.pacing and hold.holds == 0
    hold.sent(0.1)
    t = feed(hold.sound, 3000.0, t + 0.1, 0.04)  # the caller goes on
    assert hold.audio_wait(t) > 0 and hold.holding and hold.yields == 1
    t = feed(hold.sound, 0.0, t, 0.3)  # a cough, not a turn: quiet again
    assert hold.audio_wait(t) == 0.0 and hold.pacing
    hold.sent(0.9)
    assert not hold.pacing and not hold.holding  # its first second is out


def test_a_reply_is_held_at_most_max_hold_s():
    hold = ReplyHold(CallerSound(), quiet_s=0.25, max_hold_s=1.0)
    t = feed(hold.sound, 3000.0, 0.0, 0.1)
    assert hold.on_bot_audio(t)
    t2 = feed(hold.sound, 3000.0, t, 0.9)  # sound the VAD never calls speech
    assert not hold.should_release(t2 - 0.02)
    assert hold.should_release(t + 1.0)


def test_a_dropped_reply_leaves_nothing_held():
    hold = ReplyHold(CallerSound())
    t = feed(hold.sound, 3000.0, 0.0, 0.1)
    assert hold.on_bot_audio(t)
    hold.dropped()
    assert not hold.holding and not hold.should_release(t + 5)


def test_a_reply_ready_in_a_short_pause_waits_for_the_pause_to_end():
    # 0.6 s after the caller's first sentence the reply is ready; the caller is
    # silent but may go on (people pause 0.6-0.8 s within one thought).
    hold = ReplyHold(CallerSound(), min_quiet_s=0.8)
    t = feed(hold.sound, 3000.0, 0.0, 1.0)
    t = feed(hold.sound, 0.0, t, 0.6)
    assert hold.on_bot_audio(t) is True and hold.holds == 1
    assert hold.next_check_in(t) == pytest.approx(0.8 - 0.62)  # last sound at 0.98 s
    assert not hold.should_release(t + 0.1)
    # The caller goes on: still held, then their turn drops it.
    t = feed(hold.sound, 3000.0, t + 0.1, 0.2)
    assert not hold.should_release(t)
    hold.dropped()
    assert not hold.holding
    # A caller who stays quiet gets the reply once the pause is 0.8 s long.
    t = feed(hold.sound, 0.0, t, 0.5)
    assert hold.on_bot_audio(t) is True
    assert not hold.should_release(t + 0.2) and hold.should_release(t + 0.32)


def test_a_reply_after_a_long_enough_pause_is_not_held():
    hold = ReplyHold(CallerSound(), min_quiet_s=0.8)
    t = feed(hold.sound, 3000.0, 0.0, 1.0)
    t = feed(hold.sound, 0.0, t, 0.84)
    assert hold.on_bot_audio(t) is False and hold.holds == 0


def test_a_caller_who_went_on_teaches_the_hold_their_pause():
    # The monologue of the 2026-12-06 suite: a reply starts 0.6 s into a pause, the
    # caller goes on after 0.8 s and takes the turn; the next pause of theirs is
    # waited out instead of started over.
    hold = ReplyHold(CallerSound(), min_quiet_s=0.6, yield_s=1.0, learn_up_to_s=1.0)
    t = feed(hold.sound, 3000.0, 0.0, 1.0)
    t = feed(hold.sound, 0.0, t, 0.6)
    assert hold.on_bot_audio(t) and hold.pacing and hold.holds == 0  # quiet 0.62 s: starts
    hold.sent(0.18)
    t = feed(hold.sound, 3000.0, round(t + 0.18, 6), 0.04)  # the caller goes on
    assert hold.audio_wait(t) > 0 and hold.yields == 1
    assert hold.sound.last_pause == pytest.approx(0.8)  # last loud frame at 0.98 s
    hold.dropped()  # their turn: the pause was theirs
    assert hold.learned == 1 and hold.min_quiet_s == pytest.approx(0.8 + 0.05)
    # Next sentence, the same pause: the reply ready at 0.62 s waits for its end.
    t = feed(hold.sound, 3000.0, t, 1.0)
    t = feed(hold.sound, 0.0, t, 0.6)
    assert hold.on_bot_audio(t) is True and hold.holding and hold.holds == 1
    t = feed(hold.sound, 3000.0, round(t + 0.2, 6), 0.1)  # they go on: never started
    assert not hold.should_release(t)
    hold.dropped()
    assert hold.learned == 1  # held, not yielded: nothing new to learn


def reply_then_caller_sounds(hold: ReplyHold, t: float, pause: float) -> float:
    """A sentence, ``pause`` of quiet, a reply that starts, the caller's sound 0.1 s in."""
    t = feed(hold.sound, 3000.0, t, 1.0)
    t = feed(hold.sound, 0.0, t, pause)
    assert hold.on_bot_audio(t) and hold.pacing
    t = feed(hold.sound, 3000.0, round(t + 0.1, 6), 0.04)
    assert hold.audio_wait(t) > 0 and hold.holding  # yielded
    return t


def test_a_cough_over_a_reply_teaches_nothing_and_learning_is_capped():
    hold = ReplyHold(CallerSound(), min_quiet_s=0.6, yield_s=1.0, learn_up_to_s=1.0)
    t = reply_then_caller_sounds(hold, 0.0, 0.7)  # a cough
    t = feed(hold.sound, 0.0, t, 0.7)
    assert hold.audio_wait(t) == 0.0  # quiet again: the reply goes on
    hold.dropped()  # interrupted later, for whatever reason
    assert hold.learned == 0 and hold.min_quiet_s == 0.6
    # A very long pause before going on teaches at most learn_up_to_s.
    hold.bot_stopped()
    reply_then_caller_sounds(hold, t, 1.4)
    hold.dropped()
    assert hold.learned == 1 and hold.min_quiet_s == 1.0


def test_without_learning_the_hold_never_grows():
    hold = ReplyHold(CallerSound(), min_quiet_s=0.6, yield_s=1.0)
    reply_then_caller_sounds(hold, 0.0, 0.7)
    hold.dropped()
    assert hold.yields == 1 and hold.learned == 0 and hold.min_quiet_s == 0.6


def test_reply_hold_refuses_nonsense():
    with pytest.raises(ValueError):
        ReplyHold(CallerSound(), quiet_s=0)
    with pytest.raises(ValueError):
        ReplyHold(CallerSound(), quiet_s=0.5, max_hold_s=0.2)
    with pytest.raises(ValueError):
        ReplyHold(CallerSound(), min_quiet_s=-0.1)
    with pytest.raises(ValueError):
        ReplyHold(CallerSound(), min_quiet_s=2.0, max_hold_s=1.0)
    with pytest.raises(ValueError):
        ReplyHold(CallerSound(), yield_s=-1.0)
    with pytest.raises(ValueError):
        ReplyHold(CallerSound(), lead_s=0.0)
    with pytest.raises(ValueError):
        ReplyHold(CallerSound(), learn_up_to_s=1.5, max_hold_s=1.0)
    with pytest.raises(ValueError):
        ReplyHold(CallerSound(), learn_up_to_s=-0.1)
    with pytest.raises(ValueError):
        ReplyHold(CallerSound(), learn_margin_s=-0.1)


# -- ReplyHoldGate in a pipeline -------------------------------------------------


def mic(rms: float) -> InputAudioRawFrame:
    return InputAudioRawFrame(audio=pcm(rms), sample_rate=RATE, num_channels=1)


def bot(n: int = 0, seconds: float = 0.02) -> TTSAudioRawFrame:
    audio = pcm(2000.0, seconds * 24000 / RATE, seed=n)
    return TTSAudioRawFrame(audio=audio, sample_rate=24000, num_channels=1)


def run(gate: ReplyHoldGate, frames: list) -> list:
    async def go():
        down, _ = await run_test(Pipeline([gate.tap, gate]), frames_to_send=frames)
        return down

    return run_virtual(go())


class Stamp(FrameProcessor):
    """Records when each bot audio frame passes (virtual time)."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[float, OutputAudioRawFrame]] = []

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputAudioRawFrame):
            self.seen.append((asyncio.get_running_loop().time(), frame))
        await self.push_frame(frame, direction)


def timed_run(gate: ReplyHoldGate, frames: list) -> list[tuple[float, OutputAudioRawFrame]]:
    """Bot audio out of ``gate``, with the virtual time each frame left it."""
    stamp = Stamp()

    async def go():
        await run_test(Pipeline([gate.tap, gate, stamp]), frames_to_send=frames)

    run_virtual(go())
    return stamp.seen


def kinds(frames) -> list[str]:
    return [type(f).__name__ for f in frames if not isinstance(f, InputAudioRawFrame)]


def test_the_gate_passes_a_reply_to_a_silent_caller_at_once():
    gate = ReplyHoldGate()
    down = run(gate, [mic(0.0), mic(0.0), bot(0), TTSTextFrame("Hi", text_type="word"), bot(1)])
    assert kinds(down) == ["TTSAudioRawFrame", "TTSTextFrame", "TTSAudioRawFrame"]
    assert gate.holds == 0


def test_the_gate_holds_a_reply_over_the_caller_and_releases_it_in_order():
    gate = ReplyHoldGate(quiet_s=0.25)
    first, second = bot(0), bot(1)
    text = TTSTextFrame("Hi", text_type="word")
    down = run(gate, [mic(0.0), mic(3000.0), first, text, second, SleepFrame(0.5)])
    outs = [f for f in down if not isinstance(f, InputAudioRawFrame)]
    assert outs == [first, text, second]
    assert gate.holds == 1


def test_the_caller_taking_the_turn_drops_the_held_reply():
    gate = ReplyHoldGate(quiet_s=0.25)
    frames = [mic(3000.0), bot(0), TTSTextFrame("Hi", text_type="word"), SleepFrame(0.05)]
    frames += [InterruptionFrame(), SleepFrame(0.5), mic(0.0)]
    down = run(gate, frames)
    assert not any(isinstance(f, OutputAudioRawFrame | TTSTextFrame) for f in down), kinds(down)
    assert gate.holds == 1


def test_the_gate_never_holds_audio_past_a_replys_start():
    gate = ReplyHoldGate(yield_s=0.04)
    # The caller's audio is a system frame (it overtakes queued ones): sleep to order.
    frames = [mic(0.0), bot(0), bot(1), SleepFrame(0.1), mic(3000.0), mic(3000.0), bot(2)]
    down = run(gate, frames)
    assert kinds(down) == ["TTSAudioRawFrame"] * 3 and gate.holds == 0 and gate.yields == 0


def test_after_the_bot_stops_the_next_reply_can_be_held():
    gate = ReplyHoldGate(quiet_s=0.25)
    frames = [mic(0.0), bot(0), BotStoppedSpeakingFrame(), mic(3000.0), bot(1), SleepFrame(0.5)]
    down = run(gate, frames)
    assert kinds(down).count("TTSAudioRawFrame") == 2 and gate.holds == 1


def test_a_caller_going_on_after_a_short_pause_never_hears_the_reply_start():
    # The reply to the first sentence is ready 0.4 s into a 0.5 s pause; the caller
    # goes on and takes the turn.
    gate = ReplyHoldGate()
    frames = [mic(3000.0) for _ in range(5)] + [SleepFrame(0.4), bot(0), bot(1)]
    frames += [SleepFrame(0.1), mic(3000.0), SleepFrame(0.2), InterruptionFrame(), SleepFrame(1.0)]
    down = run(gate, frames)
    assert not any(isinstance(f, OutputAudioRawFrame) for f in down), kinds(down)
    assert gate.holds == 1


def test_a_caller_going_on_after_a_longer_pause_hears_at_most_a_tenth_of_a_second():
    # The spoke-over case of the 2026-12-05 suites: a one-second reply starts 0.7 s
    # into a 0.8 s pause; the caller goes on, the VAD's turn comes 0.2 s later.
    gate = ReplyHoldGate()
    frames = [mic(3000.0) for _ in range(5)] + [SleepFrame(0.7), bot(0, seconds=1.0)]
    frames += [SleepFrame(0.1), mic(3000.0), SleepFrame(0.2), InterruptionFrame(), SleepFrame(1.0)]
    heard = timed_run(gate, frames)
    assert sum(audio_seconds(f) for _, f in heard) <= 0.1 + 0.12 + 0.02 + 1e-9
    assert gate.yields == 1 and gate.holds == 0


def test_a_replys_start_is_paced_and_the_rest_goes_out_as_it_comes():
    gate = ReplyHoldGate()
    frames = [mic(0.0), bot(0, seconds=3.0), SleepFrame(3.0)]
    heard = timed_run(gate, frames)
    assert b"".join(f.audio for _, f in heard) == bot(0, seconds=3.0).audio  # all, in order
    start, sent = heard[0][0], 0.0
    for t, f in heard:
        assert sent <= (t - start) + 0.12 + 0.02 + 1e-6  # at most lead_s + a chunk ahead
        sent += audio_seconds(f)
    rest = [t for t, f in heard if audio_seconds(f) > 1.0]
    assert rest and rest[0] - start == pytest.approx(1.0 - 0.12 - 0.02, abs=0.03)


def test_a_cough_pauses_the_start_of_a_reply_and_loses_none_of_it():
    gate = ReplyHoldGate()
    frames = [mic(0.0), bot(0, seconds=1.5), SleepFrame(0.3), mic(3000.0), mic(3000.0)]
    frames += [SleepFrame(2.0)]
    heard = timed_run(gate, frames)
    assert b"".join(f.audio for _, f in heard) == bot(0, seconds=1.5).audio
    assert gate.yields == 1
    gaps = [b[0] - a[0] for a, b in zip(heard, heard[1:], strict=False)]
    assert max(gaps) >= 0.25  # it waited for the caller's quiet


def test_a_reply_after_a_pause_longer_than_a_thought_goes_out_at_once():
    gate = ReplyHoldGate()
    frames = [mic(3000.0) for _ in range(5)] + [SleepFrame(0.9), bot(0), bot(1)]
    down = run(gate, frames)
    assert kinds(down) == ["TTSAudioRawFrame"] * 2 and gate.holds == 0


def test_a_reply_ready_inside_the_pause_waits_for_its_end_when_the_caller_stays_quiet():
    gate = ReplyHoldGate()
    frames = [mic(3000.0) for _ in range(5)] + [SleepFrame(0.5), bot(0), SleepFrame(0.6)]
    down = run(gate, frames)
    assert kinds(down) == ["TTSAudioRawFrame"] and gate.holds == 1


def test_the_gate_waits_out_the_pauses_of_a_caller_who_went_on():
    # Two sentences of a monologue, each followed by a 0.8 s pause and more words:
    # the first reply starts and yields, the second is never heard.
    log = EventLog(None)
    gate = ReplyHoldGate(event_log=log)
    frames: list = []
    for n in range(2):
        frames += [mic(3000.0) for _ in range(5)] + [SleepFrame(0.7), bot(n, seconds=1.0)]
        frames += [SleepFrame(0.1), mic(3000.0), SleepFrame(0.2), InterruptionFrame()]
        frames += [SleepFrame(0.5), BotStoppedSpeakingFrame()]
    heard = timed_run(gate, frames + [SleepFrame(1.0)])
    assert gate.yields == 1 and gate.holds == 1
    assert sum(audio_seconds(f) for _, f in heard) <= 0.1 + 0.12 + 0.02 + 1e-9  # the first
    assert [e["kind"] for e in log.events if e["kind"] == "reply_hold_learned"] == [
        "reply_hold_learned"
    ]
