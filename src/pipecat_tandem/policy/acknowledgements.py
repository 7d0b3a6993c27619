#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Acknowledgements the machinery speaks itself, and the turns it answers that way.

When a user turn asks for a timer, a reminder, a cue watch or a count, the
interaction model must not answer it: a 0.5B model asked "tell me when ten
seconds have passed" says "10 seconds have passed." at once. So the turn is
answered with a fixed sentence that restates what was *registered*, built from the
parsed :class:`~pipecat_tandem.policy.interjections.InterjectionSpec` (not from the
user's wording), and the model does not run on it.

* :func:`acknowledge` — the sentence for a registered request or a cancel;
  varied in its opener but deterministic (the caller passes a variant number).
* :data:`NO_CAMERA` — the honest answer to a watch that needs video on a call
  without it; :data:`CAMERA_DARK` is added to the acknowledgement of a watch that
  needs to see the user (:func:`needs_sight`) while the camera is dark, and
  :data:`CAMERA_LOST` / :data:`CAMERA_WENT_DARK` are said once when the camera goes
  away or dark while such a watch waits
  (:class:`~pipecat_tandem.policy.camera.CameraPresence` says when).
* :data:`SIGHT_ANSWERS` — the answer to "Can you see me?" for each camera state
  (:func:`~pipecat_tandem.policy.camera.asks_if_seen`): the model cannot see, and
  the 0.5B answers "Yes, I can see you." whether a camera is on or not (8 of 8
  samples with no camera in its context).
* :class:`HandledTurns` — remembers which utterances were answered this way, so
  the gate in front of the interaction model can tell a handled turn (whole turn
  handled: speak the acknowledgement, drop the inference) from a turn that only
  partly was (let the model answer, it has been told what was scheduled).

Pure and synchronous: no clock, no frames, no I/O.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from pipecat_tandem.policy.interjections import InterjectionSpec, spoken_duration
from pipecat_tandem.policy.topic import FILLER_WORDS

__all__ = [
    "CAMERA_DARK",
    "CAMERA_LOST",
    "CAMERA_WENT_DARK",
    "NO_CAMERA",
    "SIGHT_ANSWERS",
    "VIDEO_CUES",
    "HandledTurns",
    "InferenceVerdict",
    "acknowledge",
    "acknowledge_follow_up",
    "acknowledge_job",
    "acknowledge_job_cancel",
    "needs_sight",
    "needs_video",
]

#: Said instead of starting a watch that needs a camera when no video has arrived.
NO_CAMERA = "I can't see a camera right now."

#: Added to the acknowledgement of a watch on the user while the camera is dark (a
#: muted camera's black frames): the watch is set, but nothing can be seen yet.
CAMERA_DARK = "Your camera looks dark right now, so I can't see you yet."

#: Said once when the camera stops while a watch on it is pending (it goes on).
CAMERA_LOST = "I've lost your camera, so I can't watch for that right now."

#: Said once when the camera goes dark while a watch on the user is pending.
CAMERA_WENT_DARK = "Your camera has gone dark, so I can't see you right now."

#: The answers to "Can you see me?" by the camera's state (see ``policy.camera``):
#: pictures arrive, only dark ones do, or none.
SIGHT_ANSWERS = {
    "live": "Yes, your camera is on and I can see its picture.",
    "dark": "Your camera is on, but its picture looks dark, so I can't see you.",
    "none": "No, I can't see a camera right now.",
}

#: Cue kinds computed from video frames (a watch on them needs a camera).
VIDEO_CUES = frozenset({"visual_change", "periodic_motion", "motion_onset", "motion_offset"})

# Openers rotate so that a run of requests does not sound canned; the rest of the
# sentence is what was registered and never varies.
_OPENERS = ("Okay", "Sure", "Got it", "Alright")

# What each cue watch waits for, said from the assistant's side.
_CUE_EVENT = {
    "visual_change": "the view changes",
    "periodic_motion": "I see you wave",
    "motion_onset": "you start moving",
    "motion_offset": "you stop moving",
    "speech_offset": "you stop talking",
}

_CANCELLED = {
    "count": "I've stopped counting.",
    "timed": "that's cancelled.",
    "cue": "I've stopped watching.",
    "all": "that's cancelled.",
}


# What the background does for each routing reason, said as the assistant's next step.
_JOB_WORK = {
    "arithmetic": "work that out",
    "lookup": "look that up",
    "planning": "put that together",
    "reasoning": "think that through",
}
_JOB_OPENERS = ("On it,", "Sure,", "Okay,", "Give me a moment,")


def acknowledge_job(reason: str, *, variant: int = 0) -> str:
    """The sentence that acknowledges a task handed to the background model.

    It says that the work has started, never what its answer is: "On it, I'll work
    that out.", "Sure, I'll look that up.".

    Args:
        reason: The router's reason for the delegation ("arithmetic", "lookup",
            "planning", "reasoning"); any other value gets a neutral wording.
        variant: Picks the opener (any int; e.g. how many acknowledgements were said).

    Returns:
        One short sentence.
    """
    work = _JOB_WORK.get(reason, "work on that")
    opener = _JOB_OPENERS[variant % len(_JOB_OPENERS)]
    return f"{opener} I'll {work}."


#: Said when the user's words only stopped a background job (never that it is done).
_JOB_CANCELLED = (
    "Okay, I've stopped that.",
    "Sure, I've dropped that.",
    "Alright, I've stopped it.",
)


def acknowledge_job_cancel(*, variant: int = 0) -> str:
    """The sentence that acknowledges a background job the user called off.

    Args:
        variant: Picks the wording (any int; e.g. how many acknowledgements were said).

    Returns:
        One short sentence.
    """
    return _JOB_CANCELLED[variant % len(_JOB_CANCELLED)]


#: Said when the user's next words only added to the job just started.
_JOB_FOLLOW_UPS = (
    "Got it, I'll include that.",
    "Okay, I'll take that into account.",
    "Noted, I'll add that.",
)


def acknowledge_follow_up(*, variant: int = 0) -> str:
    """One short sentence taking words added to the job just asked for (``variant`` as above)."""
    return _JOB_FOLLOW_UPS[variant % len(_JOB_FOLLOW_UPS)]


def needs_video(spec: InterjectionSpec) -> bool:
    """Whether a request can only be served with a camera (a video cue or a count)."""
    return spec.kind == "count" or (spec.kind == "cue" and spec.cue_kind in VIDEO_CUES)


def needs_sight(spec: InterjectionSpec) -> bool:
    """Whether a request needs to see the user: a wave, motion, a count.

    A view change does not: a dark camera's view changing (the lights coming on, the
    camera unmuted) is itself seen.
    """
    return needs_video(spec) and spec.cue_kind != "visual_change"


def acknowledge(spec: InterjectionSpec, *, variant: int = 0, camera: str = "live") -> str:
    """The sentence that acknowledges a registered request (or a cancel that removed one).

    It states what will happen, never that it happened: "Okay, I'll tell you when
    ten seconds have passed.", "Sure, I'll remind you to stretch in two minutes.".

    Args:
        spec: The parsed request, as registered.
        variant: Picks the opener (any int; e.g. how many acknowledgements were said).
        camera: The camera's state (``live``, ``dark`` or ``none``, as
            :meth:`CameraPresence.state <pipecat_tandem.policy.camera.CameraPresence.state>`
            says): with ``dark``, a watch that needs to see the user is acknowledged
            with :data:`CAMERA_DARK` after it ("Okay, I'll count your squats. Your
            camera looks dark right now, so I can't see you yet.").

    Returns:
        One short sentence (two for a watch on a dark camera).

    Raises:
        ValueError: ``spec`` is not an ``InterjectionSpec`` or lacks what its kind needs.
    """
    if not isinstance(spec, InterjectionSpec):
        raise ValueError(f"expected an InterjectionSpec, got {type(spec).__name__}")
    opener = _OPENERS[variant % len(_OPENERS)]
    text = f"{opener}, {_body(spec)}"
    if camera == "dark" and needs_sight(spec):
        text = f"{text} {CAMERA_DARK}"
    return text


def _body(spec: InterjectionSpec) -> str:
    if spec.kind == "cancel":
        return _CANCELLED.get(spec.label, _CANCELLED["all"])
    if spec.kind == "count":
        return f"I'll count your {spec.label or 'reps'}."
    if spec.kind == "cue":
        if spec.cue_kind not in _CUE_EVENT:
            raise ValueError(f"no acknowledgement for cue kind {spec.cue_kind!r}")
        when = "every time" if spec.repeat else "when"
        return f"I'll tell you {when} {_CUE_EVENT[spec.cue_kind]}."
    if spec.kind != "timed" or spec.delay is None:
        raise ValueError(f"no acknowledgement for a {spec.kind!r} request without a delay")
    duration = spoken_duration(spec.delay)
    if spec.every is not None:
        return f"I'll tell you every {_singular(duration)}."
    if spec.task:
        return f"I'll remind you {_reminder(spec.task)} in {duration}."
    if spec.text.startswith("Your timer"):
        return f"a timer for {duration}, starting now."
    verb = "has" if spec.delay == 1 else "have"
    return f"I'll tell you when {duration} {verb} passed."


def _singular(duration: str) -> str:
    # "every thirty seconds" reads as is; "every one minute" is "every minute".
    return {"one second": "second", "one minute": "minute", "an hour": "hour"}.get(
        duration, duration
    )


def _reminder(task: str) -> str:
    # The parser keeps "the oven" / "stretch" / "that the laundry is done": say it
    # as "about the oven", "to stretch", "that the laundry is done".
    if task.startswith(("the ", "your ")):
        return f"about {task}"
    if task.startswith("that "):
        return task
    return f"to {task}"


_NORM = re.compile(r"[^\w']+")


def _beyond_filler(text: str) -> list[str]:
    return [w for w in text.split() if w not in FILLER_WORDS]


def _norm(text: str) -> str:
    return " ".join(_NORM.sub(" ", text.lower().replace("’", "'")).split())


@dataclass
class _Handled:
    text: str
    reply: str


@dataclass(frozen=True)
class InferenceVerdict:
    """What the gate does with one inference request of the interaction model.

    Parameters:
        skip: Drop the inference (the model must not answer this turn).
        say: Speak this acknowledgement now ("" for nothing).
    """

    skip: bool
    say: str = ""


_RUN = InferenceVerdict(False)


class HandledTurns:
    """Which utterances of the current user turn the machinery answered itself.

    The awareness processor :meth:`add` s each transcription it answered. The gate in
    front of the interaction model reports each turn the user aggregator writes
    (:meth:`turn_written`) and asks about each inference (:meth:`on_inference`).
    A turn is handled only if *all* of its words were handled utterances; a turn with
    other words goes to the model, which has been told what was scheduled.

    Example::

        turns = HandledTurns()
        turns.add("Tell me when ten seconds have passed.", "Okay, I'll tell you ...")
        turns.turn_written("Tell me when ten seconds have passed.")  # "" (owed)
        turns.on_inference("Tell me when ten seconds have passed.", speculative=False)
        # InferenceVerdict(skip=True, say="Okay, I'll tell you ...")
    """

    def __init__(self, *, max_pending: int = 8) -> None:
        """Create an empty record.

        Args:
            max_pending: Handled utterances kept while no turn is written (oldest dropped).
        """
        self._pending: deque[_Handled] = deque(maxlen=max_pending)
        self._owed: tuple[str, str] | None = None  # (turn text, reply) awaiting its inference
        self._speculated = False

    def add(self, text: str, reply: str) -> None:
        """Record a transcription answered with ``reply`` (ignored if it has no words)."""
        if isinstance(text, str) and isinstance(reply, str) and _norm(text) and reply.strip():
            self._pending.append(_Handled(_norm(text), reply.strip()))

    @property
    def pending(self) -> bool:
        """Whether a handled utterance or an owed acknowledgement is outstanding."""
        return bool(self._pending) or self._owed is not None

    def _matches_pending(self, turn: str) -> bool:
        # The aggregator joins a turn's transcriptions with spaces. Words with nothing
        # of their own transcribed apart ("Actually..." then "Never mind") don't make
        # the turn the model's.
        if not self._pending:
            return False
        joined = " ".join(h.text for h in self._pending)
        words = _beyond_filler(joined)
        return turn == joined or (bool(words) and _beyond_filler(turn) == words)

    def turn_written(self, text: str) -> str:
        """The user aggregator wrote a turn: the acknowledgement to speak now, or "".

        Normally the acknowledgement is owed to the turn's inference (it is said when
        that inference is dropped, see :meth:`on_inference`). After a speculative
        inference on the same words was dropped, a confirmed turn brings no
        inference, so it is said now. The pending record belongs to this turn either
        way and is settled.
        """
        turn = _norm(text) if isinstance(text, str) else ""
        self._owed = None
        reply = ""
        if self._matches_pending(turn):
            joined = " ".join(h.reply for h in self._pending)
            if self._speculated:
                reply = joined
            else:
                self._owed = (turn, joined)
        self._pending.clear()
        self._speculated = False
        return reply

    def on_inference(self, last_user: str | None, *, speculative: bool) -> InferenceVerdict:
        """Decide about an inference whose context ends with user text ``last_user``.

        Args:
            last_user: The text of the context's last message if that message is the
                user's, else None (a delivery or tool result: always runs).
            speculative: A speculative inference on a turn not yet ended.
        """
        if last_user is None:
            return _RUN
        turn = _norm(last_user)
        if speculative:
            if self._matches_pending(turn):
                self._speculated = True
                return InferenceVerdict(True)
            return _RUN
        if self._owed is not None and self._owed[0] == turn:
            reply = self._owed[1]
            self._owed = None
            return InferenceVerdict(True, reply)
        return _RUN
