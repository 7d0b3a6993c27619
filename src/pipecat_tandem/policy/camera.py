#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What the assistant can see of the user's camera, and when to say it cannot.

A watch on the camera ("tell me when I wave", "count my squats", "tell me when the
screen changes") is only honest while images arrive, and a watch on the user only
while they show something. :class:`CameraPresence` follows the images of a call
(their times, and whether each is dark: :func:`pipecat_tandem.fusion.darkness.image_is_dark`)
and answers two questions:

* :meth:`CameraPresence.state` — is there a camera now (``none``: no image for
  ``timeout_s``, or never one), and is it dark (``dark``: only dark images for
  ``dark_after_s``, e.g. a muted camera's black frames)? The awareness processor
  refuses a watch on a call with no camera and says, with the acknowledgement of a
  watch on the user, that the camera looks dark.
* :meth:`CameraPresence.due_notice` — a watch is pending and the camera went away
  (``lost``: no image for ``timeout_s``) or went dark for ``timeout_s`` while a watch
  on the user is pending (``dark``): tell the user, once per outage; the watch goes
  on, and fires if the camera comes back. :meth:`CameraPresence.next_notice_at` is
  when one could next become due, for the processor's timer.

:func:`asks_if_seen` recognizes the question a person asks first on a video call,
"Can you see me?": the interaction model cannot see, and only this record knows
whether any picture arrives, so the awareness processor answers it from
:meth:`CameraPresence.state`.

Pure and synchronous: times are passed in (session seconds), no frames, no I/O.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["CameraNotice", "CameraPresence", "CameraState", "asks_if_seen"]

# "Can you see me?", "Do you see my camera?", "Is my camera on?", "Am I on video?".
# The question must end there: "can you see me waving" is about a wave (a watch or
# the model's), "do you see anything wrong with it" is not about the camera.
_SEEN = re.compile(
    r"\b(?:(?:can|could|do|are) you (?:still |now )?(?:able to )?see "
    r"(?:me|us|my (?:camera|video|webcam|face|picture|screen)|anything)"
    r"|(?:is|are) my (?:camera|video|webcam) (?:on|working|coming through|showing)"
    r"|am i on (?:camera|video))"
    r"(?: (?:now|right now|okay|ok|clearly|all right|properly|at all))?\s*[?.!]*\s*$",
    re.IGNORECASE,
)


def asks_if_seen(text: str) -> bool:
    """Whether an utterance asks if the assistant can see the user or their camera.

    Example::

        asks_if_seen("Hi! Can you see me?")  # True
        asks_if_seen("Do you see what I mean?")  # False
    """
    return isinstance(text, str) and _SEEN.search(text.strip()) is not None


CameraState = Literal["none", "dark", "live"]
CameraNotice = Literal["lost", "dark"]


class CameraPresence:
    """Follows a call's camera images (see the module docstring).

    Example::

        camera = CameraPresence(timeout_s=5.0)
        camera.image(12.0, dark=False)
        camera.state(13.0)  # "live"
        camera.due_notice(17.5, watching=True, seeing=True)  # "lost" (once)
    """

    def __init__(self, *, timeout_s: float = 5.0, dark_after_s: float = 1.0) -> None:
        """Create the record of a call with no image yet.

        Args:
            timeout_s: The camera is gone when no image came for this long.
            dark_after_s: The camera is dark when only dark images came for this
                long: one black frame (a camera opening) is not a dark camera.

        Raises:
            ValueError: If a duration is not positive.
        """
        if not timeout_s > 0 or not dark_after_s > 0:
            raise ValueError(
                f"timeout_s and dark_after_s must be positive, got {timeout_s!r}, {dark_after_s!r}"
            )
        self.timeout_s = timeout_s
        self.dark_after_s = dark_after_s
        self._seen_at: float | None = None
        self._dark_since: float | None = None  # the first of the dark images since a lit one
        self._told_lost = False
        self._told_dark = False

    def image(self, now: float, *, dark: bool | None = None) -> None:
        """An image arrived at ``now``; ``dark`` says whether it is (None: not known)."""
        self._seen_at = now
        self._told_lost = False
        if dark is True and self._dark_since is None:
            self._dark_since = now
        elif dark is False:
            self._dark_since = None
            self._told_dark = False

    def seen(self, now: float) -> None:
        """Images are arriving (a cue computed from them came), dark or not."""
        self._seen_at = now
        self._told_lost = False

    def state(self, now: float) -> CameraState:
        """``none`` (no image for ``timeout_s``), ``dark`` or ``live`` at ``now``."""
        if self._seen_at is None or now - self._seen_at > self.timeout_s:
            return "none"
        if self._dark_since is not None and now - self._dark_since >= self.dark_after_s:
            return "dark"
        return "live"

    def said_dark(self) -> None:
        """The user was told the camera is dark (with an acknowledgement): not again."""
        self._told_dark = True

    def due_notice(self, now: float, *, watching: bool, seeing: bool) -> CameraNotice | None:
        """What to tell the user about the camera now, if anything (each once per outage).

        Args:
            now: Session time.
            watching: A watch that needs the camera is pending.
            seeing: A watch that needs to see the user is pending (a wave, a count).

        Returns:
            ``lost`` (no image for ``timeout_s`` while watching), ``dark`` (only dark
            images for ``timeout_s`` while ``seeing``), or None.
        """
        if watching and not self._told_lost and self._lost_due(now):
            self._told_lost = True
            self._told_dark = True  # "lost" says it: the camera's darkness is moot
            return "lost"
        if seeing and not self._told_dark and self._dark_due(now):
            self._told_dark = True
            return "dark"
        return None

    def next_notice_at(self, *, watching: bool, seeing: bool) -> float | None:
        """When :meth:`due_notice` could next return a notice if no image changes it."""
        times = []
        if watching and not self._told_lost and self._seen_at is not None:
            times.append(self._seen_at + self.timeout_s)
        if seeing and not self._told_dark and self._dark_since is not None:
            times.append(self._dark_since + self.timeout_s)
        return min(times) if times else None

    def _lost_due(self, now: float) -> bool:
        return self._seen_at is not None and now - self._seen_at >= self.timeout_s

    def _dark_due(self, now: float) -> bool:
        return self._dark_since is not None and now - self._dark_since >= self.timeout_s
