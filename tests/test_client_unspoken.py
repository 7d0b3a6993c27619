"""Bot text whose speech failed is not shown as said (issue 13).

A TTS without word timestamps pushes each sentence's ``TTSTextFrame`` after its
synthesis, also when the synthesis raised or timed out: the page showed the bot
saying a sentence the user never heard. Such text now goes to the client as
``unspoken``, never as ``bot_text``.
"""

from __future__ import annotations

from typing import Any

import pytest
from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame, TTSTextFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.utils.text.base_text_aggregator import TextType

from pipecat_tandem.clock import ManualClock
from pipecat_tandem.processors.speech_guard import limit_speech_time
from pipecat_tandem.transports.client_event_observer import ClientEventObserver
from pipecat_tandem.transports.client_events import ClientEventEncoder
from tests.test_speech_faults import FaultyTTS, Speaker


def _audio(context: str) -> TTSAudioRawFrame:
    return TTSAudioRawFrame(b"\x00\x00" * 320, 16000, 1, context_id=context)


def _text(text: str, context: str, pts: int | None = None) -> TTSTextFrame:
    frame = TTSTextFrame(text, TextType.SENTENCE, context_id=context)
    frame.pts = pts
    return frame


def _types(encoder: ClientEventEncoder, frames: list[Any]) -> list[tuple[str, str]]:
    out = [encoder.encode(f) for f in frames]
    return [(m["type"], m["text"]) for m in out if m is not None]


def test_a_sentence_with_no_audio_is_unspoken():
    enc = ClientEventEncoder(clock=ManualClock())
    a1, a2, t1 = _audio("c1"), _audio("c1"), _text("Hello.", "c1")
    t2 = _text("This one failed.", "c1")
    a3, t3 = _audio("c1"), _text("This one was said.", "c1")
    frames = [a1, a2, t1, t2, a1, a2, t1, t2, a3, t3]  # a second hop re-pushes them
    assert _types(enc, frames) == [
        ("bot_text", "Hello."),
        ("unspoken", "This one failed."),
        ("bot_text", "This one was said."),
    ]


def test_contexts_are_tracked_apart_and_timed_words_are_spoken():
    enc = ClientEventEncoder(clock=ManualClock())
    frames = [_audio("a"), _text("Reply a.", "b"), _text("Reply a.", "a")]
    assert [t for t, _ in _types(enc, frames)] == ["unspoken", "bot_text"]
    # Word-timestamp services time each word from the audio: always spoken.
    assert _types(enc, [_text("word", "c", pts=123)]) == [("bot_text", "word")]


@pytest.mark.parametrize("fault", ["raise", "error_frame", "hang"])
async def test_a_sentence_the_tts_failed_is_never_shown_as_said(fault):
    # An error frame or a timed-out step (the per-step limit) used to be shown as
    # bot_text; when run_tts raises, pipecat itself drops the sentence.
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    observer = ClientEventObserver(send=send, clock=ManualClock())
    tts = FaultyTTS({0: fault})
    limit_speech_time(tts, 1.0)
    await run_test(
        Pipeline([tts, Speaker()]),
        frames_to_send=[
            TTSSpeakFrame("Sure."),
            SleepFrame(1.5),
            TTSSpeakFrame("Hello again."),
            SleepFrame(1.5),
        ],
        expected_down_frames=None,
        observers=[observer],
    )
    said = [(m["type"], m["text"]) for m in sent if m["type"] in ("bot_text", "unspoken")]
    assert ("bot_text", "Sure.") not in said
    assert ("bot_text", "Hello again.") in said
