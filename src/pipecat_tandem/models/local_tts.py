#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Offline text-to-speech: hibari's bundled voice "heart" as a pipecat ``TTSService``.

hibari (a 7.9 MB distilled Kokoro voice with its own G2P) synthesizes about
130x real time on one core and releases the GIL, so each sentence is
synthesized in a worker thread and yielded as soon as it is ready. Only the
bundled voice is used: hibari downloads its other voices on first use, which
the offline default must never do.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService

from pipecat_tandem.models.weights import hibari_voice_path
from pipecat_tandem.turns.speech_end import sound_onset

#: hibari's output rate.
HIBARI_SAMPLE_RATE = 24_000
#: Longer texts are refused rather than tying up the synthesizer for minutes.
MAX_TTS_CHARS = 5_000


def trim_leading_silence(
    audio: np.ndarray, sample_rate: int, *, keep_s: float = 0.01, level: float = 0.01
) -> np.ndarray:
    """Cut the quiet before the first sound down to ``keep_s``.

    hibari starts every synthesis with ~0.25-0.32 s of silence: time the user
    waits for nothing. A sound is any 10 ms with an RMS of at least ``level``
    (of full scale); the 10 ms kept before it hold the quiet start of that sound.
    Audio with no sound is returned unchanged.
    """
    start = sound_onset(audio, sample_rate, level=level, keep_s=keep_s)
    return audio[start:] if start else audio


# A whole number of four or more digits, not part of a decimal, time, date or code,
# with the word after it (to tell "5040 minutes" from "in 2027 it was").
_BARE_INT = re.compile(r"(?<![\d.,:/-])([1-9]\d{3,})(?![\d:/]|[.,]\d)(\s+[A-Za-z]+)?")


def speakable_numbers(text: str) -> str:
    """Group the digits of large whole numbers so the voice says them as amounts.

    hibari's G2P reads a bare four-digit number as a year: "5040 minutes" comes out
    as "fifty forty minutes", which a caller hears as a different number. With
    thousands separators it says "five thousand forty". Numbers that look like
    years (1100-2199 not followed by a plural word) are left alone.
    """

    def group(m: re.Match[str]) -> str:
        digits, after = m.group(1), m.group(2) or ""
        value = int(digits)
        counts_things = after.strip().lower().endswith("s")
        if len(digits) == 4 and 1100 <= value <= 2199 and not counts_things:
            return m.group(0)
        return f"{value:,}{after}"

    return _BARE_INT.sub(group, text)


def float_to_pcm16(audio: np.ndarray) -> bytes:
    """Float audio in [-1, 1] → little-endian int16 bytes (clipped)."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _session_without_arena(model_path: str, threads: int) -> Any:
    """The voice's onnxruntime session, as hibari makes it, minus the CPU memory arena.

    Every sentence has its own input length, and onnxruntime's arena keeps the
    blocks of each new size for good: 30 syntheses of 3-30 words grew a process
    by 31 MB, and the 100-call soak kept climbing (issue 13). Without the arena
    the tensors are plain allocations freed after each run (30 syntheses: +4 MB,
    flat after the first). hibari offers no option for it, so its session is
    replaced once, when the voice loads.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])


class HibariVoice:
    """One loaded hibari voice, shared by every call's TTS service.

    A voice holds an onnxruntime session and its G2P (tens of MB and a few
    threads); loading one per call grew a long-lived server without bound.
    Syntheses are serialized by a lock: hibari's G2P keeps state between calls,
    and one synthesis at ~130x real time leaves the other call waiting
    milliseconds.

    Args:
        threads: onnxruntime threads.

    Raises:
        ModelUnavailableError: hibari-tts is not installed.
    """

    def __init__(self, *, threads: int = 1) -> None:
        from hibari import Hibari

        voice_file: Path = hibari_voice_path()
        # Passing the bundled file as `model` keeps hibari from resolving (and
        # possibly downloading) a voice by name.
        self._hibari = Hibari(voice="heart", model=str(voice_file), threads=threads)
        self._hibari.sess = _session_without_arena(self._hibari.model_path, threads)
        self._lock = threading.Lock()

    def split_sentences(self, text: str) -> list[str]:
        """The sentences hibari would speak ``text`` as."""
        return list(self._hibari.split_sentences(text))

    def synthesize(self, text: str, seed: int | None) -> list[np.ndarray]:
        """Synthesize ``text`` (blocking): one float32 24 kHz array per sentence.

        Each sentence's leading silence is cut to 10 ms; the silence hibari
        leaves at the end of a sentence still separates it from the next.
        """
        with self._lock:
            chunks = list(self._hibari.stream(text, seed=seed))
        return [trim_leading_silence(chunk, HIBARI_SAMPLE_RATE) for chunk in chunks]


