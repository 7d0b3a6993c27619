#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""pipecat's Silero VAD without model inference on digital silence.

A call's microphone is often digitally silent: a muted browser track sends
zeros, and Opus decodes a silent packet to exact zeros (measured: aiortc's
decoder and the transport's 48 kHz -> 16 kHz resampler give ``0`` for every
sample of an encoded silence). Silero still costs ~0.3 ms of CPU for each
32 ms window of those zeros (~1 % of a core per call) to say what is already
known: no voice. :class:`SilenceSkippingVADAnalyzer` answers such windows from
a table instead of running the model.

What counts as digital silence: a window whose samples are all exactly 0
(``DIGITAL_SILENCE_MAX_ABS``). That is what the media path delivers for a
silent or muted microphone, and nothing a microphone produces in a room: a
quiet room through a real front end sits at -70..-60 dBFS RMS, samples of
tens of LSB, so room noise still reaches the model, which decides whether it
is voice. A wider threshold (``max_abs=1`` takes ±1 LSB dither, -90 dBFS)
gives up exactness: the model's state on dither is not its state on zeros,
and on espeak speech after dithered silence that moved VAD transitions by
1-2 windows in 5 of 8 clips, against 0 of 32 for exact zeros.

Why a table and not just "return 0": Silero is recurrent, and its state keeps
moving on zeros (it never settles), so a model that skips silence and resumes
from where it stopped scores the next words differently; on espeak speech
that moved VAD transitions by a window or two in 28 of 32 clips. pipecat, though,
resets the model about every 2 s of quiet non-speech
(``silero._MODEL_RESET_INTERVAL_SECS``), and after a reset the state on
silence is a fixed sequence: reset state, then one step per window of zeros.
That sequence (63 windows at either rate, until the next reset is due) is computed
once per process and sample rate. So:

- while the VAD is ``QUIET`` and the audio is digital silence, windows go to
  the model as before until pipecat's own reset happens in that silence;
- from then on they are skipped: the score is the table's (what the model
  says on zeros, ~0.002-0.009), pipecat's reset schedule is kept by the same
  bookkeeping, and the window count since the reset indexes the table;
- on the first window that is not skipped, the model is put in the table's
  state for that count, exactly where it would have been, and runs as usual.

On exact zeros the VAD's states are therefore pipecat's, window for window
(the tests check this on real speech after silence). The saving is every
window of a silent stretch past pipecat's first reset in it, which comes
0.2-2 s in: a muted microphone, a caller listening in digital silence. Such
stretches also skip the volume measurement (0.0 on exact zeros, see
``_get_smoothed_volume``) and the hop to the VAD's executor thread.

