"""Placing one scripted call: speak each turn in real time, wait like a person, record."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipecat_tandem.bench.caller.camera import SceneCamera
from pipecat_tandem.bench.caller.ears import CallerEars, Heard
from pipecat_tandem.bench.caller.grading import TurnResult, grade_turn
from pipecat_tandem.bench.caller.mic import ScriptedMic, Spoken
from pipecat_tandem.bench.caller.peer import CallerPeer
from pipecat_tandem.bench.caller.scenes import Person, Room
from pipecat_tandem.bench.caller.script import SENTENCE_PAUSES_S, Conversation, Turn
from pipecat_tandem.bench.caller.voice import CallerVoice, cough

#: The bot has stopped talking when nothing loud arrived for this long.
SILENT_S = 1.2
_POLL_S = 0.05
#: How long after a request the caller looks for the job it starts.
_JOB_APPEARS_S = 4.0
#: How long after a delivery message the caller listens for its speech to begin.
_SPEECH_FOLLOWS_S = 3.0


@dataclass
class CallRecord:
    """One finished call: the script, when each turn went out, what came back."""

    conversation: Conversation
    spoken: list[Spoken] = field(default_factory=list)
    ended: float = 0.0
    peer: CallerPeer | None = None


class Caller:
    """Places scripted calls against a tandem server and grades them at the peer."""

    def __init__(self, base_url: str, voice: CallerVoice, ears: CallerEars) -> None:
        self.base_url = base_url
        self._voice = voice
        self._ears = ears
        self._clips: dict[tuple[str, ...], np.ndarray] = {}

    def _clip(self, turn: Turn) -> np.ndarray:
        if turn.noise == "cough":
            return cough()
        if not turn.say:
            return np.zeros(960, np.int16)
        if turn.say not in self._clips:
            self._clips[turn.say] = self._voice.utterance(list(turn.say), SENTENCE_PAUSES_S)
        return self._clips[turn.say]

    def prepare(self, conversation: Conversation) -> None:
        """Synthesize every clip of ``conversation`` now (blocking; cached).

        Calls placed at once must not synthesize while another call is on the
        line: synthesis blocks the loop that paces their audio.
        """
        for turn in conversation.turns:
            self._clip(turn)

    async def call(self, conversation: Conversation) -> CallRecord:
        """Speak ``conversation`` to the bot over a new call; hang up when it is done."""
        self.prepare(conversation)  # before dialling: no gaps mid-call
        mic = ScriptedMic()
        # A webcam call: a person sitting in a room, through the sensor model, VP8.
        camera = SceneCamera(Person(Room(0), seed=3)) if conversation.camera else None
        peer = CallerPeer(self.base_url, mic, camera)
        record = CallRecord(conversation, peer=peer)
        await peer.connect()
        try:
            await self._until_silent(peer, since=time.monotonic(), timeout_s=8.0)
            for turn in conversation.turns:
                if turn.barge_in_s is not None:
                    await self._until_speaking(peer, time.monotonic(), 10.0)
                    await asyncio.sleep(turn.barge_in_s)
                spoken = await mic.play(self._clip(turn))
                record.spoken.append(spoken)
                await self._wait(peer, turn, spoken)
            await self._until_silent(peer, since=time.monotonic(), timeout_s=20.0)
        finally:
            record.ended = time.monotonic()
            await peer.close()
        return record

    async def _wait(self, peer: CallerPeer, turn: Turn, spoken: Spoken) -> None:
        end = spoken.voice_end
        if turn.wait == "none":
            await asyncio.sleep(turn.after_s)
        elif turn.wait == "ack":
            if await self._until_speaking(peer, end, turn.timeout_s):
                await asyncio.sleep(turn.after_s)
        elif turn.wait == "reply":
            if await self._until_speaking(peer, end, turn.timeout_s):
                await self._until_silent(
                    peer, since=end, timeout_s=turn.timeout_s, hold_s=turn.after_s
                )
        else:  # result: until every job owed to the caller is settled, then silence
            deadline = end + turn.timeout_s
            # Polled: the peer's message list is plain data, there is no event to await.
            # The job this turn starts shows up a moment after the words (STT, routing).
            while time.monotonic() < min(deadline, end + _JOB_APPEARS_S) and not _jobs_since(  # noqa: ASYNC110
                peer, end
            ):
                await asyncio.sleep(_POLL_S)
            while time.monotonic() < deadline and owed_jobs(peer.tandem_messages()):  # noqa: ASYNC110
                await asyncio.sleep(_POLL_S)
            # The delivery message comes a moment before its speech: a person hears
            # the answer start, listens to the end, then talks.
            settled = time.monotonic()
            await self._until_speaking(peer, settled, _SPEECH_FOLLOWS_S)
            await self._until_silent(peer, since=settled, timeout_s=20.0, hold_s=turn.after_s)

    async def _until_speaking(self, peer: CallerPeer, since: float, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if peer.recording.first_loud_after(since) is not None:
                return True
            await asyncio.sleep(_POLL_S)
        return False

    async def _until_silent(
        self, peer: CallerPeer, since: float, timeout_s: float, hold_s: float = SILENT_S
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            last = peer.recording.last_loud()
            quiet_from = max(since, last or since)
            if time.monotonic() - quiet_from >= hold_s:
                return
            await asyncio.sleep(_POLL_S)

    def hear(self, record: CallRecord) -> list[Heard]:
        """The caller's transcript of everything the bot said in the call (after it)."""
        assert record.peer is not None
        recording = record.peer.recording
        heard: list[Heard] = []
        for segment in recording.segments():
            audio, started = recording.audio(segment)
            pieces = self._ears.transcribe(audio, started)
            text = " ".join(p.text for p in pieces)
            if text:
                heard.append(Heard(segment.start, segment.end, text))
        return heard

    def grade(self, record: CallRecord, heard: list[Heard]) -> list[TurnResult]:
        """Grade every turn of a finished call from the caller's transcript of it."""
        assert record.peer is not None
        turns = record.conversation.turns
        out = []
        for i, (turn, spoken) in enumerate(zip(turns, record.spoken, strict=False)):
            nxt = record.spoken[i + 1].voice_start if i + 1 < len(record.spoken) else record.ended
            out.append(
                grade_turn(
                    record.conversation.name, i, turn, spoken, nxt, record.peer.recording, heard
                )
            )
        return out


