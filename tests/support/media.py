"""Test media: speech-like audio and synthetic camera frames, made on the fly.

``speech_pcm`` uses espeak-ng when installed (real speech, which the Silero VAD
recognises reliably); otherwise a voiced, syllable-modulated harmonic signal
that Silero also accepts as speech.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import time
import wave
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from aiortc import MediaStreamTrack

from pipecat_tandem.bench.caller.peer import CallerPeer


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst or len(x) < 2:
        return x
    n = int(len(x) * dst / src)
    return np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x)


def synthetic_voice(seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """A vowel-like harmonic signal with a 4 Hz syllable envelope (float32, -1..1)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 130 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum((0.6 / k) * np.sin(k * phase) for k in range(1, 12))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.5 * voice * envelope / np.max(np.abs(voice))).astype(np.float32)


def speech_pcm(
    text: str = "Hello bot. Can you hear me? Please answer.",
    sample_rate: int = 16000,
    lead_silence_s: float = 0.5,
    tail_silence_s: float = 1.5,
) -> bytes:
    """Speech as 16-bit mono PCM at ``sample_rate``, padded with silence."""
    voice: np.ndarray | None = None
    espeak = shutil.which("espeak-ng")
    if espeak:
        try:
            wav = subprocess.run(
                [espeak, "-v", "en-us", "-s", "150", "--stdout", text],
                capture_output=True,
                check=True,
                timeout=20,
            ).stdout
            with wave.open(io.BytesIO(wav)) as w:
                sr = w.getframerate()
                raw = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
            voice = _resample(raw.astype(np.float32) / 32768.0, sr, sample_rate)
        except (OSError, subprocess.SubprocessError, wave.Error):
            voice = None
    if voice is None:
        voice = synthetic_voice(2.5, sample_rate)
    lead = np.zeros(int(lead_silence_s * sample_rate), dtype=np.float32)
    tail = np.zeros(int(tail_silence_s * sample_rate), dtype=np.float32)
    full = np.concatenate([lead, voice.astype(np.float32), tail])
    return (np.clip(full, -1, 1) * 32767).astype(np.int16).tobytes()


def write_wav(path: Path, pcm: bytes, sample_rate: int) -> Path:
    """Write mono 16-bit PCM as a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return path


def camera_frame(index: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A moving test pattern (RGB uint8), different every frame."""
    x = np.arange(width)[None, :]
    y = np.arange(height)[:, None]
    r = ((x + 4 * index) % 256).astype(np.uint8)
    g = ((y + 2 * index) % 256).astype(np.uint8)
    b = np.full((height, width), (index * 16) % 256, dtype=np.uint8)
    return np.stack(
        [np.broadcast_to(r, (height, width)), np.broadcast_to(g, (height, width)), b], -1
    )


def write_y4m(
    path: Path, frames: int = 30, width: int = 320, height: int = 240, fps: int = 15
) -> Path:
    """A raw YUV4MPEG2 (4:2:0) video file for Chromium's fake camera."""
    import cv2

    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            yuv = cv2.cvtColor(camera_frame(i, width, height), cv2.COLOR_RGB2YUV_I420)
            f.write(b"FRAME\n" + yuv.tobytes())
    return path


VIDEO_TIME_BASE = Fraction(1, 90000)


#
# An aiortc peer that behaves like the client page
#


class PcmAudioTrack(MediaStreamTrack):
    """Sends PCM (16-bit mono) in real-time 20 ms frames at 48 kHz, then silence."""

    kind = "audio"

    def __init__(self, pcm: bytes, sample_rate: int = 16000, loop: bool = False):
        super().__init__()
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
        self._pcm = _resample(samples, sample_rate, 48000).astype(np.int16)
        self._loop = loop
        self._pos = 0
        self._start: float | None = None
        self._sent = 0

    async def recv(self) -> av.AudioFrame:
        n = 960
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._sent * 0.02 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = self._pcm[self._pos : self._pos + n]
        self._pos += n
        if self._loop and self._pos >= len(self._pcm):
            self._pos = 0
        if len(chunk) < n:
            chunk = np.concatenate([chunk, np.zeros(n - len(chunk), dtype=np.int16)])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._sent * n
        frame.time_base = Fraction(1, 48000)
        self._sent += 1
        return frame


class PatternVideoTrack(MediaStreamTrack):
    """Sends the moving test pattern at ``fps``."""

    kind = "video"

    def __init__(
        self,
        fps: int = 10,
        width: int = 320,
        height: int = 240,
        image: Callable[[int, int, int], np.ndarray] = camera_frame,
    ):
        """``image(index, width, height)`` draws frame ``index`` (RGB uint8)."""
        super().__init__()
        self._fps = fps
        self._size = (width, height)
        self._image = image
        self._start: float | None = None
        self._count = 0

    @property
    def started_at(self) -> float | None:
        """When the first frame was sent (monotonic), once it was."""
        return self._start

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._count / self._fps - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = av.VideoFrame.from_ndarray(self._image(self._count, *self._size), format="rgb24")
        frame.pts = int(self._count * 90000 / self._fps)
        frame.time_base = VIDEO_TIME_BASE
        self._count += 1
        return frame


class TestPeer(CallerPeer):
    """A :class:`CallerPeer` that sends fixed PCM and (optionally) the test pattern."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        base_url: str,
        *,
        pcm: bytes | None = None,
        sample_rate: int = 16000,
        video: bool = True,
        video_fps: int = 10,
        video_size: tuple[int, int] = (320, 240),
        keepalive: bool = True,
        loop_audio: bool = False,
    ):
        super().__init__(
            base_url,
            PcmAudioTrack(pcm or b"", sample_rate, loop=loop_audio),
            PatternVideoTrack(video_fps, *video_size) if video else None,
            keepalive=keepalive,
        )


def pacing_lateness_ms(rtp: list[tuple[float, int]], clock_rate: int = 48000) -> list[float]:
    """Per-packet lateness (ms) against the ideal schedule set by RTP timestamps.

    Lateness of packet *i* is ``(arrival_i - arrival_0) - (ts_i - ts_0)/rate``
    minus the smallest such value (the schedule anchored at the earliest packet).
    """
    if len(rtp) < 2:
        return []
    a0, t0 = rtp[0]
    offsets = [(a - a0) - ((ts - t0) % 2**32) / clock_rate for a, ts in rtp]
    base = min(offsets)
    return [1000 * (o - base) for o in offsets]
