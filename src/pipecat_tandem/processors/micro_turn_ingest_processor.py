#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""MicroTurnIngestProcessor: cut the input media into aligned micro-turns.

Consumes nothing: every ``InputAudioRawFrame`` and ``InputImageRawFrame`` (including
``UserImageRawFrame``) is passed on untouched, and a :class:`MicroTurnFrame` is pushed
downstream for every window of the session clock (default 200 ms).

* Audio is downmixed to mono and resampled to 16 kHz (per ``transport_source``).
* Images are kept at most ``max_fps`` per second and converted to RGB: ``RGBA``,
  ``BGR``, ``BGRA`` and grayscale (``L``/``GRAY``) are converted; frames larger than
  ``max_pixels`` are downscaled (area interpolation, aspect kept) off the event loop.
* Times come from the injected session clock at arrival. A producer that knows better
  may stamp ``frame.metadata["session_time"]`` (seconds on the same clock; for audio,
  the time of the first sample): such frames are placed by that time, also out of order.
* Malformed input (bad rate or channel count, byte length not matching the declared
  layout, empty or too small images, unknown pixel formats) produces an ``ErrorFrame``
  upstream (at most one per kind every ``error_interval`` seconds, with a count) and is
  otherwise ignored; the stream goes on.

Windowing rules (late input, gaps, rate cap) are those of
:class:`~pipecat_tandem.fusion.micro_turns.MicroTurnAssembler`.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import cv2
import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputImageRawFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipecat_tandem.clock import MonotonicClock, SessionClock
from pipecat_tandem.frames import MicroTurnFrame
from pipecat_tandem.fusion.micro_turns import MicroTurn, MicroTurnAssembler
from pipecat_tandem.fusion.resample import StreamResampler, to_mono

_OUT_RATE = 16000
_CONVERSIONS: dict[str, tuple[int, int | None]] = {
    "RGB": (3, None),
    "RGBA": (4, cv2.COLOR_RGBA2RGB),
    "BGR": (3, cv2.COLOR_BGR2RGB),
    "BGRA": (4, cv2.COLOR_BGRA2RGB),
    "L": (1, cv2.COLOR_GRAY2RGB),
    "GRAY": (1, cv2.COLOR_GRAY2RGB),
}

Image = tuple[int, int, bytes]  # width, height, RGB bytes


class _AudioStream:
    """Resampler state of one source, with the session time its output starts at."""

    def __init__(self, in_rate: int) -> None:
        self.rs = StreamResampler(in_rate=in_rate, out_rate=_OUT_RATE)
        self.in_rate = in_rate
        self.t0: float | None = None  # session time of the first input sample
        self.n_in = 0
        self.n_out = 0


