"""A small model's refusal of a harmless request, caught before it is spoken. No I/O.

The embedded 0.5B refuses what it does not understand: "You stare in height."
(tiny.en for "Use Fahrenheit.") and "Actually. I change my mind. Tell me they joke
instead." ("a joke", as the caller's voice says it about half the time) both got
"I'm sorry, but I can't assist with that." in pipecat's deferred-delivery eval.
Given the very same context the 1.5B told a joke in 6 of 6 samples. So a reply
that opens with a refusal is held back until its first sentence is complete and,
when that sentence is a refusal, the same request gets a second opinion from the
larger model (see :class:`~pipecat_tandem.models.local_llm.LocalLLMService`). A
refusal the larger model repeats is spoken: it was meant.

:class:`RefusalSniffer` holds only what could still become a refusal: a reply
whose first words cannot open one ("The capital ...", "Why did ...") is released
at once, and one that opens like one ("I'm sorry to hear that.") is released at
its first sentence's end.
"""

from __future__ import annotations

import re
from enum import StrEnum

#: How a refusal opens (lower case, straight apostrophes).
_OPENERS = (
    "i'm sorry",
    "im sorry",
    "i am sorry",
    "i apologize",
    "i apologise",
    "sorry",
    "unfortunately",
    "i can't",
    "i cannot",
    "i can not",
    "i'm unable",
    "i am unable",
    "i'm not able",
    "i am not able",
)
_REFUSAL = re.compile(
    r"\b(can'?t|cannot|can not|unable to|not able to|won'?t be able to)\s+"
    r"(help|assist|do|provide|answer|comply|fulfil+|support|respond|give)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?](\s|$)")
#: Words a reply may open with before a refusal ("Oh, hello! I'm sorry, but ...").
_INTERJECTIONS = re.compile(r"^(?:(?:oh|ah|hmm+|um+|uh+|well|okay|ok|alright|hello|hi|hey)\b\W*)+")


def _opening(text: str) -> str:
    """The reply from its first word that is not an interjection, lower case."""
    text = re.sub(r"^\W+", "", text.replace("\u2019", "'")).lower()
    return _INTERJECTIONS.sub("", text)


def is_refusal(sentence: str) -> bool:
    """Whether a reply's first sentence refuses the request.

    "I'm sorry, but I can't assist with that." and "I cannot help with that
    request." are; "I'm sorry to hear that." and "I can't wait to hear it!" are not.
    """
    opening = _opening(sentence)
    return opening.startswith(_OPENERS) and _REFUSAL.search(opening) is not None


class RefusalVerdict(StrEnum):
    """What the opening of a streamed reply says about it."""

    UNDECIDED = "undecided"  # it may still open a refusal: held
    TEXT = "text"  # an ordinary reply: released
    REFUSAL = "refusal"  # its first sentence refuses: held to the end


class RefusalSniffer:
    """Holds a streamed reply's opening while it may be a refusal.

    Feed each text delta to :meth:`feed`: it returns what may be spoken now. Once
    the verdict is ``REFUSAL`` nothing more is released; :attr:`held` has it all.

    Example::

        sniffer = RefusalSniffer()
        sniffer.feed("I'm sorry, ")     # "" (held)
        sniffer.feed("but I can't help with that.")  # "" (a refusal)
        sniffer.verdict                 # RefusalVerdict.REFUSAL
    """

    def __init__(self) -> None:
        self._buffer: list[str] = []
        self._verdict = RefusalVerdict.UNDECIDED

    @property
    def verdict(self) -> RefusalVerdict:
        """The current decision."""
        return self._verdict

    @property
    def held(self) -> str:
        """The text held back so far (all of it once a refusal)."""
        return "".join(self._buffer)

    def feed(self, delta: str) -> str:
        """Add a delta; return the text that may be spoken now ("" while held)."""
        if self._verdict is RefusalVerdict.TEXT:
            return delta
        self._buffer.append(delta)
        if self._verdict is RefusalVerdict.REFUSAL:
            return ""
        opening = _opening(self.held)
        if not opening:
            return ""  # nothing yet but interjections ("Oh, hello! I'm sorry, ...")
        if not opening.startswith(_OPENERS):
            if any(o.startswith(opening) for o in _OPENERS):
                return ""  # "I", "I'm", "Sor": it may still open one
            return self._release()
        end = _SENTENCE_END.search(opening)
        if end is None:
            return ""
        if is_refusal(opening[: end.end()]):
            self._verdict = RefusalVerdict.REFUSAL
            return ""
        return self._release()

    def finish(self) -> str:
        """The reply ended: what is still held (a refusal decided on the whole of it)."""
        if self._verdict is RefusalVerdict.UNDECIDED and is_refusal(self.held):
            self._verdict = RefusalVerdict.REFUSAL
        return self.held if self._verdict is not RefusalVerdict.TEXT else ""

    def _release(self) -> str:
        self._verdict = RefusalVerdict.TEXT
        text = self.held
        self._buffer = []
        return text
