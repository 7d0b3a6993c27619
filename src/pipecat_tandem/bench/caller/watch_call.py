"""Placing a watch call: ask, wait for the acknowledgement, act in front of the camera.

The caller's microphone speaks the request with its own voice; its camera
(:class:`~pipecat_tandem.bench.caller.camera.SceneCamera`, VP8- or H.264-encoded by
aiortc like a browser's) shows the watch's scenes in real time. Everything graded is what the peer
received: the bot's audio with arrival times, transcribed afterwards by the caller's
own ears.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np

from pipecat_tandem.bench.caller.camera import SceneCamera
from pipecat_tandem.bench.caller.ears import CallerEars, Heard
from pipecat_tandem.bench.caller.mic import ScriptedMic
from pipecat_tandem.bench.caller.peer import CallerPeer
from pipecat_tandem.bench.caller.scenes import Size
from pipecat_tandem.bench.caller.voice import CallerVoice
from pipecat_tandem.bench.caller.watches import Watch, WatchResult, WatchTimes, grade_watch

_POLL_S = 0.05


@dataclass
class WatchRecord:
    """One finished watch call."""

    watch: Watch
    peer: CallerPeer
    times: WatchTimes = field(default_factory=WatchTimes)


class WatchCaller:
    """Places watch calls against a tandem server and grades them at the peer.

    Args:
        base_url: The server.
        voice: The caller's voice.
        ears: The caller's ears.
        fps: The camera's frame rate.
        size: The camera's ``(width, height)``.
        video_codec: The camera's codec (``VP8``, ``H264``; None: what the server picks).
    """

    def __init__(
        self,
        base_url: str,
        voice: CallerVoice,
        ears: CallerEars,
        *,
        fps: float = 15.0,
        size: Size = (640, 480),
        video_codec: str | None = None,
    ) -> None:
        self.base_url = base_url
        self._voice, self._ears = voice, ears
        self.fps, self.size = fps, size
        self.video_codec = video_codec

    async def call(self, watch: Watch) -> WatchRecord:
        """Place ``watch``'s call; hang up when the caller has listened long enough."""
        speech = self._voice.utterance([watch.request], 0.0)
        mic = ScriptedMic()
        camera = SceneCamera(watch.first, fps=self.fps, size=self.size)
        peer = CallerPeer(self.base_url, mic, camera, video_codec=self.video_codec)
        record = WatchRecord(watch, peer)
        times = record.times
        await peer.connect()
        try:
            # Let the camera run a moment: the bot must know it can see.
            await _until_silent(peer, time.monotonic(), timeout_s=8.0, hold_s=1.5)
            spoken = await mic.play(speech)
            times.request_end = spoken.voice_end
            if await _until_speaking(peer, spoken.voice_end, 6.0):
                await _until_silent(peer, spoken.voice_end, timeout_s=8.0, hold_s=0.6)
            if watch.event is not None:
                await asyncio.sleep(watch.still_s)
                times.event_at = await camera.show(watch.event)
                times.event_end = times.event_at + watch.event_s
                await asyncio.sleep(watch.event_s + watch.listen_s)
            else:
                due = times.request_end + watch.due_s
                await asyncio.sleep(max(0.0, due - time.monotonic()) + watch.listen_s)
            await _until_silent(peer, time.monotonic(), timeout_s=6.0, hold_s=1.0)
        finally:
            times.ended = time.monotonic()
            await peer.close()
        return record

    def hear(self, record: WatchRecord) -> list[Heard]:
        """The caller's transcript of everything the bot said in the call.

        For a count, everything after the acknowledgement is heard as one stretch,
        its pieces joined by short pauses: Whisper base hears a lone "Four." as
        "So", but "Two. Three. Four." as numbers, as a person listening along does.
        """
        recording = record.peer.recording
        heard: list[Heard] = []
        segments = recording.segments()
        joined = []
        acked = False  # the first stretch after the request is the acknowledgement
        for segment in segments:
            audio, started = recording.audio(segment)
            after = segment.start > record.times.request_end
            if record.watch.kind == "count" and after and acked:
                joined.append((segment, audio))
                continue
            acked = acked or after
            text = " ".join(p.text for p in self._ears.transcribe(audio, started))
            if text:
                heard.append(Heard(segment.start, segment.end, text))
        if joined:
            gap = np.zeros(int(0.3 * recording.sample_rate), np.int16)
            audio = np.concatenate([x for _, a in joined for x in (a, gap)])
            text = " ".join(p.text for p in self._ears.transcribe(audio, joined[0][0].start))
            if text:
                heard.append(Heard(joined[0][0].start, joined[-1][0].end, text))
        return heard

    def grade(self, record: WatchRecord, heard: list[Heard]) -> WatchResult:
        """Grade a finished watch call from the caller's side."""
        return grade_watch(record.watch, record.times, record.peer.recording, heard)


async def _until_speaking(peer: CallerPeer, since: float, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if peer.recording.first_loud_after(since) is not None:
            return True
        await asyncio.sleep(_POLL_S)
    return False


async def _until_silent(peer: CallerPeer, since: float, timeout_s: float, hold_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        last = peer.recording.last_loud()
        quiet_from = max(since, last or since)
        if time.monotonic() - quiet_from >= hold_s:
            return
        await asyncio.sleep(_POLL_S)