def _jobs_since(peer: CallerPeer, since: float) -> bool:
    return any(
        m.get("type") == "job_state" and m.get("_arrived", 0.0) >= since
        for m in peer.tandem_messages()
    )


def owed_jobs(messages: list[dict[str, Any]]) -> set[str]:
    """Jobs the bot started and has not yet answered, failed or dropped.

    A person who asked for something waits for *that* answer; a delivery of an
    older job (a redelivery, an offer) does not settle it.
    """
    owed: set[str] = set()
    for m in messages:
        kind, job_id = m.get("type"), m.get("job_id")
        if kind == "job_state" and m.get("state") in ("queued", "running") and job_id:
            owed.add(str(job_id))
        elif kind == "job_state" and m.get("state") in ("failed", "cancelled") and job_id:
            owed.discard(str(job_id))
        elif kind == "job_error" and job_id:
            owed.discard(str(job_id))
        elif kind == "delivery":
            owed -= {str(j) for j in m.get("job_ids") or ()}
    return owed


def transcript(record: CallRecord, heard: list[Heard]) -> list[dict[str, Any]]:
    """The call as a list of caller and bot lines with times from the call's start."""
    assert record.peer is not None
    t0 = record.peer.stats.connected
    lines: list[dict[str, Any]] = []
    for turn, spoken in zip(record.conversation.turns, record.spoken, strict=False):
        lines.append(
            {
                "t": round(spoken.voice_start - t0, 2),
                "who": "caller",
                "text": " ".join(turn.say) or (turn.noise or "(silence)"),
            }
        )
    lines += [{"t": round(h.start - t0, 2), "who": "bot", "text": h.text} for h in heard]
    return sorted(lines, key=lambda line: line["t"])
