"""The caller's microphone: real-time 20 ms frames, silence until told to speak."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from aiortc import MediaStreamTrack

from pipecat_tandem.bench.caller.voice import PEER_RATE

_FRAME = PEER_RATE // 50  # 20 ms
_VOICED_RMS = 300.0


@dataclass
class Spoken:
    """When the voice of one played clip went out (monotonic seconds)."""

    voice_start: float = 0.0
    voice_end: float = 0.0


class _Clip:
    def __init__(self, pcm: np.ndarray, done: asyncio.Future[Spoken]) -> None:
        self.pcm = pcm
        self.pos = 0
        self.done = done
        self.spoken = Spoken()


class ScriptedMic(MediaStreamTrack):
    """Sends clips when :meth:`play` is called, digital silence otherwise, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[_Clip] = deque()
        self._start: float | None = None
        self._sent = 0

    def play(self, pcm: np.ndarray) -> asyncio.Future[Spoken]:
        """Queue int16 48 kHz ``pcm``; the future resolves once its last frame is sent."""
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError("the caller's microphone plays mono int16 samples")
        done: asyncio.Future[Spoken] = asyncio.get_running_loop().create_future()
        self._queue.append(_Clip(pcm, done))
        return done

    @property
    def speaking(self) -> bool:
        """Whether a clip is being sent now."""
        return bool(self._queue)

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms frame, no earlier than its place in real time."""
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._sent * 0.02 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = self._next_chunk(time.monotonic())
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = PEER_RATE
        frame.pts = self._sent * _FRAME
        frame.time_base = Fraction(1, PEER_RATE)
        self._sent += 1
        return frame

    def _next_chunk(self, now: float) -> np.ndarray:
        if not self._queue:
            return np.zeros(_FRAME, np.int16)
        clip = self._queue[0]
        chunk = clip.pcm[clip.pos : clip.pos + _FRAME]
        clip.pos += _FRAME
        if len(chunk) and float(np.sqrt(np.mean(chunk.astype(np.float32) ** 2))) > _VOICED_RMS:
            if not clip.spoken.voice_start:
                clip.spoken.voice_start = now
            clip.spoken.voice_end = now + 0.02
        if clip.pos >= len(clip.pcm):
            self._queue.popleft()
            if not clip.spoken.voice_start:  # a silent clip: its "voice" is its span
                clip.spoken.voice_start = clip.spoken.voice_end = now
            if not clip.done.done():
                clip.done.set_result(clip.spoken)
        if len(chunk) < _FRAME:
            chunk = np.concatenate([chunk, np.zeros(_FRAME - len(chunk), np.int16)])
        return chunk
