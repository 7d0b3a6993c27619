"""Cue calibration clips: what the camera shows, and which cues must (not) come of it.

Each :class:`Clip` is a shot list of :mod:`~pipecat_tandem.bench.caller.scenes`
filmed through a webcam :class:`~pipecat_tandem.bench.caller.camera.Sensor`, sent
through aiortc's VP8 (or H.264) encoder and decoder and sampled like the server
samples its camera (:mod:`~pipecat_tandem.bench.caller.codec_loop`), then given to
the server's cue detectors. :func:`check` says what went wrong with the cues of one clip
(an empty list: nothing). The clips vary the seed (layout, colours, clothes), the
rhythm (wave frequency, squat period and its jitter), the sender's resolution,
frame rate and the encoder's bitrate: the thresholds are calibrated on all of them,
not tuned to one.

The speech clips are the caller's own voice (piper's joe) through aiortc's Opus
encoder and decoder, with and without room noise: one onset and one offset per
utterance, where the voice starts and ends ("the user stopping talking").
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pipecat_tandem.bench.caller.camera import Sensor, film
from pipecat_tandem.bench.caller.codec_loop import perceive, through
from pipecat_tandem.bench.caller.scenes import (
    Dimmed,
    Person,
    Room,
    Scene,
    Size,
    Slide,
    Squats,
    Wave,
)
from pipecat_tandem.fusion.cues import Cue

_VIDEO = ("visual_change", "motion_onset", "motion_offset", "periodic_motion", "repetition")


@dataclass(frozen=True)
class Clip:
    """A calibration clip.

    Attributes:
        name: Names it in reports.
        shots: ``(seconds, scene)`` in order.
        event: When the event happens (seconds from the start; ``None``: nothing does).
        event_end: When it is over.
        expect: What must come of it: ``none`` (no video cue at all), ``change`` (one
            ``visual_change`` after the event, none before), ``motion`` (motion onset
            after the event and offset after its end, no ``visual_change``), ``wave``
            (``periodic_motion`` during the wave, none before), ``count`` (the last
            ``repetition`` is ``n``).
        n: For ``count``.
    """

    name: str
    shots: tuple[tuple[float, Scene], ...]
    expect: str
    event: float | None = None
    event_end: float | None = None
    n: int = 0


def clips(seed: int = 0, *, long_idle_s: float = 60.0) -> list[Clip]:
    """The calibration set for one seed (layouts, colours and rhythms follow the seed)."""
    room, other = Room(seed), Room(seed + 100, small_object=False)
    person = Person(room, seed=seed + 3)
    hz = (1.2, 1.6, 2.0)[seed % 3]
    period = (1.8, 2.2, 2.6)[seed % 3]
    n = 3 + seed % 8
    squats = Squats(n, start=3.0, period=period, seed=seed)
    return [
        Clip(f"idle_{seed}", ((long_idle_s, room),), "none"),
        Clip(f"still_person_{seed}", ((20.0, person),), "none"),
        Clip(f"cut_{seed}", ((5.0, room), (5.0, Slide(seed + 1))), "change", 5.0),
        Clip(f"other_room_{seed}", ((5.0, room), (5.0, other)), "change", 5.0),
        Clip(f"lights_off_{seed}", ((5.0, person), (7.0, Dimmed(person))), "change", 5.0),
        Clip(f"enter_{seed}", ((10.0, Person(room, enter_at=4.0, seed=seed + 3)),), "change", 4.0),
        Clip(
            f"wave_{seed}",
            ((11.0, Person(room, wave=Wave(5.0, seconds=4.0, hz=hz), seed=seed + 3)),),
            "wave",
            5.0,
            9.0,
        ),  # fmt: skip
        Clip(
            f"squats_{n}_{seed}",
            ((squats.end + 4.0, Person(room, squats=squats, seed=seed + 3)),),
            "count",
            3.0,
            squats.end,
            n=n,
        ),  # fmt: skip
    ]


def run_clip(
    clip: Clip,
    *,
    size: Size = (640, 480),
    fps: float = 15.0,
    bitrate: int = 500_000,
    codec: str = "vp8",
) -> list[Cue]:
    """The server's video cues for ``clip`` sent at ``size``, ``fps`` and ``bitrate``.

    ``codec`` is the call's video codec (``vp8`` or ``h264``, see
    :func:`~pipecat_tandem.bench.caller.codec_loop.through`).
    """
    frames = film(
        list(clip.shots),
        fps=fps,
        size=size,
        sensor=Sensor(seed=zlib.crc32(clip.name.encode()) % 997),
    )
    decoded = through(frames, codec, bitrate=bitrate)
    return [c for c in perceive(decoded) if c.kind in _VIDEO]


#: How late ``motion_onset`` may come after a body starts moving: it is "You're
#: moving." for "tell me when I start moving", and the start of a set to count. The
#: counter needs three moving images in a row at the server's 5 fps: 0.6 s, the
#: least it can be, on every VP8 and H.264 sender of the grid (a squat starts
#: slowly, but its first image already moves). A second is the bar of the other
#: visual cue (speech within 1.0 s of a screen change), two images over that.
MOTION_ONSET_WITHIN_S = 1.0

#: How late ``motion_offset`` may come after the body stops: "You stopped moving."
#: and the end of the set. Stopping cannot be told at once: the pause between two
#: squats must not end the set, so the counter waits 1.5 s (``still_secs``) after
#: the last strongly moving image, and the last rep's slow stand-up is not strong:
#: 1.7-1.9 s measured. Two and a half seconds, three images over that: with the
#: reply's speech about three seconds after stopping, a pause a person who asked
#: "tell me when I stop" still waits through (a coach would say it after a beat).
MOTION_OFFSET_WITHIN_S = 2.5


def motion_delays(clip: Clip, cues: list[Cue]) -> tuple[float | None, float | None]:
    """How late the motion cues of ``clip`` came (seconds; ``None``: never came).

    The first ``motion_onset`` from the clip's ``event`` (when the body starts
    moving), and the first ``motion_offset`` after that onset from its
    ``event_end`` (when it stops; negative: said to stop while still moving).
    """
    if clip.event is None:
        return None, None
    onsets = [c for c in cues if c.kind == "motion_onset" and c.time >= clip.event - 1e-6]
    if not onsets:
        return None, None
    offsets = [c for c in cues if c.kind == "motion_offset" and c.time > onsets[0].time]
    off = offsets[0].time - (clip.event_end or clip.event) if offsets else None
    return onsets[0].time - clip.event, off


def motion_delay_table(delays: Mapping[str, list[tuple[float | None, float | None]]]) -> str:
    """A markdown table of :func:`motion_delays`' median and max per sender (its rows' keys)."""
    lines = [
        "| sender | clips | onset after the start, median / max (s) "
        "| offset after the stop, median / max (s) | never came |",
        "|---|---|---|---|---|",
    ]
    for sender, pairs in delays.items():
        cells = []
        for k in (0, 1):
            got = [v for p in pairs if (v := p[k]) is not None]
            cells.append(f"{np.median(got):.2f} / {max(got):.2f}" if got else "–")
        never = sum(p[0] is None or p[1] is None for p in pairs)
        lines.append(f"| {sender} | {len(pairs)} | {cells[0]} | {cells[1]} | {never} |")
    return "\n".join(lines)


def check(
    clip: Clip,
    cues: list[Cue],
    change_within_s: float = 4.0,
    onset_within_s: float = MOTION_ONSET_WITHIN_S,
    offset_within_s: float = MOTION_OFFSET_WITHIN_S,
) -> list[str]:
    """What is wrong with ``cues`` for ``clip`` (empty: the cues are right).

    In a ``count`` clip the body moves from ``event`` to ``event_end`` without a
    stop: one ``motion_onset`` within ``onset_within_s`` of the start and one
    ``motion_offset`` within ``offset_within_s`` of the end, nothing in between
    and nothing after (each would be said to a caller who asked to be told).
    """
    event, end = clip.event, clip.event_end
    changes = [c for c in cues if c.kind == "visual_change"]
    problems: list[str] = []
    if clip.expect == "none":
        if cues:
            problems.append(f"cues in a clip with nothing happening: {_show(cues)}")
        return problems
    assert event is not None
    early = [c for c in cues if c.time < event - 1e-6]
    if early:
        problems.append(f"cues before the event at {event:.1f} s: {_show(early)}")
    if clip.expect == "change":
        late = [c for c in changes if c.time >= event]
        if len(late) != 1:
            problems.append(f"{len(late)} visual changes after the event: {_show(changes)}")
        elif late[0].time > event + change_within_s:
            problems.append(f"the change came {late[0].time - event:.1f} s after the event")
    elif clip.expect == "wave":
        waves = [c for c in cues if c.kind == "periodic_motion"]
        if not waves or not event <= waves[0].time <= (end or event) + 0.5:
            problems.append(f"no periodic motion during the wave: {_show(cues)}")
    elif clip.expect == "count":
        reps = [c.value for c in cues if c.kind == "repetition"]
        got = int(reps[-1]) if reps else 0
        if got != clip.n:
            problems.append(f"counted {got} of {clip.n}: {_show(cues)}")
        problems += _motion_problems(clip, cues, onset_within_s, offset_within_s)
    if clip.expect in ("wave", "count") and changes:
        problems.append(f"a visual change in a clip of movement: {_show(changes)}")
    return problems


def _motion_problems(clip: Clip, cues: list[Cue], onset_s: float, offset_s: float) -> list[str]:
    """What is wrong with the motion cues of one stretch of motion (see :func:`check`)."""
    motion = [c for c in cues if c.kind in ("motion_onset", "motion_offset")]
    kinds = [c.kind for c in motion]
    onset, offset = motion_delays(clip, cues)
    problems = []
    if onset is None or offset is None:
        problems.append(f"no motion onset/offset around the motion: {_show(motion)}")
    else:
        if onset > onset_s:
            problems.append(f"the motion onset came {onset:.1f} s after the motion started")
        if offset < 0:
            problems.append(f"a motion offset {-offset:.1f} s before the motion stopped")
        elif offset > offset_s:
            problems.append(f"the motion offset came {offset:.1f} s after the motion stopped")
    if onset is not None and kinds.count("motion_onset") > 1:
        problems.append(f"motion started more than once: {_show(motion)}")
    return problems


def _show(cues: list[Cue]) -> str:
    return ", ".join(f"{c.kind}@{c.time:.1f}={c.value:.2f}" for c in cues)


#: What the caller says in the speech clips (one utterance each, short to long).
SPEECH_LINES = (
    "Tell me when I stop talking.",
    "I went to the market this morning and bought some apples and a loaf of bread.",
    "Okay.",
    "Hmm, let me see.",  # soft, voiced, with no plosive to start it
    "What time is it?",
    "So I was thinking, maybe tomorrow we could go for a walk in the park if it is nice.",
)


#: Room noise spectra: power falling by 0 (white), 3 (pink: a fan, traffic) or 6
#: (brown: a rumble) dB per octave.
NOISE_COLORS = {"white": 0.0, "pink": 0.5, "brown": 1.0}


def speech_clip(
    voice: np.ndarray, *, noise_dbfs: float | None, seed: int = 0, color: str = "white"
) -> np.ndarray:
    """``voice`` (int16, 48 kHz) after 1 s and before 3 s of room noise at ``noise_dbfs``.

    Raises:
        ValueError: ``color`` is not one of :data:`NOISE_COLORS`.
    """
    if color not in NOISE_COLORS:
        raise ValueError(f"noise color must be one of {sorted(NOISE_COLORS)}, got {color!r}")
    pcm = np.concatenate([np.zeros(48000), voice.astype(np.float64), np.zeros(3 * 48000)])
    if noise_dbfs is not None:
        noise = np.random.default_rng(seed).normal(0.0, 1.0, pcm.shape)
        if NOISE_COLORS[color]:  # shape white noise's spectrum, then back to unit RMS
            f = np.fft.rfftfreq(len(noise), 1 / 48000)
            f[0] = f[1]
            noise = np.fft.irfft(np.fft.rfft(noise) / f ** NOISE_COLORS[color], len(noise))
            noise /= noise.std()
        pcm += noise * 32768 * 10 ** (noise_dbfs / 20)
    return np.clip(pcm, -32768, 32767).astype(np.int16)


def voice_span(voice: np.ndarray, lead_s: float = 1.0) -> tuple[float, float]:
    """When ``voice`` (int16, 48 kHz) is audible in its :func:`speech_clip`, in seconds."""
    loud = np.flatnonzero(np.abs(voice.astype(np.int32)) > 300)
    if loud.size == 0:
        raise ValueError("the voice is silent")
    return lead_s + loud[0] / 48000, lead_s + loud[-1] / 48000


def check_speech(
    cues: list[Cue], span: tuple[float, float], tolerance_s: float = 0.3, onset_s: float = 0.3
) -> list[str]:
    """What is wrong with the speech cues of one utterance spoken over ``span``.

    The offset must be within ``tolerance_s`` of the voice's end, the onset within
    ``onset_s`` of its start ("tell me when I stop talking" must hear the first word:
    through Opus in -45 dBFS room noise it comes within 0.15 s).
    """
    onsets = [c for c in cues if c.kind == "speech_onset"]
    offsets = [c for c in cues if c.kind == "speech_offset"]
    problems = []
    if len(onsets) != 1 or abs(onsets[0].time - span[0]) > onset_s:
        problems.append(f"onsets {_show(onsets)} for a voice starting at {span[0]:.2f} s")
    if len(offsets) != 1 or abs(offsets[0].time - span[1]) > tolerance_s:
        problems.append(f"offsets {_show(offsets)} for a voice ending at {span[1]:.2f} s")
    return problems
