#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Frames and value types of the tandem plugin.

Background job frames are ``SystemFrame``s: they are produced asynchronously by
the background branch, must never be dropped by an interruption, and must not
wait behind a long LLM generation in a processor's data queue before the
:class:`~pipecat_tandem.processors.ResultInterleaver` learns about them.

Perception frames (micro-turns, fused features, cues) are ``DataFrame``s/
``SystemFrame``s that travel alongside the ordinary media frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from numbers import Integral, Real
from typing import Any

from pipecat.frames.frames import DataFrame, SystemFrame


class DeliveryPolicy(StrEnum):
    """When a background output may reach the user (after Gemini Live's scheduling).

    Attributes:
        WHEN_IDLE: At the next natural turn gap (default).
        INTERRUPT: Urgent: now, even over the bot (never over the user).
        SILENT: Into the conversation context only; nothing is spoken.
    """

    WHEN_IDLE = "when_idle"
    INTERRUPT = "interrupt"
    SILENT = "silent"

    @classmethod
    def parse(cls, value: str | DeliveryPolicy | None) -> DeliveryPolicy:
        """Parse a policy name, raising ``ValueError`` with the valid names."""
        if value is None or value == "":
            return cls.WHEN_IDLE
        if isinstance(value, DeliveryPolicy):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            names = ", ".join(p.value for p in cls)
            raise ValueError(
                f"unknown delivery policy {value!r}; expected one of: {names}"
            ) from None


class JobState(StrEnum):
    """Lifecycle of a background job: ``queued → running → done | failed | cancelled | stale``."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    STALE = "stale"

    @property
    def is_terminal(self) -> bool:
        """Whether no more work happens for a job in this state."""
        return self not in (JobState.QUEUED, JobState.RUNNING)


def _require_str(frame: object, name: str, *, empty_ok: bool = True) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``frame.name`` is a (non-empty) string."""
    value = getattr(frame, name)
    if not isinstance(value, str):
        raise TypeError(f"{type(frame).__name__}.{name} must be a str, got {type(value).__name__}")
    if not empty_ok and not value.strip():
        raise ValueError(f"{type(frame).__name__}.{name} must not be empty")


def _require_bool(frame: object, name: str) -> None:
    value = getattr(frame, name)
    if not isinstance(value, bool):
        raise TypeError(f"{type(frame).__name__}.{name} must be a bool, got {type(value).__name__}")


def _require_number(frame: object, name: str, *, integral: bool = False) -> None:
    # Real/Integral so numpy scalars pass; bool is rejected because it is never meant.
    value = getattr(frame, name)
    kind = Integral if integral else Real
    if isinstance(value, bool) or not isinstance(value, kind):
        want = "an int" if integral else "a number"
        raise TypeError(f"{type(frame).__name__}.{name} must be {want}, got {type(value).__name__}")
    if not integral and not math.isfinite(float(value)):
        raise ValueError(f"{type(frame).__name__}.{name} must be finite, got {value!r}")


def _require_window(frame: Any) -> None:
    """Check a micro-turn's ``index`` (>= 0), ``start`` (>= 0) and ``duration`` (> 0)."""
    name = type(frame).__name__
    _require_number(frame, "index", integral=True)
    if frame.index < 0:
        raise ValueError(f"{name}.index must be >= 0, got {frame.index}")
    _require_number(frame, "start")
    if frame.start < 0:
        raise ValueError(f"{name}.start must be >= 0 (session time), got {frame.start}")
    _require_number(frame, "duration")
    if frame.duration <= 0:
        raise ValueError(f"{name}.duration must be > 0, got {frame.duration}")


def _check_image(i: int, image: object) -> None:
    """Check one ``(session_time, width, height, rgb_bytes)`` entry of ``MicroTurnFrame.images``."""
    where = f"MicroTurnFrame.images[{i}]"
    if not isinstance(image, tuple) or len(image) != 4:
        raise TypeError(f"{where} must be a (time, width, height, rgb) tuple, got {image!r:.60}")
    t, w, h, data = image
    if isinstance(t, bool) or not isinstance(t, Real) or not math.isfinite(float(t)):
        raise ValueError(f"{where}: time must be a finite number, got {t!r:.40}")
    for label, n in (("width", w), ("height", h)):
        if isinstance(n, bool) or not isinstance(n, Integral) or n <= 0:
            raise ValueError(f"{where}: {label} must be a positive int, got {n!r:.40}")
    if not isinstance(data, (bytes, bytearray)) or len(data) != w * h * 3:
        raise ValueError(f"{where}: not {w}x{h} RGB ({w * h * 3} bytes)")


