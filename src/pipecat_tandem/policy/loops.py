#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A streamed reply that says one of its sentences again stops there.

The embedded 0.5B at a low temperature sometimes falls into a loop. In pipecat's
deferred-delivery eval it answered "Actually. I've changed my mind. Tell me they
joke instead." with "O-I-C I've changed my mind. I've changed my mind. I've
changed my mind. ..." and another time told "Fluffy, a sea turtle, was born in a
small island in San Francisco." three times over. The reply's token limit bounds
such a loop, at ~25 s of speech; a person would have hung up.

:class:`SentenceLoopCutter` sits on the reply's stream. Text is released as it
comes, except while the sentence being said could still turn out to be one
already said in this reply (its words so far begin one of them): then it is held
until it either differs (released) or ends equal (the loop: it and everything
after are dropped, and :attr:`cut` tells the caller to stop generating). Only
sentences of :data:`MIN_WORDS` words or more count: "Hello. Hello." or "Knock
knock." said twice may be meant.

Pure: no I/O.
"""

from __future__ import annotations

import re

#: A repeated sentence shorter than this is let through.
MIN_WORDS = 3

# An end mark followed by a space: at the end of the text so far, "3." may be "3.5".
_SENTENCE_END = re.compile(r"[.!?…]+(?=\s)")
_WORD = re.compile(r"[a-z0-9']+")


def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.lower()))


class SentenceLoopCutter:
    """Releases a streamed reply's text until it repeats one of its own sentences.

    Example::

        loops = SentenceLoopCutter()
        loops.feed("I changed my mind. ")  # "I changed my mind. "
        loops.feed("I changed")  # "" (could be the same sentence again)
        loops.feed(" my mind. And")  # "" and loops.cut is True
    """

    def __init__(self, min_words: int = MIN_WORDS) -> None:
        if min_words < 1:
            raise ValueError(f"min_words must be >= 1, got {min_words!r}")
        self._min_words = min_words
        self._said: list[tuple[str, ...]] = []  # the reply's finished sentences
        self._sentence = ""  # the sentence in progress (released or held)
        self._held = ""  # its part not released yet
        #: The reply repeated a sentence: nothing more is released.
        self.cut = False

    def feed(self, delta: str) -> str:
        """Take the next text of the reply; returns what may be spoken now."""
        if self.cut or not delta:
            return ""
        out: list[str] = []
        rest = delta
        while rest:
            # From the sentence's start: its end mark may have come in the last
            # piece, waiting for the space after it.
            end = _SENTENCE_END.search(self._sentence + rest)
            if end is None:
                self._sentence += rest
                self._held += rest
                rest = ""
                if not self._could_repeat():
                    out.append(self._release())
                break
            upto = end.end() - len(self._sentence)
            piece, rest = rest[:upto], rest[upto:]
            self._sentence += piece
            self._held += piece
            if self._repeats():
                self.cut = True
                self._held = ""
                break
            out.append(self._release())
            self._said.append(_words(self._sentence))
            self._sentence = ""
        return "".join(out)

    def finish(self) -> str:
        """The reply ended: what is still held (an unfinished sentence) may be spoken."""
        if self.cut or self._repeats():
            self.cut = True
            return ""
        return self._release()

    def _release(self) -> str:
        held, self._held = self._held, ""
        return held

    def _repeats(self) -> bool:
        words = _words(self._sentence)
        return len(words) >= self._min_words and words in self._said

    def _could_repeat(self) -> bool:
        words = _words(self._sentence)
        if not words:
            return True  # only spaces or punctuation yet: nothing to say alone
        # The last word may be cut off mid-token ("chan" of "changed").
        *whole, last = words
        n = len(whole)
        return any(
            len(said) >= max(self._min_words, n + 1)
            and said[:n] == tuple(whole)
            and said[n].startswith(last)
            for said in self._said
        )
