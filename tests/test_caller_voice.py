"""The caller's pauses are what the script says, as heard; a steady voice repeats itself exactly."""

import numpy as np
import pytest

from pipecat_tandem.bench.caller.voice import PEER_RATE, SILENCE_RMS, join_sentences, trim_silence


def _sentence(lead_s: float, voice_s: float, trail_s: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    voice = 0.3 * np.sin(np.linspace(0, 2000, int(voice_s * PEER_RATE))).astype(np.float32)
    quiet = lambda s: rng.normal(0, SILENCE_RMS / 10, int(s * PEER_RATE)).astype(np.float32)  # noqa: E731
    return np.concatenate([quiet(lead_s), voice, quiet(trail_s)])


def _gaps(audio: np.ndarray) -> list[float]:
    win = PEER_RATE // 100
    n = len(audio) // win
    loud = np.sqrt(np.mean(audio[: n * win].reshape(n, win) ** 2, axis=1)) >= SILENCE_RMS
    gaps, run = [], 0
    for x in loud:
        if x:
            if run:
                gaps.append(run / 100)
            run = 0
        else:
            run += 1
    return gaps


def test_trim_removes_the_synthesizers_padding_only():
    audio = _sentence(0.05, 1.0, 0.2)
    out = trim_silence(audio)
    assert abs(len(out) / PEER_RATE - 1.0) <= 0.011
    assert len(trim_silence(np.zeros(PEER_RATE, np.float32))) == 0
    assert len(trim_silence(np.zeros(3, np.float32))) == 0


def test_joined_sentences_are_exactly_the_pauses_apart_as_heard():
    pieces = [_sentence(0.05, 0.8, 0.17), _sentence(0.05, 0.6, 0.12), _sentence(0.01, 0.5, 0.2)]
    gaps = _gaps(join_sentences(pieces, (0.7, 0.6)))
    assert gaps == pytest.approx([0.7, 0.6], abs=0.011)
    assert _gaps(join_sentences(pieces[:2], 0.8)) == pytest.approx([0.8], abs=0.011)


def test_bad_pauses_are_refused():
    with pytest.raises(ValueError, match="pauses"):
        join_sentences([_sentence(0, 0.1, 0)], [])
    with pytest.raises(ValueError, match="pauses"):
        join_sentences([_sentence(0, 0.1, 0)], -0.1)


def test_a_steady_voice_says_a_sentence_the_same_way_every_time():
    pytest.importorskip("piper")
    from pipecat_tandem.bench.caller.voice import CallerVoice

    steady, varied = CallerVoice(steady=True), CallerVoice()
    line = "Please work out twelve times five."
    assert np.array_equal(steady.sentence(line), steady.sentence(line))
    # The benchmarks' voice keeps piper's noise: two takes differ, as a person's do.
    a, b = varied.sentence(line), varied.sentence(line)
    assert len(a) != len(b) or not np.array_equal(a, b)