def _coerce_policy(frame: Any) -> None:
    # DeliveryPolicy.parse raises ValueError naming the valid policies.
    value = frame.policy
    if not isinstance(value, (str, DeliveryPolicy)):
        raise TypeError(
            f"{type(frame).__name__}.policy must be a DeliveryPolicy, got {type(value).__name__}"
        )
    object.__setattr__(frame, "policy", DeliveryPolicy.parse(value))


#
# Background job frames
#


@dataclass
class BackgroundResultFrame(SystemFrame):
    """A result (final or partial) produced by a background job.

    Parameters:
        job_id: The job that produced it.
        text: The result text.
        is_final: Whether this is the job's final result (a partial otherwise).
        task: The task as the interaction model phrased it (for merged deliveries).
        stale: Set when the user cancelled or moved away from the request.
        policy: How the result should be delivered.
        verbatim: Speak ``text`` exactly as given (timed reminders, counts) instead of
            letting the interaction model reword it.
    """

    job_id: str
    text: str
    is_final: bool = True
    task: str = ""
    stale: bool = False
    policy: DeliveryPolicy = DeliveryPolicy.WHEN_IDLE
    verbatim: bool = False

    def __post_init__(self):
        super().__post_init__()
        _require_str(self, "job_id", empty_ok=False)
        _require_str(self, "text")
        _require_str(self, "task")
        for name in ("is_final", "stale", "verbatim"):
            _require_bool(self, name)
        _coerce_policy(self)


@dataclass
class BackgroundProgressFrame(SystemFrame):
    """A progress note from a running background job (not spoken by default).

    Parameters:
        job_id: The job reporting progress.
        text: A short human-readable note ("calling calculator").
    """

    job_id: str
    text: str

    def __post_init__(self):
        super().__post_init__()
        _require_str(self, "job_id", empty_ok=False)
        _require_str(self, "text")


@dataclass
class BackgroundErrorFrame(SystemFrame):
    """A background job failed (error, timeout or garbage output).

    Parameters:
        job_id: The failed job.
        error: What went wrong, short and honest.
        task: The task as phrased, so the user can be told what failed.
        policy: How the failure notice should be delivered.
    """

    job_id: str
    error: str
    task: str = ""
    policy: DeliveryPolicy = DeliveryPolicy.WHEN_IDLE

    def __post_init__(self):
        super().__post_init__()
        _require_str(self, "job_id", empty_ok=False)
        _require_str(self, "error")
        _require_str(self, "task")
        _coerce_policy(self)


@dataclass
class BackgroundJobStateFrame(SystemFrame):
    """A job changed state (for UIs, the "now" view and the event log).

    Parameters:
        job_id: The job.
        state: Its new state.
        task: The task as phrased.
        detail: Optional reason (e.g. why it went stale).
    """

    job_id: str
    state: JobState
    task: str = ""
    detail: str = ""

    def __post_init__(self):
        super().__post_init__()
        _require_str(self, "job_id", empty_ok=False)
        if not isinstance(self.state, (str, JobState)):
            raise TypeError(f"BackgroundJobStateFrame.state must be a JobState, got {self.state!r}")
        self.state = JobState(self.state)
        _require_str(self, "task")
        _require_str(self, "detail")


@dataclass
class BackgroundDeliveryFrame(SystemFrame):
    """Emitted by the interleaver (upstream and downstream) when outputs are woven in.

    Parameters:
        job_ids: The jobs whose outputs this delivery carries.
        kind: ``delivered``, ``redelivered``, ``offered``, ``failure`` or
            ``into_context`` (a silent note of outputs the user cut off too often).
        text: The text handed to the interaction model or the TTS.
    """

    job_ids: list[str]
    kind: str
    text: str

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.job_ids, list) or not all(isinstance(j, str) for j in self.job_ids):
            raise TypeError("BackgroundDeliveryFrame.job_ids must be a list of str")
        _require_str(self, "kind", empty_ok=False)
        _require_str(self, "text")


#
# Perception frames (micro-turns and encoder-free fusion)
#