This leans on pipecat 1.14's internals (the Silero wrapper's state and
context, the reset bookkeeping, the volume tracker); the window-for-window
comparison in ``tests/test_silence_skipping_vad.py`` fails if they change.
"""

from __future__ import annotations

import threading
from importlib import resources
from typing import Any, ClassVar

import numpy as np
from pipecat.audio.utils import exp_smoothing
from pipecat.audio.vad.silero import (
    _MODEL_RESET_INTERVAL_SECS,
    SileroOnnxModel,
    SileroVADAnalyzer,
)
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from pipecat.audio.volume import VOLUME_WINDOW_SECS

# Largest |sample| (int16 LSB) of a window that is digital silence. Exact zeros
# only: the table below is the model on zeros, so only zeros resume exactly.
DIGITAL_SILENCE_MAX_ABS = 0


def is_digital_silence(samples: np.ndarray, max_abs: int = DIGITAL_SILENCE_MAX_ABS) -> bool:
    """Whether every int16 sample is within ``max_abs`` LSB of zero.

    Compares min and max rather than ``abs`` so -32768 cannot overflow.

    Args:
        samples: int16 PCM samples.
        max_abs: Largest magnitude still counted as silence.

    Returns:
        True for an empty array too (nothing to score).
    """
    if samples.size == 0:
        return True
    return int(samples.max()) <= max_abs and int(samples.min()) >= -max_abs


_session_lock = threading.Lock()
_shared_session: Any = None


def shared_silero_session() -> Any:
    """The process's one onnxruntime session of pipecat's bundled Silero model.

    Loaded on first use (~100 ms and ~10 MB, measured by
    ``benchmarks/bench_call_setup.py``), then shared by every analyzer. An
    ``InferenceSession`` holds only the weights and is safe to run from several
    threads at once; Silero's recurrent state and audio context are inputs and
    outputs of each run, kept per analyzer in its ``SileroOnnxModel``.
    """
    global _shared_session
    with _session_lock:
        if _shared_session is None:
            path = resources.files("pipecat.audio.vad.data").joinpath("silero_vad.onnx")
            # pipecat's own options (one thread, CPU provider), loaded its way.
            _shared_session = SileroOnnxModel(str(path), force_onnx_cpu=True).session
        return _shared_session


def _model_over(session: Any) -> SileroOnnxModel:
    """A ``SileroOnnxModel`` with fresh state over an already loaded session."""
    model = SileroOnnxModel.__new__(SileroOnnxModel)  # its __init__ only loads + resets
    model.session = session
    model.sample_rates = [8000, 16000]
    model.reset_states()
    return model


# Per sample rate: the model's recurrent state and score after k windows of
# zeros from a reset, k = 0.. until pipecat's next reset is due. Deterministic
# (same model, CPU provider, one thread), so one table serves every call.
_SilenceTrack = tuple[list[np.ndarray], list[float]]


class SilenceSkippingVADAnalyzer(SileroVADAnalyzer):
    """``SileroVADAnalyzer`` that does not run the model on digital silence.

    Drop-in: same constructor, parameters and states; the server builds one
    with no arguments per call, like the class it replaces. Unlike it, every
    analyzer runs the process's one Silero session (:func:`shared_silero_session`)
    with its own recurrent state, so a call's set-up loads nothing.
    ``inferences`` and ``skipped`` count the windows scored by the model and skipped.

    Example::

        vad = SilenceSkippingVADAnalyzer()
        vad.set_sample_rate(16000)
        state = await vad.analyze_audio(pcm_bytes)
    """

    _tracks: ClassVar[dict[int, _SilenceTrack]] = {}

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        params: VADParams | None = None,
        max_abs: int = DIGITAL_SILENCE_MAX_ABS,
        share_model: bool = True,
    ):
        """Set up over the bundled Silero model.

        Args:
            sample_rate: 8000 or 16000 Hz; None to take the pipeline's.
            params: VAD thresholds and timings (pipecat's defaults if None).
            max_abs: Largest |int16 sample| of a window that is digital silence.
            share_model: Run the process's shared session (default); False loads
                a session of its own, as pipecat's analyzer does.
        """
        if share_model:
            # SileroVADAnalyzer.__init__ is VADAnalyzer's plus a model load and
            # two counters: keep the rest, take the model over the shared session.
            VADAnalyzer.__init__(self, sample_rate=sample_rate, params=params)
            self._model = _model_over(shared_silero_session())
            self._windows_since_reset = 0
            self._low_confidence_windows = 0
        else:
            super().__init__(sample_rate=sample_rate, params=params)
        self._max_abs = max_abs
        self.inferences = 0
        self.skipped = 0
        # True once pipecat's reset happened inside the current quiet, silent
        # stretch: from there on the model's state is the table's.
        self._on_track = False
        # Exact-zero samples in a row, up to the latest window (for the volume).
        self._zero_run = 0

    async def analyze_audio(self, buffer: bytes) -> VADState:
        """VAD state after ``buffer``; silence that will be skipped stays on this thread.

        pipecat hands every 20 ms chunk to the analyzer's executor thread, so the
        model does not block the event loop. A chunk that can only reach skipped
        windows costs a few microseconds, less than the hop itself, so it is
        analysed inline. Calls are sequential (pipecat's VAD controller awaits
        each), so the executor is idle here and the state is not shared.

        Args:
            buffer: 16-bit mono PCM.

        Returns:
            The VAD state after this audio.
        """
        if (
            self._on_track
            and self._vad_state == VADState.QUIET
            and is_digital_silence(np.frombuffer(buffer, np.int16), self._max_abs)
            and is_digital_silence(np.frombuffer(self._vad_buffer, np.int16), self._max_abs)
        ):
            return self._run_analyzer(buffer)
        return await super().analyze_audio(buffer)

    def set_sample_rate(self, sample_rate: int) -> None:
        """Set the rate and make sure its silence table exists.

        Args:
            sample_rate: 8000 or 16000 Hz.
        """
        super().set_sample_rate(sample_rate)
        if self.sample_rate not in self._tracks:
            self._tracks[self.sample_rate] = self._trace_silence()
        # A model that has not run since its last reset (a new call) is at the
        # start of the table already.
        self._on_track = self._windows_since_reset == 0

    def voice_confidence(self, buffer: bytes) -> float:
        """Speech confidence of one window, from the table on digital silence.

        Args:
            buffer: One window of 16-bit mono PCM (512 samples at 16 kHz).

        Returns:
            Confidence between 0.0 and 1.0.
        """
        # _vad_state is still the state before this window (the base class
        # updates it from what we return), as in pipecat's own reset rule.
        silent = self._vad_state == VADState.QUIET and is_digital_silence(
            np.frombuffer(buffer, np.int16), self._max_abs
        )
        track = self._tracks.get(self.sample_rate)
        if silent and self._on_track and track is not None:
            k = self._windows_since_reset
            if k < len(track[1]):
                self.skipped += 1
                confidence = track[1][k]
                self._maybe_reset_model(confidence)
                return confidence
        if self._on_track:
            self._resume(track)
        self.inferences += 1
        # A float: pipecat returns a 1-element array here.
        confidence = float(np.ravel(super().voice_confidence(buffer))[0])
        # The reset, if due, happened in the call above.
        self._on_track = silent and self._windows_since_reset == 0
        return confidence

    def _get_smoothed_volume(self, audio: bytes) -> float:
        """The smoothed volume as pipecat computes it, without measuring exact zeros.

        The volume is BS.1770 loudness over the last 0.4 s (~70 us per window).
        When all of that is exact zeros it is below the standard's absolute gate,
        which pipecat normalises to 0.0, so 0.0 is the measurement, not a guess.
        """
        self._volume_tracker.update(audio, self.sample_rate)
        if np.frombuffer(audio, np.int16).any():
            self._zero_run = 0
        else:
            self._zero_run += len(audio) // 2
        if self._zero_run >= VOLUME_WINDOW_SECS * self.sample_rate:
            volume = 0.0
        else:
            volume = self._volume_tracker.volume
        return exp_smoothing(volume, self._prev_volume, self._smoothing_factor)

    def _resume(self, track: _SilenceTrack | None) -> None:
        """Put the model where it would be after the skipped silence."""
        self._on_track = False
        k = self._windows_since_reset
        if track is None or k == 0:
            return  # just reset (or no table): the model is in its reset state
        model = self._model
        model._state = track[0][k].copy()
        # After windows of zeros the audio context the model prepends is zeros.
        model._context = np.zeros((1, 64 if self.sample_rate == 16000 else 32), np.float32)
        model._last_sr = self.sample_rate
        model._last_batch_size = 1

    def _trace_silence(self) -> _SilenceTrack:
        """Run the model on zeros from a reset until pipecat's next reset is due."""
        window = self.num_frames_required()
        # pipecat resets once windows_since_reset * window >= interval * rate.
        due = -(-int(_MODEL_RESET_INTERVAL_SECS * self.sample_rate) // window)
        zeros = np.zeros(window, np.float32)
        model = self._model
        model.reset_states()
        states: list[np.ndarray] = [model._state.copy()]
        scores: list[float] = []
        for _ in range(due):
            scores.append(float(np.ravel(model(zeros, self.sample_rate))[0]))
            states.append(model._state.copy())
        model.reset_states()
        return states, scores