class HibariTTSService(TTSService):
    """Speaks with hibari's bundled "heart" voice (24 kHz), sentence by sentence.

    Example::

        tts = HibariTTSService()
        await tts.warm()
    """

    def __init__(
        self,
        *,
        threads: int = 1,
        seed: int | None = 0,
        voice: HibariVoice | None = None,
        synthesis_timeout_s: float = 15.0,
        **kwargs: Any,
    ) -> None:
        """Create the service and load the voice (unless one is given).

        Args:
            threads: onnxruntime threads (1 is plenty at ~130x real time).
            voice: A loaded voice to share (see :class:`HibariVoice`).
            seed: Fixes hibari's noise so the same text sounds the same
                (``None`` = random).
            synthesis_timeout_s: Give up on a sentence whose synthesis takes longer
                (a hung synthesizer would otherwise hold every later reply back).
                The rest of that reply is not spoken; the next one is.
            **kwargs: Passed to pipecat's ``TTSService``.

        Raises:
            ModelUnavailableError: hibari-tts is not installed.
            ValueError: A ``synthesis_timeout_s`` that is not positive.
        """
        if not synthesis_timeout_s > 0:  # also refuses NaN
            raise ValueError(f"synthesis_timeout_s must be > 0, got {synthesis_timeout_s!r}")
        settings = kwargs.pop("settings", None) or TTSSettings(
            model="hibari", voice="heart", language=None
        )
        super().__init__(push_start_frame=True, push_stop_frames=True, settings=settings, **kwargs)
        self._voice = voice if voice is not None else HibariVoice(threads=threads)
        self._seed = seed
        self._synthesis_timeout_s = synthesis_timeout_s
        self._warm = False
        self._resampler = create_stream_resampler()

    def can_generate_metrics(self) -> bool:
        """Whether TTFB metrics are reported (yes)."""
        return True

    @property
    def voice(self) -> HibariVoice:
        """The loaded voice (to share with the next session's service)."""
        return self._voice

    def synthesize(self, text: str) -> list[np.ndarray]:
        """Synthesize ``text`` (blocking): one float32 24 kHz array per sentence."""
        return self._voice.synthesize(text, self._seed)

    async def warm(self) -> None:
        """Run one tiny synthesis so the lazy G2P and onnxruntime are initialized."""
        if not self._warm:
            await asyncio.to_thread(self.synthesize, "Warm up.")
            self._warm = True

    async def _synthesize_off_loop(self, sentence: str) -> list[np.ndarray]:
        """Synthesize one sentence in a worker thread (the loop stays free)."""
        return await asyncio.to_thread(self.synthesize, sentence)

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        """Synthesize ``text``; yields one ``TTSAudioRawFrame`` per sentence."""
        if not isinstance(text, str) or not text.strip():
            return
        if len(text) > MAX_TTS_CHARS:
            yield ErrorFrame(f"text too long to speak ({len(text)} > {MAX_TTS_CHARS} characters)")
            return
        await self.start_tts_usage_metrics(text)
        sentences = self._voice.split_sentences(speakable_numbers(text))
        try:
            for sentence in sentences:
                try:
                    chunks = await asyncio.wait_for(
                        self._synthesize_off_loop(sentence), self._synthesis_timeout_s
                    )
                except TimeoutError:
                    yield ErrorFrame(
                        f"speech synthesis took over {self._synthesis_timeout_s:g} s; "
                        "the rest of this reply is not spoken"
                    )
                    return
                for chunk in chunks:
                    if not len(chunk):
                        continue
                    await self.stop_ttfb_metrics()
                    pcm = float_to_pcm16(chunk)
                    if self.sample_rate != HIBARI_SAMPLE_RATE:
                        pcm = await self._resampler.resample(
                            pcm, HIBARI_SAMPLE_RATE, self.sample_rate
                        )
                    yield TTSAudioRawFrame(
                        audio=pcm,
                        sample_rate=self.sample_rate,
                        num_channels=1,
                        context_id=context_id,
                    )
        except Exception as e:  # a synthesis error must not kill the pipeline
            logger.exception(f"{self}: synthesis failed")
            yield ErrorFrame(f"speech synthesis failed: {e}")
        finally:
            await self.stop_ttfb_metrics()