@dataclass
class MicroTurnFrame(DataFrame):
    """One aligned micro-turn window of the session.

    Parameters:
        index: Micro-turn number since session start.
        start: Session time of the window start, in seconds.
        duration: Window length in seconds.
        audio: 16 kHz mono int16 PCM bytes for the window.
        sample_rate: Always 16000 for the built-in ingest.
        images: RGB frames of the window as ``(session_time, width, height, bytes)``.
        audio_gap: Whether missing audio was filled with silence.
    """

    index: int
    start: float
    duration: float
    audio: bytes
    sample_rate: int = 16000
    images: list[tuple[float, int, int, bytes]] = field(default_factory=list)
    audio_gap: bool = False

    def __post_init__(self):
        super().__post_init__()
        _require_window(self)
        if not isinstance(self.audio, (bytes, bytearray)):
            raise TypeError(f"MicroTurnFrame.audio must be bytes, got {type(self.audio).__name__}")
        if len(self.audio) % 2:
            raise ValueError("MicroTurnFrame.audio must be int16 PCM (an even number of bytes)")
        _require_number(self, "sample_rate", integral=True)
        if self.sample_rate <= 0:
            raise ValueError(f"MicroTurnFrame.sample_rate must be > 0, got {self.sample_rate}")
        if not isinstance(self.images, list):
            raise TypeError("MicroTurnFrame.images must be a list of (time, width, height, rgb)")
        for i, image in enumerate(self.images):
            _check_image(i, image)
        _require_bool(self, "audio_gap")


@dataclass
class FusedMicroTurnFrame(DataFrame):
    """Encoder-free features for one micro-turn (format ``tandem.fused/2``).

    The format is specified in ``docs/fused-format.md``.

    Parameters:
        index: Micro-turn number.
        start: Session time of the window start, in seconds.
        dmel: dMel codes, ``uint8`` array ``(n_hops, n_mels)``, values ``< n_levels``.
        hop_times: Session time of each dMel hop's start, ``float64`` ``(n_hops,)``.
        patches: Patch embeddings per image, ``float32`` arrays ``(n_patches, dim)``
            in raster order over ``grids[i]``.
        image_times: Session time of each image.
        version: Format version string.
        duration: Window length in seconds.
        hop: dMel hop length in seconds.
        n_levels: dMel quantization levels.
        grids: Patch grid ``(rows, cols)`` of each image.
        audio_gap: Whether the window's audio was partly missing (zero-filled).
    """

    index: int
    start: float
    dmel: Any
    hop_times: Any
    patches: list[Any] = field(default_factory=list)
    image_times: list[float] = field(default_factory=list)
    version: str = "tandem.fused/2"
    duration: float = 0.2
    hop: float = 0.01
    n_levels: int = 16
    grids: list[tuple[int, int]] = field(default_factory=list)
    audio_gap: bool = False

    def __post_init__(self):
        # The arrays are the consumer's to check against the version it reads
        # (docs/fused-format.md); the scalars every consumer relies on are checked here.
        super().__post_init__()
        _require_window(self)
        _require_str(self, "version", empty_ok=False)
        _require_number(self, "hop")
        if self.hop <= 0:
            raise ValueError(f"FusedMicroTurnFrame.hop must be > 0, got {self.hop}")
        _require_number(self, "n_levels", integral=True)
        if self.n_levels <= 0:
            raise ValueError(f"FusedMicroTurnFrame.n_levels must be > 0, got {self.n_levels}")
        for name in ("patches", "image_times", "grids"):
            if not isinstance(getattr(self, name), list):
                raise TypeError(f"FusedMicroTurnFrame.{name} must be a list")
        _require_bool(self, "audio_gap")


@dataclass
class CueFrame(SystemFrame):
    """A cheap perceptual cue detected on the fused stream.

    Parameters:
        kind: ``speech_onset``, ``speech_offset``, ``visual_change``, ``repetition``...
        time: Session time of the cue, in seconds.
        value: A kind-specific number (change score, repetition count...).
        detail: Free-form detail.
    """

    kind: str
    time: float
    value: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        _require_str(self, "kind", empty_ok=False)
        _require_number(self, "time")
        _require_number(self, "value")
        if not isinstance(self.detail, dict):
            raise TypeError("CueFrame.detail must be a dict")
