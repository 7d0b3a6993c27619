#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What the user's words say about the end of their turn, where the voice alone misleads.

smart-turn judges the end of a turn from the voice alone. With the caller's voice
of our benchmarks (``benchmarks/bench_turn_ends.py``) it is sure in both directions
where the words say otherwise:

- **A pause inside a sentence taken for its end.** "Meanwhile, ..." (p 0.97 at the
  comma), "Anyway, ..." (0.84-0.95), "Write me a report about the ocean, ..."
  (0.95), "Tell me a long, detailed story" (0.82-0.87). The turn ends, a reply
  starts, the caller goes on over it and their sentence arrives in two turns.
- **A finished question taken for a pause.** "By the way, how many legs does a cat
  have?" (p 0.04-0.24): the turn waits for smart-turn's silence limit, seconds
  (2-3 s more at the caller in the conversation suite).

The words settle some of these. A turn whose last words are only a discourse
opener ("Meanwhile.", "By the way"), or that ends on a word no English sentence
ends on ("the", "and", "my"), or on a comma or a dash, is **open**: more is coming.
A turn the recognizer punctuated as a question is **finished**. Everything else
says nothing, and the voice's verdict stands.

:class:`TurnEndByWords` turns that into a wait: an open turn the voice calls
complete waits until the voice has been quiet for ``open_quiet_s`` (longer than
the pauses inside a sentence, shorter than the silence limit); a finished
question the voice calls incomplete ends once the voice has been quiet for
``finished_quiet_s``. The words only move the end of a turn within that window:
voice coming back cancels the wait, as it cancels any end of turn.

English only: the recognizer here is Whisper tiny.en. Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

#: Words an English sentence does not end on: articles, possessives, the coordinating
#: and subordinating conjunctions that always lead into more ("the capital of" can
#: end a question in speech, so the prepositions are not here).
OPEN_LAST_WORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "my",
        "your",
        "our",
        "their",
        "and",
        "or",
        "but",
        "because",
        "although",
        "whether",
        "than",
        "if",
    }
)

#: Turns made only of these open a sentence that has not come yet.
OPENERS = frozenset(
    {
        "actually",
        "also",
        "and",
        "and also",
        "and then",
        "anyway",
        "besides",
        "but",
        "by the way",
        "meanwhile",
        "oh and",
        "okay so",
        "plus",
        "so",
        "so anyway",
        "um",
        "uh",
        "well",
    }
)

_OPEN_PUNCTUATION = (",", ";", ":", "-", "\u2013", "\u2014", "...", "\u2026")
_WORD = re.compile(r"[a-z0-9']+")


class Ending(enum.Enum):
    """What a turn's last words say about its end."""

    OPEN = "open"
    """More is coming: an opener alone, a comma or a word no sentence ends on."""

    FINISHED = "finished"
    """A question the recognizer punctuated as one."""

    UNSURE = "unsure"
    """The words say nothing either way (the recognizer ends most things with a period)."""


def ending(
    text: str,
    *,
    open_last_words: Iterable[str] = OPEN_LAST_WORDS,
    openers: Iterable[str] = OPENERS,
) -> Ending:
    """What ``text``, the words of the user's last stretch of voice, say about the turn's end.

    Args:
        text: A transcript (any case and punctuation; empty says nothing).
        open_last_words: Words a sentence does not end on.
        openers: Phrases that, alone, open a sentence still to come.

    Example::

        ending("Meanwhile.")  # Ending.OPEN
        ending("and what do cows drink?")  # Ending.FINISHED
        ending("Tell me a joke.")  # Ending.UNSURE
    """
    stripped = text.strip()
    if not stripped:
        return Ending.UNSURE
    if stripped.endswith(_OPEN_PUNCTUATION):
        return Ending.OPEN
    words = _WORD.findall(stripped.lower())
    if not words:
        return Ending.UNSURE
    if " ".join(words) in frozenset(openers) or words[-1] in frozenset(open_last_words):
        return Ending.OPEN
    if stripped.endswith("?"):
        return Ending.FINISHED
    return Ending.UNSURE


@dataclass(frozen=True)
class TurnEndByWords:
    """How long a turn's end waits, given the voice's verdict and the words.

    Args:
        open_quiet_s: An open turn the voice calls complete ends once the voice has
            been quiet this long (the pauses inside the caller's sentences were
            0.3-0.4 s; the voice's own end of a turn comes ~0.45 s after it).
        finished_quiet_s: A finished question the voice calls incomplete ends once
            the voice has been quiet this long (instead of the turn analyzer's
            silence limit, 2-3 s). About when its transcript is ready: at 0.8 s
            a question smart-turn misjudged still came 0.3-0.5 s later than one
            it judged right, and "Meanwhile, what is ...?" as one turn (held by
            its opener) was misjudged in 3 of 3 calls.
        open_last_words: Words a sentence does not end on (see :func:`ending`).
        openers: Phrases that alone open a sentence (see :func:`ending`).

    Raises:
        ValueError: A wait that is negative or not a number.

    Example::

        words = TurnEndByWords()
        words.wait_s("Meanwhile.", voice_says_complete=True, quiet_s=0.45)  # 0.35
        words.wait_s("Tell me a joke.", voice_says_complete=True, quiet_s=0.45)  # 0.0
        words.wait_s("What is it?", voice_says_complete=False, quiet_s=0.3)  # 0.2
        words.wait_s("So I went", voice_says_complete=False, quiet_s=0.45)  # None
    """

    open_quiet_s: float = 0.8
    finished_quiet_s: float = 0.5
    open_last_words: frozenset[str] = field(default=OPEN_LAST_WORDS)
    openers: frozenset[str] = field(default=OPENERS)

    def __post_init__(self) -> None:
        for name in ("open_quiet_s", "finished_quiet_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    def ending(self, text: str) -> Ending:
        """What ``text`` says about the turn's end, with this policy's word lists."""
        return ending(text, open_last_words=self.open_last_words, openers=self.openers)

    def wait_s(self, text: str, *, voice_says_complete: bool, quiet_s: float) -> float | None:
        """Seconds still to wait before the turn ends, or ``None`` to leave it to the voice.

        Args:
            text: The words of the user's last stretch of voice.
            voice_says_complete: The turn analyzer's verdict.
            quiet_s: How long the voice has been quiet.

        Returns:
            ``0.0``: end the turn now; a positive number: end it after that much
            more quiet; ``None``: the voice says "incomplete" and the words do not
            overrule it (the analyzer's silence limit decides).
        """
        said = self.ending(text)
        if voice_says_complete:
            if said is Ending.OPEN:
                return max(0.0, self.open_quiet_s - quiet_s)
            return 0.0
        if said is Ending.FINISHED:
            return max(0.0, self.finished_quiet_s - quiet_s)
        return None
