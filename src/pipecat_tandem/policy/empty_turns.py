#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Empty user turns whose words are still on their way.

pipecat's user aggregator ends a turn after its stop timeout even when the speech
in it has not been transcribed yet, and then (``EmptyUserTurnConfig``) runs the
interaction model on a developer prompt asking the user to repeat. On a busy
machine the speech-to-text can take longer than that timeout: in a real call
"Count my squats." came seconds after its turn had ended empty, the model had
already said "Certainly!", and the acknowledgement came after the first counts.

:class:`EmptyTurnHold` is the awareness gate's rule for that inference: hold it
for ``hold_s``; if user words are written meanwhile, the turn was not empty after
all, so the recovery is dropped (and its prompt taken out of the context) and the
words get their own answer; otherwise it runs, later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["EmptyTurnHold"]


class EmptyTurnHold:
    """Which inference is an empty-turn recovery, and whether one is held.

    Pure and synchronous: the gate owns the timer and the frame.

    Args:
        prompts: The developer prompts the user aggregator runs the model on for an
            empty turn (its ``EmptyUserTurnConfig``'s ``interrupted_prompt`` and
            ``idle_prompt``; ``None`` entries are ignored).
        hold_s: How long a recovery waits for the turn's late words.

    Raises:
        ValueError: If ``hold_s`` is negative.
    """

    def __init__(self, prompts: Iterable[str | None], *, hold_s: float = 3.0) -> None:
        if not hold_s >= 0:
            raise ValueError(f"hold_s must be >= 0, got {hold_s!r}")
        self.prompts = {p.strip() for p in prompts if isinstance(p, str) and p.strip()}
        self.hold_s = hold_s
        self._held: Any = None  # the recovery's prompt message, while held

    @property
    def holding(self) -> bool:
        """Whether a recovery is being held."""
        return self._held is not None

    def is_recovery(self, messages: list[Any]) -> bool:
        """Whether a context ending in ``messages`` is an empty-turn recovery."""
        if not messages or not self.prompts:
            return False
        last = messages[-1]
        return (
            isinstance(last, dict)
            and last.get("role") in ("developer", "system")
            and isinstance(last.get("content"), str)
            and last["content"].strip() in self.prompts
        )

    def hold(self, messages: list[Any]) -> None:
        """Start holding the recovery whose context ends in ``messages``."""
        self._held = messages[-1]

    def release(self) -> bool:
        """The hold expired: True if the recovery is still held (it runs now)."""
        held, self._held = self._held is not None, None
        return held

    def words_arrived(self, messages: list[Any]) -> list[Any] | None:
        """User words were written: drop a held recovery.

        Returns:
            ``messages`` without the held recovery's prompt (the context to set), or
            None when nothing was held or the prompt is not in them.
        """
        held, self._held = self._held, None
        if held is None:
            return None
        kept = [m for m in messages if m is not held]
        return kept if len(kept) != len(messages) else None
