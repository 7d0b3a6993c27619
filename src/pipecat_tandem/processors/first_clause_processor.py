#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Speak the first clause of a reply without waiting for its full sentence.

pipecat's TTS services speak sentence by sentence, so the first audio waits for
the model to finish its first sentence. A local model on a CPU writes ~20 tokens
a second; a reply opening "I'm doing well, thank you! ..." makes the user wait
for the whole opening sentence. :class:`FirstClauseAggregator` releases the
reply's opening clause as soon as a comma, semicolon, colon or dash follows a
few words; from then on it aggregates by sentence as usual. The rest of the
reply is generated while the first clause is spoken, so only the opening is cut
earlier. An opening sentence that has plainly ended ("?", "!", or "." after a
word of four letters or more) is released at once, without the next token that
pipecat's sentence aggregator waits for to rule out "Dr." or "29.99". The price
is a rare wrong cut: "Visit example.com" at the end of the opening sentence is
spoken as "Visit example." and then "com".

:class:`FirstClauseProcessor` is pipecat's ``LLMTextProcessor`` with this
aggregator; place it between the LLM and the TTS.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from pipecat.processors.aggregators.llm_text_processor import LLMTextProcessor
from pipecat.utils.text.base_text_aggregator import Aggregation, TextType
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator

#: A clause ends at one of these, followed by a space.
_CLAUSE_END = re.compile(r"[,;:]\s|\s[-–—]\s")
_WORD = re.compile(r"[\w']+")
#: An opening sentence that has certainly ended: "?" or "!", or "." after a word
#: of 4+ letters (not "Dr.", "e.g.", "etc." or the "29." of "29.99").
_SURE_SENTENCE_END = re.compile(r"\w[^\w\s]*[?!]$|(?<![\w.])[A-Za-z]{4,}\.$")


class FirstClauseAggregator(SimpleTextAggregator):
    """Sentence aggregation, except the first clause of each reply is released early.

    Args:
        min_words: Words the opening clause needs before it may be released
            (fewer makes choppy speech: "Well," alone).
        **kwargs: Passed to ``SimpleTextAggregator``.
    """

    def __init__(self, *, min_words: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if min_words < 1:
            raise ValueError("min_words must be >= 1")
        self._min_words = min_words
        self._opening = True

    async def aggregate(self, text: str) -> AsyncIterator[Aggregation]:
        """Yield the opening clause early, then sentences."""
        async for aggregation in super().aggregate(text):
            self._opening = False
            yield aggregation
        if not self._opening:
            return
        cut = self._opening_clause_end(self._text)
        if cut is None and _SURE_SENTENCE_END.search(self._text):
            # pipecat waits for the next token to confirm a sentence end, which
            # for the opening sentence costs the user one token's generation time.
            cut = len(self._text)
        if cut is not None:
            clause, self._text = self._text[:cut].strip(), self._text[cut:].lstrip()
            self._opening = False
            yield Aggregation(text=clause, type=TextType.SENTENCE)

    def _opening_clause_end(self, text: str) -> int | None:
        """Where the opening clause ends (after its punctuation), if it is long enough."""
        for match in _CLAUSE_END.finditer(text):
            if len(_WORD.findall(text[: match.start()])) >= self._min_words:
                return match.start() + 1
        return None

    async def flush(self) -> Aggregation | None:
        """End of a reply: return what is left; the next reply opens afresh."""
        self._opening = True
        return await super().flush()

    async def handle_interruption(self) -> None:
        """Interrupted: drop the text; the next reply opens afresh."""
        self._opening = True
        await super().handle_interruption()

    async def reset(self) -> None:
        """Clear the text; the next reply opens afresh."""
        self._opening = True
        await super().reset()


class FirstClauseProcessor(LLMTextProcessor):
    """``LLMTextProcessor`` with a :class:`FirstClauseAggregator`: put it before the TTS.

    Example::

        Pipeline([..., llm, FirstClauseProcessor(), tts, ...])
    """

    def __init__(self, *, min_words: int = 2, **kwargs: Any) -> None:
        """Create the processor.

        Args:
            min_words: Words the opening clause needs before it is spoken early.
            **kwargs: Passed to ``LLMTextProcessor``.
        """
        super().__init__(text_aggregator=FirstClauseAggregator(min_words=min_words), **kwargs)