class MicroTurnIngestProcessor(FrameProcessor):
    """Align audio and camera frames into :class:`MicroTurnFrame` windows.

    Example::

        ingest = MicroTurnIngestProcessor(clock=session_clock)
        pipeline = Pipeline([transport.input(), ingest, fusion, stt, ...])
    """

    def __init__(
        self,
        *,
        clock: SessionClock | None = None,
        window: float = 0.2,
        max_fps: float | None = 5.0,
        max_delay: float = 0.1,
        max_pixels: int = 1920 * 1080,
        min_side: int = 40,
        tick: bool = True,
        error_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        """Create the processor.

        Args:
            clock: The session clock (default: a new :class:`MonotonicClock`).
            window: Micro-turn length in seconds (a multiple of 1/16000).
            max_fps: Images kept per second (``None``: all).
            max_delay: How long a window waits for late input after its end.
            max_pixels: Larger images are downscaled to fit this many pixels.
            min_side: Images with a smaller width or height are rejected.
            tick: Close windows on a timer too, so micro-turns keep coming while the
                input stalls (silent and flagged).
            error_interval: Minimum seconds between two ErrorFrames of one kind.
            **kwargs: Passed to ``FrameProcessor``.
        """
        super().__init__(**kwargs)
        if max_pixels < min_side * min_side or min_side < 1:
            raise ValueError("need min_side >= 1 and max_pixels >= min_side ** 2")
        self._clock: SessionClock = clock or MonotonicClock()
        self._asm: MicroTurnAssembler[Image] = MicroTurnAssembler(
            window=window, sample_rate=_OUT_RATE, max_fps=max_fps, max_delay=max_delay
        )
        self._max_pixels = max_pixels
        self._min_side = min_side
        self._tick = tick
        self._error_interval = error_interval
        self._streams: dict[str, _AudioStream] = {}
        self._errors: dict[str, tuple[float, int]] = {}  # kind -> (last push time, count)
        self._tick_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def stats(self) -> Any:
        """The assembler's counters (:class:`~pipecat_tandem.fusion.micro_turns.IngestStats`)."""
        return self._asm.stats

    @property
    def error_counts(self) -> dict[str, int]:
        """How many malformed frames of each kind were rejected."""
        return {k: n for k, (_, n) in self._errors.items()}

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Place media frames, emit due micro-turns, pass every frame on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            if self._tick and self._tick_task is None:
                self._tick_task = self.create_task(self._tick_loop(), name="micro_turn_tick")
            return
        if isinstance(frame, (EndFrame, CancelFrame)):
            await self._stop_tick()
            if isinstance(frame, EndFrame):
                await self._emit(self._asm.flush())
            await self.push_frame(frame, direction)
            return
        if direction == FrameDirection.DOWNSTREAM and isinstance(frame, InputAudioRawFrame):
            await self.push_frame(frame, direction)
            await self._on_audio(frame)
            await self._emit(self._asm.poll(self._clock.now()))
        elif direction == FrameDirection.DOWNSTREAM and isinstance(frame, InputImageRawFrame):
            await self.push_frame(frame, direction)
            await self._on_image(frame)
            await self._emit(self._asm.poll(self._clock.now()))
        else:
            await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        """Stop the window timer."""
        await self._stop_tick()
        await super().cleanup()

    async def _stop_tick(self) -> None:
        if self._tick_task is not None:
            await self.cancel_task(self._tick_task)
            self._tick_task = None

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self._asm.window / 2)
            await self._emit(self._asm.poll(self._clock.now()))

    async def _reject(self, kind: str, message: str) -> None:
        now = self._clock.now()
        last, count = self._errors.get(kind, (-math.inf, 0))
        count += 1
        if now - last >= self._error_interval:
            self._errors[kind] = (now, count)
            await self.push_error(f"{self.name}: {message} (rejected {count} so far)")
        else:
            self._errors[kind] = (last, count)
            logger.debug(f"{self}: {message}")

    @staticmethod
    def _stamped_time(frame: Frame) -> float | None:
        t = frame.metadata.get("session_time") if frame.metadata else None
        if isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t):
            return float(t)
        return None

    async def _on_audio(self, frame: InputAudioRawFrame) -> None:
        rate, channels = frame.sample_rate, frame.num_channels
        if not 8000 <= rate <= 192000:
            await self._reject("audio_rate", f"unsupported audio sample rate {rate} Hz")
            return
        if not 1 <= channels <= 8:
            await self._reject("audio_channels", f"unsupported channel count {channels}")
            return
        if not frame.audio:
            await self._reject("audio_empty", "empty audio frame")
            return
        try:
            mono = to_mono(frame.audio, num_channels=channels)
        except ValueError as e:
            await self._reject("audio_layout", str(e))
            return
        now = self._clock.now()
        source = frame.transport_source or ""
        stamped = self._stamped_time(frame)
        stream = self._streams.get(source)
        if stream is None or stream.in_rate != rate:
            stream = self._streams[source] = _AudioStream(rate)
        if stamped is not None and stream.t0 is not None:
            expected = stream.t0 + stream.n_in / rate
            if abs(stamped - expected) > 1e-3:  # not contiguous: restart the resampler
                stream = self._streams[source] = _AudioStream(rate)
        if stamped is not None and stream.t0 is None:
            stream.t0 = stamped
        out = stream.rs.process(mono)
        start = None
        if stamped is not None and stream.t0 is not None:
            start = stream.t0 + stream.n_out / _OUT_RATE
        stream.n_in += mono.size
        stream.n_out += out.size
        self._asm.add_audio(out, arrival=now, start=start, stream=source)

    async def _on_image(self, frame: InputImageRawFrame) -> None:
        try:
            width, height = int(frame.size[0]), int(frame.size[1])
        except (TypeError, ValueError, IndexError):
            await self._reject("image_size", f"image size {frame.size!r} is not (width, height)")
            return
        if not frame.image or width <= 0 or height <= 0:
            await self._reject("image_empty", f"empty image ({width}x{height})")
            return
        fmt = (frame.format or "RGB").upper()
        if fmt not in _CONVERSIONS:
            await self._reject("image_format", f"unsupported image format {frame.format!r}")
            return
        if width < self._min_side or height < self._min_side:
            await self._reject(
                "image_small", f"image {width}x{height} is smaller than {self._min_side} px"
            )
            return
        channels, code = _CONVERSIONS[fmt]
        if len(frame.image) != width * height * channels:
            await self._reject(
                "image_layout",
                f"{fmt} image {width}x{height} needs {width * height * channels} bytes, "
                f"got {len(frame.image)}",
            )
            return
        payload: Image
        if code is None and width * height <= self._max_pixels:
            payload = (width, height, bytes(frame.image))  # zero-copy for bytes
        else:
            payload = await asyncio.to_thread(self._convert, frame.image, width, height, fmt)
        stamped = self._stamped_time(frame)
        now = self._clock.now()
        if stamped is not None:
            # An image timed by its capture can come after its window's audio is
            # complete: windows wait their max_delay again.
            self._asm.early = False
        self._asm.add_image(payload, time=now if stamped is None else stamped, now=now)

    def _convert(self, data: bytes, width: int, height: int, fmt: str) -> Image:
        channels, code = _CONVERSIONS[fmt]
        img: np.ndarray = np.frombuffer(data, dtype=np.uint8).reshape(height, width, channels)
        if width * height > self._max_pixels:
            scale = math.sqrt(self._max_pixels / (width * height))
            width = max(self._min_side, int(width * scale))
            height = max(self._min_side, int(height * scale))
            img = np.asarray(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA))
            img = img.reshape(height, width, channels)
        if code is not None:
            img = np.asarray(cv2.cvtColor(img, code))
        return width, height, np.ascontiguousarray(img).tobytes()

    async def _emit(self, turns: list[MicroTurn[Image]]) -> None:
        if not turns:
            return
        async with self._lock:
            for turn in turns:
                await self.push_frame(
                    MicroTurnFrame(
                        index=turn.index,
                        start=turn.start,
                        duration=turn.duration,
                        audio=turn.audio.tobytes(),
                        sample_rate=_OUT_RATE,
                        images=[(t, w, h, data) for t, (w, h, data) in turn.images],
                        audio_gap=turn.audio_gap,
                    )
                )
