#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Whisper on a window as long as the utterance, not a fixed 30 seconds.

Whisper's encoder is trained on 30 s windows, and faster-whisper always encodes
one, so a 2 s question costs as much as 30 s of audio: 1.3-1.5 s on one core of
the 2-core machine we measure on, most of a turn's latency budget. CTranslate2's
encoder accepts a shorter window (whisper.cpp's ``audio_ctx`` trick): a window
of the utterance plus 2 s of silence encodes several times faster and gives the
same words on clear speech (``benchmarks/bench_stt_window.py``).

Each phrase (below) starts exactly 0.5 s before its first sound
(:func:`with_lead`). The second of quiet a segmented STT keeps before the speech
is cut to that: it is encoder time spent on nothing. Less is made up with
silence: with the speech at the very start of the window the decoder says the
sentence, then starts it again and stops part-way ("How many days are in a week?
How many days are in a"). That is what a phrase after a pause and a segment
carried on from the last one's pause begin with (0.05-0.15 s of quiet), and
what a transcription of the bare speech got.

A short window has two more known failures. With too little silence after the
speech the decoder can loop ("Yes? Yes? Yes?"). And after a long pause inside the
utterance it can end after the first phrase, dropping the rest ("What is the
capital of France? ... And of Spain?" came back without Spain). The audio is
therefore cut at pauses of 0.3 s or more (:func:`phrase_spans`) and each phrase
gets its own window. :class:`WindowedWhisper` bounds the decode by the audio's
length and, when the result looks like a loop or never ended, looks again with
the speech shifted by 0.5 s (loops depend on where the speech sits in the
window), 6 s of silence after it and no previous words (a one-word phrase, or
one conditioned on the words before it, looped on both 2 s looks: "Thanks.
Thanks. Thanks.", "Never mind. Never mind.") and, if that loops too, on the
full 30 s window (1.0-1.4 s, against ~0.4 s). The decision is the
pure :func:`looks_like_a_loop`, or :func:`restarted_tail` for a sentence started
over and cut off, which the full window's result is cut of if it still has one.

"No speech" is Whisper's own rule (:func:`is_no_speech`): a high no-speech
probability *and* an unsure decode. On a fitted window the probability alone is
a poor judge: correct, confident transcripts of the conversation suite's caller
came with 0.41-0.45 ("Tell me a short joke.", average log-probability -0.23), over
pipecat's 0.4, and were dropped as silence, so the turn had no words; coughs,
breaths and silence score 0.82-0.98 with log-probabilities of -1.36 to -2.0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipecat_tandem.turns.speech_end import first_sound, window_rms

#: Whisper's frames per second of audio (10 ms hop) and its full window.
FRAMES_PER_SECOND = 100
FULL_WINDOW_FRAMES = 3000
#: Silence put before the speech for the second short look at a looping phrase.
SECOND_LOOK_SHIFT = 8000
#: Silence after the speech in the second look's window (at least the first's):
#: with 2 s, one-word phrases ("Goodbye.", "Thanks.") looped on both short looks.
SECOND_LOOK_PAD_SECONDS = 6.0
#: The most of the previous words a decode is conditioned on (Whisper allows 223;
#: each token costs ~1.2 ms of decoding with tiny.en on one core, the last
#: sentence is what helps).
MAX_PREVIOUS_TOKENS = 16
#: A decode at or below this average log-probability is unsure (Whisper's and
#: faster-whisper's ``log_prob_threshold``).
LOG_PROB_THRESHOLD = -1.0

_WORD = re.compile(r"[\w']+")
#: A sentence's end: its punctuation and the space after it ("3.5" is no end).
_SENTENCE_END = re.compile(r"[.?!]+(?:\s+|$)")


def window_frames(audio_frames: int, pad_seconds: float) -> int:
    """Frames to encode for ``audio_frames`` of speech: audio + pad, even, ≤ 30 s."""
    if audio_frames < 0 or pad_seconds < 0:
        raise ValueError("audio_frames and pad_seconds must be >= 0")
    frames = min(FULL_WINDOW_FRAMES, audio_frames + int(pad_seconds * FRAMES_PER_SECOND))
    return frames + frames % 2  # the encoder's stride-2 convolution wants an even count


def phrase_spans(
    samples: np.ndarray, *, sample_rate: int = 16000, min_pause_s: float = 0.3
) -> list[tuple[int, int]]:
    """Cut the audio in the middle of each pause of ``min_pause_s`` or more.

    The spans cover the whole audio, in order, so nothing is left out. "Sound" is
    any 20 ms no more than 26 dB below the loudest; audio with no sound, or no
    long pause, is one span.
    """
    window = sample_rate // 50
    rms = window_rms(samples, window)
    if rms.size == 0:
        return [(0, samples.size)]
    loud = np.nonzero(rms >= 0.05 * rms.max())[0] if rms.max() > 0 else np.array([], int)
    cuts = [
        (int(a) + int(b) + 1) // 2 * window
        for a, b in zip(loud[:-1], loud[1:], strict=True)
        if (b - a - 1) * window >= min_pause_s * sample_rate
    ]
    edges = [0, *cuts, samples.size]
    return list(zip(edges[:-1], edges[1:], strict=True))


def with_lead(samples: np.ndarray, lead_s: float, *, sample_rate: int = 16000) -> np.ndarray:
    """``samples`` with exactly ``lead_s`` of quiet before the first sound.

    More quiet is cut (encoder time spent on nothing); less is made up with
    zeros. Of 30 of the caller's sentences starting at their first sound, 10
    looped or said the sentence again ("How many days are in a week? How many
    days are in a"), 4 of them past the loop check; with 0.5 s before them, none.
    A phrase after a pause, or a segment that goes on after a short one, starts
    only 0.05-0.15 s before its first word. A sound is any 10 ms within 40 dB of
    the loudest; audio without one is returned as it is.
    """
    sound = first_sound(samples, sample_rate, level=0.01, relative=True)
    if sound is None:
        return samples
    start = sound - int(lead_s * sample_rate)
    if start >= 0:
        return samples[start:]
    return np.concatenate([np.zeros(-start, samples.dtype), samples])


def max_decode_tokens(audio_seconds: float) -> int:
    """An upper bound on the tokens of real speech of this length.

    Fast speech is ~4 words (~5 tokens) a second; twice that, plus room for a
    one-word utterance, leaves every real transcript inside the bound and cuts a
    runaway loop short.
    """
    return min(224, 12 + int(10 * max(0.0, audio_seconds)))


def looks_like_a_loop(text: str) -> bool:
    """Whether a transcript ends in the repetition a short window can cause.

    The whole text being one phrase said twice or more ("Never mind never
    mind"), or its end repeating a phrase of 3+ words twice or a 1-2 word phrase
    three times. Real speech does that too ("bye bye"), in which case the caller
    spends a full-window pass to be sure.
    """
    words = [w.lower() for w in _WORD.findall(text)]
    for size in range(1, len(words) // 2 + 1):
        if len(words) % size == 0 and words == words[:size] * (len(words) // size):
            return True
    for size in range(1, len(words) // 2 + 1):
        repeats_needed = 3 if size < 3 else 2
        if size * repeats_needed > len(words):
            break
        tail = words[-size:]
        if all(
            words[-(k + 1) * size : len(words) - k * size] == tail for k in range(repeats_needed)
        ):
            return True
    return False


def restarted_tail(text: str) -> int:
    """How many words at the end of ``text`` start one of its sentences over (0: none).

    A short window's other loop: the sentence, then its opening again, cut off
    ("How many days are in a week? How many days are in a"). The words after the
    last sentence end count when there are two or more and they are the first
    words of an earlier sentence of the text, not all of it (a whole sentence
    said twice is :func:`looks_like_a_loop`'s).
    """
    sentences = [_WORD.findall(part.lower()) for part in _SENTENCE_END.split(text)]
    *said, tail = sentences
    if len(tail) < 2:
        return 0
    for sentence in said:
        if len(tail) < len(sentence) and sentence[: len(tail)] == tail:
            return len(tail)
    return 0


def without_restarted_tail(text: str) -> str:
    """``text`` without the words :func:`restarted_tail` counts (unchanged if none)."""
    count = restarted_tail(text)
    if not count:
        return text
    spans = list(_WORD.finditer(text))
    return text[: spans[-count].start()].rstrip()


def _suspect(text: str | None) -> bool:
    """Whether a short window's decode never ended, loops or starts its sentence over."""
    return text is None or looks_like_a_loop(text) or restarted_tail(text) > 0


def is_no_speech(
    text: str,
    no_speech_prob: float,
    avg_logprob: float,
    threshold: float,
    log_prob_threshold: float = LOG_PROB_THRESHOLD,
) -> bool:
    """Whether a decode is of no speech: no words, or likely silence *and* unsure.

    Whisper's (and faster-whisper's) rule: a high ``no_speech_prob`` is overruled
    by a confident decode, whose words are kept. A decode without a word (". . .",
    which Whisper writes for 2 s of digital silence, confidently) is never speech.
    """
    if not _WORD.search(text):
        return True
    return no_speech_prob >= threshold and avg_logprob <= log_prob_threshold


def repeats_the_prompt(previous: str, text: str) -> bool:
    """Whether ``text`` is the end of ``previous`` again, word for word.

    Conditioned on the previous words, the decoder can copy them: a cough 0.5 s
    after "What is the capital of France?" came back as that question, confidently.
    """
    said = [w.lower() for w in _WORD.findall(previous)]
    heard = [w.lower() for w in _WORD.findall(text)]
    return bool(heard) and len(heard) <= len(said) and said[-len(heard) :] == heard


@dataclass(frozen=True)
class WindowedResult:
    """One transcription.

    Parameters:
        text: The words ("" for no speech).
        window_frames: Frames encoded (3000 = the full window).
        fell_back: Whether the first short window's result was discarded (for a
            second look with the speech shifted, or the full window).
        no_speech_prob: Whisper's probability that the window holds no speech
            (of several phrases: the lowest).
        avg_logprob: The decode's average log-probability per token (of several
            phrases: the highest).
    """

    text: str
    window_frames: int
    fell_back: bool
    no_speech_prob: float
    avg_logprob: float


class WindowedWhisper:
    """Whisper transcription on a window fitted to the audio (blocking).

    Args:
        model: A loaded ``faster_whisper.WhisperModel``.
        language: Language code for multilingual models (ignored by ``.en`` ones).
        pad_seconds: Silence after the audio in the window; less makes loops
            likelier, more costs encoder time.
        lead_seconds: Quiet before each phrase's first sound (any 10 ms within
            40 dB of the loudest): more is not encoded, less is made up.
        beam_size: Decoding beam width (1 = greedy).

    Example::

        whisper = WindowedWhisper(WhisperModel(path, compute_type="int8"))
        result = whisper.transcribe(samples_16k_float32)
    """

    def __init__(
        self,
        model: Any,
        *,
        language: str | None = "en",
        pad_seconds: float = 2.0,
        lead_seconds: float = 0.5,
        beam_size: int = 1,
    ):
        if pad_seconds < 0 or lead_seconds < 0:
            raise ValueError("pad_seconds and lead_seconds must be >= 0")
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        self._beam_size = beam_size
        from faster_whisper.tokenizer import Tokenizer

        self._model = model
        self._pad_seconds = pad_seconds
        self._lead_seconds = lead_seconds
        multilingual = bool(model.model.is_multilingual)
        tokenizer = Tokenizer(
            model.hf_tokenizer,
            multilingual,
            task="transcribe",
            language=(language or "en") if multilingual else None,
        )
        self._tokenizer = tokenizer
        self._prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]

    def transcribe(self, samples: np.ndarray, previous: str = "") -> WindowedResult:
        """Transcribe 16 kHz mono float32 samples in [-1, 1].

        Args:
            samples: The audio.
            previous: Words said just before it (Whisper's previous-text prompt):
                on its own the fitted window dropped the soft first word of a
                sentence said 0.15 s after another ("Are you today?"), and
                conditioned on "Hi there." heard "How are you today?".

        Raises:
            ValueError: The samples are not a 1-D float array.
        """
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
            raise ValueError("samples must be a 1-D float array")
        if samples.size == 0:
            return WindowedResult("", 0, False, 1.0, -math.inf)
        result = self._transcribe_phrases(samples, previous)
        if previous and repeats_the_prompt(previous, result.text):
            # The decoder copied its prompt: what the audio says, it says without it.
            result = self._transcribe_phrases(samples, "")
        return result

    def _transcribe_phrases(self, samples: np.ndarray, previous: str) -> WindowedResult:
        """Each phrase on its own window, conditioned on the words before it."""
        phrases: list[WindowedResult] = []
        for a, b in phrase_spans(samples):
            said = " ".join([previous, *(p.text for p in phrases)]).strip()
            phrases.append(self._transcribe_phrase(samples[a:b], self._prompt_after(said)))
        return WindowedResult(
            " ".join(p.text for p in phrases if p.text),
            sum(p.window_frames for p in phrases),
            any(p.fell_back for p in phrases),
            min(p.no_speech_prob for p in phrases),
            max(p.avg_logprob for p in phrases),
        )

    def _prompt_after(self, said: str) -> list[int]:
        """The decoder's prompt, conditioned on the last words of ``said`` if any."""
        if not said:
            return self._prompt
        words = self._tokenizer.encode(" " + said)[-MAX_PREVIOUS_TOKENS:]
        return [self._tokenizer.sot_prev, *words, *self._prompt]

    def _transcribe_phrase(self, samples: np.ndarray, prompt: list[int]) -> WindowedResult:
        """One phrase on a fitted window, or the full one if the result loops."""
        samples = with_lead(samples.astype(np.float32, copy=False), self._lead_seconds)
        seconds = samples.size / 16000
        features = self._model.feature_extractor(samples)
        frames = window_frames(features.shape[1], self._pad_seconds)
        text, no_speech, logprob = self._decode(
            features, frames, max_decode_tokens(seconds), prompt
        )
        if frames >= FULL_WINDOW_FRAMES or not _suspect(text):
            return WindowedResult(
                without_restarted_tail(text or ""), frames, False, no_speech, logprob
            )
        # A loop depends on where the speech sits in the window: a second short
        # look with the speech shifted is ~3x cheaper than the full window.
        shifted = np.concatenate([np.zeros(SECOND_LOOK_SHIFT, np.float32), samples])
        features = self._model.feature_extractor(shifted)
        frames = window_frames(features.shape[1], max(self._pad_seconds, SECOND_LOOK_PAD_SECONDS))
        # Nor conditioned on the words before it, which can start the repeat
        # ("Actually..." then "Never mind. Never mind." on both 2 s looks, "Never
        # mind." alone); Whisper itself stops conditioning on earlier text after
        # a decode that needed a high temperature (prompt_reset_on_temperature).
        text, no_speech, logprob = self._decode(
            features, frames, max_decode_tokens(seconds + 0.5), self._prompt
        )
        if frames < FULL_WINDOW_FRAMES and not _suspect(text):
            return WindowedResult(text or "", frames, True, no_speech, logprob)
        full_text, no_speech, logprob = self._decode(features, FULL_WINDOW_FRAMES, 224, prompt)
        # A sentence begun again and cut off is the decoder's, not the caller's: left
        # in, the turn would seem to end mid-sentence.
        text = without_restarted_tail(full_text or "")
        return WindowedResult(text, FULL_WINDOW_FRAMES, True, no_speech, logprob)

    def _decode(
        self, features: np.ndarray, frames: int, max_tokens: int, prompt: list[int]
    ) -> tuple[str | None, float, float]:
        """Encode ``frames`` and decode (greedy unless ``beam_size`` > 1).

        Returns the text (None if it never ended), the no-speech probability and
        the average log-probability per token, as faster-whisper reckons it.
        """
        import ctranslate2

        window = self._silence(frames)
        used = min(frames, features.shape[1])
        window[:, :used] = features[:, :used]
        encoded = self._model.model.encode(
            ctranslate2.StorageView.from_array(window[np.newaxis]), to_cpu=False
        )
        result = self._model.model.generate(
            encoded,
            [prompt],
            beam_size=self._beam_size,
            max_length=max_tokens + len(prompt) - len(self._prompt),
            return_no_speech_prob=True,
            return_scores=True,
            suppress_blank=True,
        )[0]
        tokens = result.sequences_ids[0]
        text = self._tokenizer.decode([t for t in tokens if t < self._tokenizer.eot]).strip()
        ended = len(tokens) < max_tokens - len(self._prompt)
        # The score is the sum of log-probabilities over the length (length_penalty 1).
        logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
        return (text if ended else None), float(result.no_speech_prob), logprob

    @staticmethod
    def _silence(frames: int) -> np.ndarray:
        """An empty window, padded with zeros as faster-whisper pads its own."""
        return np.zeros((80, frames), dtype=np.float32)
