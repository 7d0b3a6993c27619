#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Translate pipeline frames into the JSON messages the client page shows (pure).

Every message is a small JSON object ``{"label": "tandem", "type": ..., "t": ...}``
(``t`` is session time in seconds). Types:

========== =====================================================================
type       fields
========== =====================================================================
speaking   ``who`` (``user``/``bot``), ``speaking`` (bool)
transcript ``role`` (``user``), ``text``
bot_text   ``text`` (words as the bot speaks them)
unspoken   ``text`` (bot text whose speech failed: the user never heard it)
job_state  ``job_id``, ``state``, ``task``, ``detail``
progress   ``job_id``, ``text``
result     ``job_id``, ``text``, ``is_final``, ``stale``, ``policy``
job_error  ``job_id``, ``error``, ``task``
delivery   ``job_ids``, ``kind``, ``text`` (the moment a result is woven in)
cue        ``kind``, ``value``
========== =====================================================================

The same frame is seen at every hop of the pipeline (and broadcast frames
travel as two siblings), so the encoder remembers recent frame ids and encodes
each frame once.

A TTS without word timestamps pushes each sentence's ``TTSTextFrame`` after its
synthesis, also when the synthesis failed or timed out and no audio came: shown
as ``bot_text``, the page would show the bot saying what the user never heard.
A sentence is ``bot_text`` only if audio of its TTS context came since the
context's previous sentence; otherwise it is ``unspoken``. (Word-timestamp
services make their word frames from the audio itself, so those are spoken.)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)

from pipecat_tandem.clock import SessionClock
from pipecat_tandem.frames import (
    BackgroundDeliveryFrame,
    BackgroundErrorFrame,
    BackgroundJobStateFrame,
    BackgroundProgressFrame,
    BackgroundResultFrame,
    CueFrame,
)

#: Label on every message, so the page can tell ours from RTVI traffic.
LABEL = "tandem"
#: Longest text sent in one message; the page is a live view, not an archive.
MAX_TEXT_CHARS = 2000
_MAX_REMEMBERED_IDS = 4096
#: TTS contexts whose audio is tracked at once (one per reply; old ones are done).
_MAX_TTS_CONTEXTS = 64


def _clip(text: str) -> str:
    text = str(text)
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"


class ClientEventEncoder:
    """Encodes each interesting frame once as a client message.

    Args:
        clock: The session clock stamped on each message.
        include_cues: Whether to forward ``CueFrame``s (they can be frequent).
    """

    def __init__(self, *, clock: SessionClock, include_cues: bool = True) -> None:
        self._clock = clock
        self._include_cues = include_cues
        self._seen: OrderedDict[int, None] = OrderedDict()
        # Per TTS context: whether audio came since its last sentence. Only the
        # latest audio frame's id is kept: the TTS pushes a context's frames in
        # order, and a later hop re-pushing an old audio frame must not count again.
        self._voiced: OrderedDict[str, bool] = OrderedDict()
        self._last_audio: dict[str, int] = {}

    def _first_time(self, frame: Frame) -> bool:
        if frame.id in self._seen:
            return False
        for key in (frame.id, getattr(frame, "broadcast_sibling_id", None)):
            if isinstance(key, int):
                self._seen[key] = None
        while len(self._seen) > _MAX_REMEMBERED_IDS:
            self._seen.popitem(last=False)
        return True

    def encode(self, frame: Frame) -> dict[str, Any] | None:
        """The message for ``frame``, or ``None`` if it is not shown or was already sent.

        Args:
            frame: Any pipeline frame.

        Returns:
            A JSON-serializable dict or ``None``.
        """
        if isinstance(frame, TTSAudioRawFrame):
            self._audio(frame)
            return None
        body = self._body(frame)
        if body is None or not self._first_time(frame):
            return None
        if isinstance(frame, TTSTextFrame) and not self._spoken(frame):
            body["type"] = "unspoken"
        return {"label": LABEL, "t": round(self._clock.now(), 3), **body}

    def _audio(self, frame: TTSAudioRawFrame) -> None:
        context = frame.context_id
        if not context or frame.id <= self._last_audio.get(context, -1):
            return  # no context to tie it to, or seen at an earlier hop
        self._last_audio[context] = frame.id
        self._set_voiced(context, True)

    def _spoken(self, frame: TTSTextFrame) -> bool:
        """Whether a sentence's audio came (called once per frame)."""
        context = frame.context_id
        if not context or frame.pts:
            return True  # untracked text, or a word timed from the audio itself
        voiced = self._voiced.get(context, False)
        self._set_voiced(context, False)
        return voiced

    def _set_voiced(self, context: str, voiced: bool) -> None:
        self._voiced[context] = voiced
        self._voiced.move_to_end(context)
        while len(self._voiced) > _MAX_TTS_CONTEXTS:
            old, _ = self._voiced.popitem(last=False)
            self._last_audio.pop(old, None)

    def _body(self, frame: Frame) -> dict[str, Any] | None:
        if isinstance(frame, BackgroundJobStateFrame):
            state = getattr(frame.state, "value", frame.state)
            return {
                "type": "job_state",
                "job_id": frame.job_id,
                "state": str(state),
                "task": _clip(frame.task),
                "detail": _clip(frame.detail),
            }
        if isinstance(frame, BackgroundProgressFrame):
            return {"type": "progress", "job_id": frame.job_id, "text": _clip(frame.text)}
        if isinstance(frame, BackgroundResultFrame):
            return {
                "type": "result",
                "job_id": frame.job_id,
                "text": _clip(frame.text),
                "is_final": frame.is_final,
                "stale": frame.stale,
                "policy": str(getattr(frame.policy, "value", frame.policy)),
            }
        if isinstance(frame, BackgroundErrorFrame):
            return {
                "type": "job_error",
                "job_id": frame.job_id,
                "error": _clip(frame.error),
                "task": _clip(frame.task),
            }
        if isinstance(frame, BackgroundDeliveryFrame):
            return {
                "type": "delivery",
                "job_ids": list(frame.job_ids),
                "kind": frame.kind,
                "text": _clip(frame.text),
            }
        if isinstance(frame, TranscriptionFrame):
            return {"type": "transcript", "role": "user", "text": _clip(frame.text)}
        if isinstance(frame, TTSTextFrame):
            return {"type": "bot_text", "text": _clip(frame.text)}
        if isinstance(frame, UserStartedSpeakingFrame | UserStoppedSpeakingFrame):
            started = isinstance(frame, UserStartedSpeakingFrame)
            return {"type": "speaking", "who": "user", "speaking": started}
        if isinstance(frame, BotStartedSpeakingFrame | BotStoppedSpeakingFrame):
            started = isinstance(frame, BotStartedSpeakingFrame)
            return {"type": "speaking", "who": "bot", "speaking": started}
        if isinstance(frame, CueFrame) and self._include_cues:
            return {"type": "cue", "kind": frame.kind, "value": round(float(frame.value), 4)}
        return None
