"""A small model's reply not worth speaking, caught before it is spoken. No I/O.

The embedded 0.5B refuses what it does not understand: "You stare in height."
(tiny.en for "Use Fahrenheit.") and "Actually. I change my mind. Tell me they joke
instead." ("a joke", as the caller's voice says it about half the time) both got
"I'm sorry, but I can't assist with that." in pipecat's deferred-delivery eval.
Given the very same context the 1.5B told a joke in 6 of 6 samples. So a reply
that opens with a refusal is held back until its first sentence is complete and,
when that sentence is a refusal, the same request gets a second opinion from the
larger model (see :class:`~pipecat_tandem.models.local_llm.LocalLLMService`). A
refusal the larger model repeats is spoken: it was meant. A first sentence that
says the request was not understood ("I apologize, but I'm not sure what you mean
by joke.", the 0.5B to the same misheard request) is treated as a refusal: the
larger model follows such requests more often, and its reply is spoken instead.

The same goes for a reply that starts the previous one again word for word: the
0.5B, interrupted in a story and asked for a joke, began the story's spoken part
anew (see :class:`RefusalSniffer`). When the previous reply was cut short by the
user, a reply that opens with a run of it from anywhere is a repeat too: the 0.5B
also went on with the story from its middle ("Bill was born in a small island
near San Francisco, ..." after "A sea turtle, named Bill, was born in a small
island near San Francisco."). A reply the user let finish is only checked from
its start, so a summary that quotes it is not taken for one.

A reply to a request for a pastime that gives none of it (it defines the joke, or
says the request back) did not follow the request either (:mod:`.pastimes`), and
gets the same second opinion.

The second opinion reads only the persona and the latest of the conversation
(:func:`second_opinion_messages`): on its slow core the larger model took 10.3 s
to begin on a 31-message call, past the 6 s a refusal waits for it, and 3.0 s on
that call's last five messages.

:class:`RefusalSniffer` holds only what could still become a refusal: a reply
whose first words cannot open one ("The capital ...", "Why did ...") is released
at once, and one that opens like one ("I'm sorry to hear that.") is released at
its first sentence's end.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pipecat_tandem.policy.pastimes import defines, echoes, offers_other, parrots
from pipecat_tandem.policy.pastimes import words as _words
from pipecat_tandem.policy.topic import pastime_asked

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
    "i'm afraid",
    "i am afraid",
    "i'm unable",
    "i am unable",
    "i'm not able",
    "i am not able",
    "i'm not sure what you mean",
    "i am not sure what you mean",
    "i don't understand",
    "i do not understand",
)
_REFUSAL = re.compile(
    r"\b(can'?t|cannot|can not|unable to|not able to|won'?t be able to)\s+"
    r"(help|assist|do|provide|answer|comply|fulfil+|support|respond|give|continue|proceed|"
    r"discuss|engage)\b(?!\s+(?:without|until|unless)\b)",
    re.IGNORECASE,
)
#: A reply that did not follow the request ("I apologize, but I'm not sure what you
#: mean by joke.", the 0.5B to "Tell me they joke instead." in pipecat's deferred
#: eval): the larger model may well follow it, as with a refusal.
_NOT_FOLLOWED = re.compile(
    r"\b(not (quite )?sure what you mean|(don'?t|do not|didn'?t|did not) (quite )?understand"
    r"(?= what you| your| the (question|request)|\s*[.,!?]|\s*$))",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?](\s|$)")
#: Words a reply may open with before a refusal ("Oh, hello! I'm sorry, but ...",
#: "Oh, hello there! I'm sorry, but ..." in pipecat's cancellation eval, "Oh, I see,
#: I'm sorry, but I can't help with that." in the deferred one).
_INTERJECTIONS = re.compile(
    r"^(?:(?:oh|ah|hmm+|um+|uh+|well|okay|ok|alright|i see|got it|"
    r"(?:hello|hi|hey)(?:\s+there)?)\b\W*)+"
)


def _opening(text: str) -> str:
    """The reply from its first word that is not an interjection, lower case."""
    text = re.sub(r"^\W+", "", text.replace("\u2019", "'")).lower()
    return _INTERJECTIONS.sub("", text)


def is_refusal(sentence: str) -> bool:
    """Whether a reply's first sentence refuses the request, or says it was not understood.

    "I'm sorry, but I can't assist with that.", "I cannot help with that
    request." and "I apologize, but I'm not sure what you mean by joke." are;
    "I'm sorry to hear that." and "I can't wait to hear it!" are not.
    """
    opening = _opening(sentence)
    if not opening.startswith(_OPENERS):
        return False
    return _REFUSAL.search(opening) is not None or _NOT_FOLLOWED.search(opening) is not None


#: A reply that opens with this many words of the previous reply repeats it.
REPEAT_WORDS = 8


def only_begun(spoken: str, said: str) -> bool:
    """Whether ``spoken`` is only the start of ``said``, word for word.

    The conversation keeps what the bot spoke of a reply: a reply whose spoken part
    stops before what was said for it was cut short, whether or not the bot was
    speaking at the moment the user came in (a pause between two sentences).

    Args:
        spoken: The reply as the conversation has it.
        said: The reply as it was generated.
    """
    heard, whole = _words(spoken), _words(said)
    return 0 < len(heard) < len(whole) and whole[: len(heard)] == heard


def whole_sentences(text: str) -> str:
    """``text`` up to the end of its last complete sentence ("" if it has none).

    A reply stopped as soon as it was judged (see :class:`RefusalSniffer`) may end
    inside a sentence: only its complete sentences are fit to be spoken.
    """
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()].rstrip() if ends else ""


class RefusalVerdict(StrEnum):
    """What the opening of a streamed reply says about it."""

    UNDECIDED = "undecided"  # it may still open a refusal or a repeat: held
    TEXT = "text"  # an ordinary reply: released
    REFUSAL = "refusal"  # its first sentence refuses (or did not follow): held to the end
    REPEAT = "repeat"  # it opens with the previous reply's words: held to the end

    @property
    def held_back(self) -> bool:
        """Whether a reply with this verdict is held back, not spoken as it comes."""
        return self in (RefusalVerdict.REFUSAL, RefusalVerdict.REPEAT)


class RefusalSniffer:
    """Holds a streamed reply's opening while it may be a refusal or a repeat.

    Feed each text delta to :meth:`feed`: it returns what may be spoken now. Once
    the verdict is ``REFUSAL`` or ``REPEAT`` nothing more is released; :attr:`held`
    has it all. A repeat is a reply that opens with :data:`REPEAT_WORDS` words of
    the previous one: interrupted in a story about a sea turtle and asked for a joke,
    the 0.5B began the story's spoken part again, word for word (the same eval).

    A reply to the user who cut a story short that brings back, within its first
    :data:`GOES_ON_WORDS` words, a name the story made up (``names``, see
    :func:`story_names`) goes on with it in other words, and is a repeat too:
    "Fluffy, a sea turtle, was born in a small island in San Francisco." and
    "I apologize for the confusion. I'm sorry Charlie's joke was that he had a white
    coat ..." after "Tell me they joke instead." in pipecat's deferred eval.

    Args:
        previous: The model's previous reply in this conversation ("" if none).
        cut_short: The user spoke over ``previous``: a reply that opens (after
            "Oh,", "Well,") with :data:`REPEAT_WORDS` words in a row from anywhere
            in it is a repeat, not only one from its start.
        names: Names ``previous`` made up (lower case); only used when ``cut_short``.
        asked: The user's words being answered: a reply that gives none of the
            pastime they ask for (:mod:`.pastimes`) did not follow them, as a refusal.

    Example::

        sniffer = RefusalSniffer()
        sniffer.feed("I'm sorry, ")     # "" (held)
        sniffer.feed("but I can't help with that.")  # "" (a refusal)
        sniffer.verdict                 # RefusalVerdict.REFUSAL
    """

    def __init__(
        self,
        previous: str = "",
        *,
        cut_short: bool = False,
        names: frozenset[str] = frozenset(),
        asked: str = "",
    ) -> None:
        self._buffer: list[str] = []
        self._verdict = RefusalVerdict.UNDECIDED
        self._previous = _words(previous)
        self._cut_short = cut_short
        self._names = names if cut_short else frozenset()
        self._asked = asked
        self._pastime = pastime_asked(asked)

    @property
    def verdict(self) -> RefusalVerdict:
        """The current decision."""
        return self._verdict

    def fresh(self) -> RefusalSniffer:
        """A new sniffer for another reply to the same turn (same previous reply, same cut)."""
        again = RefusalSniffer(cut_short=self._cut_short, names=self._names, asked=self._asked)
        again._previous = self._previous
        return again

    @property
    def cut_short(self) -> bool:
        """Whether the previous reply was cut short (a run from anywhere in it repeats it)."""
        return self._cut_short

    @property
    def held(self) -> str:
        """The text held back so far (all of it once a refusal)."""
        return "".join(self._buffer)

    def feed(self, delta: str) -> str:
        """Add a delta; return the text that may be spoken now ("" while held)."""
        if self._verdict is RefusalVerdict.TEXT:
            return delta
        self._buffer.append(delta)
        if self._verdict is not RefusalVerdict.UNDECIDED:
            return ""
        repeat = _strongest(self._repeat_state(), self._goes_on_state())
        if repeat == "yes":
            self._verdict = RefusalVerdict.REPEAT
            return ""
        refusal = self._refusal_state()
        if refusal == "yes":
            self._verdict = RefusalVerdict.REFUSAL
            return ""
        if "maybe" in (repeat, refusal):
            return ""
        return self._release()

    def _in_a_word(self) -> bool:
        """Whether the text held ends inside a word (its last word may still grow)."""
        return re.search(r"[\w']$", self.held) is not None

    def _refusal_state(self) -> str:
        """``yes``, ``no`` or ``maybe`` (the opening may still become a refusal)."""
        opening = _opening(self.held)
        if not opening:
            return "maybe"  # nothing yet but interjections ("Oh, hello! I'm sorry, ...")
        if self._pastime is not None:
            ended = not self._in_a_word()
            defined = defines(opening, self._pastime, ended=ended)
            if defined != "no":
                return defined
            # Nothing of the pastime yet: held until a word of its own ("did" in
            # "Sure, here's one: why did ...") or the reply's end (an echo).
            done = opening if ended else re.sub(r"[\w']+$", "", opening)
            if offers_other(done, self._asked, self._pastime):
                return "yes"
            if echoes(done, self._asked):
                first = _SENTENCE_END.search(done)
                if first and parrots(done[: first.end()], self._asked, self._pastime):
                    return "yes"
                return "maybe"
        if not opening.startswith(_OPENERS):
            # "I", "I'm", "Sor": it may still open one.
            return "maybe" if any(o.startswith(opening) for o in _OPENERS) else "no"
        end = _SENTENCE_END.search(opening)
        if end is None:
            return "maybe"
        return "yes" if is_refusal(opening[: end.end()]) else "no"

    def _repeat_state(self, *, ended: bool = False) -> str:
        """``yes``, ``no`` or ``maybe`` (still word for word the previous reply's opening)."""
        said = _words(_opening(self.held) if self._cut_short else self.held)
        if len(self._previous) < REPEAT_WORDS or not said:
            return "no"
        # The last word may still be growing unless the text has moved past it.
        whole = ended or not self._in_a_word()
        done, last = (said, "") if whole else (said[:-1], said[-1])
        n = len(done)
        starts = range(len(self._previous) - n + 1) if self._cut_short else range(1)
        if not any(self._runs_on(start, done, last) for start in starts):
            return "no"
        if n >= REPEAT_WORDS:
            return "yes"
        return "no" if ended else "maybe"

    def _goes_on_state(self, *, ended: bool = False) -> str:
        """``yes`` when the opening names a character of the story the user cut short."""
        if not self._names:
            return "no"
        said = [w.removesuffix("'s") for w in _words(self.held)[:GOES_ON_WORDS]]
        if any(w in self._names for w in said):
            return "yes"
        return "no" if ended or len(said) >= GOES_ON_WORDS else "maybe"

    def _runs_on(self, start: int, done: list[str], last: str) -> bool:
        """Whether the previous reply from ``start`` reads ``done`` then a word opening ``last``."""
        n = len(done)
        if self._previous[start : start + n] != done:
            return False
        following = self._previous[start + n : start + n + 1]
        if last:
            return bool(following) and following[0].startswith(last)
        return bool(following) or n >= REPEAT_WORDS

    def finish(self) -> str:
        """The reply ended: what is still held (a refusal decided on the whole of it)."""
        if self._verdict is RefusalVerdict.UNDECIDED:
            opening = _opening(self.held)
            asked_for = self._pastime is not None and bool(opening.strip())
            defined = asked_for and defines(opening, self._pastime or "") == "yes"
            echoed = asked_for and echoes(opening, self._asked)
            other = asked_for and offers_other(opening, self._asked, self._pastime or "")
            if is_refusal(self.held) or defined or echoed or other:
                self._verdict = RefusalVerdict.REFUSAL
            elif "yes" in (self._repeat_state(ended=True), self._goes_on_state(ended=True)):
                self._verdict = RefusalVerdict.REPEAT
        return self.held if self._verdict is not RefusalVerdict.TEXT else ""

    def _release(self) -> str:
        self._verdict = RefusalVerdict.TEXT
        text = self.held
        self._buffer = []
        return text


#: How far into a reply a name from the story the user cut short counts as going on
#: with it (the 0.5B named the story's turtle at word 1 and word 9).
GOES_ON_WORDS = 16


def _strongest(*states: str) -> str:
    return "yes" if "yes" in states else "maybe" if "maybe" in states else "no"


#: Where a capital letter is owed to the place, not the word: a sentence's or
#: clause's start ("a joke: Why ..."), or a quotation's ('he said, "Hello').
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?:;])\s+|[\"\u201c\u201d(\u2014-]\s*")
_WRITTEN_WORD = re.compile(r"[A-Za-z][A-Za-z']*")


def story_names(previous: str, others: list[str]) -> frozenset[str]:
    """The names a reply made up: capitalised inside a sentence, never said before.

    "A sea turtle, named Luna, was born in San Francisco." after "What's the weather
    in San Francisco?" made up "luna". A word the reply also writes in lower case
    ("Sea" and "sea") is no name; one the conversation had before (or the user's
    latest words have) is not the reply's own. A reply shorter than
    :data:`REPEAT_WORDS` words has none.

    Args:
        previous: The reply (the one the user cut short).
        others: The conversation's other texts, the user's latest words included.

    Returns:
        The names, lower case, without a possessive "'s".
    """
    if len(_words(previous)) < REPEAT_WORDS:
        return frozenset()
    written = _WRITTEN_WORD.findall(previous.replace("\u2019", "'"))
    lower = {w.lower() for w in written if w[0].islower()}
    names: set[str] = set()
    for sentence in _SENTENCE_SPLIT.split(previous.replace("\u2019", "'")):
        for word in _WRITTEN_WORD.findall(sentence)[1:]:
            name = word.lower().removesuffix("'s")
            if word[0].isupper() and len(name) > 1 and name not in lower:
                names.add(name)
    known = {w.removesuffix("'s") for text in others for w in _words(text)}
    return frozenset(names - known)


#: The most of the conversation a second opinion reads, in characters of text (~4 a
#: token). The larger model runs on one core at nice 19, where it prefilled the
#: deferred eval's whole context (11 messages) in 4.6 s on an idle machine, and
#: the refusal is said after all if it has not begun within 6 s: a long call's
#: whole context would never make it (docs/benchmarks.md, "A second opinion that
#: arrives in time").
SECOND_OPINION_CHARS = 300


def _chars(message: Any) -> int:
    content = message.get("content") if isinstance(message, dict) else None
    return len(content) if isinstance(content, str) else len(str(content or ""))


def second_opinion_messages(
    messages: list[Any], max_chars: int = SECOND_OPINION_CHARS
) -> list[Any]:
    """The part of a conversation a second opinion is asked on: its start and its end.

    The leading system messages (the persona) are kept, then the latest messages
    that fit in ``max_chars`` together, and always the last one (what is being
    answered). What the user just asked and what was just said around it is what
    a reply to a refused or repeated turn needs; the rest of a long call only
    costs prefill on a slow core.

    Args:
        messages: The request's messages, oldest first.
        max_chars: Text budget for the messages after the leading system ones.

    Returns:
        The messages kept, in order (the same objects).
    """
    lead = 0
    while lead < len(messages) and isinstance(messages[lead], dict):
        if messages[lead].get("role") != "system":
            break
        lead += 1
    rest = messages[lead:]
    kept: list[Any] = []
    used = 0
    for message in reversed(rest):
        size = _chars(message)
        if kept and used + size > max_chars:
            break
        kept.append(message)
        used += size
    # A tool's result (or the call it answers) without the other half of the pair
    # is not a conversation a chat template renders: the window starts after it.
    while len(kept) > 1 and _half_of_a_call(kept[-1]):
        kept.pop()
    return [*messages[:lead], *reversed(kept)]


def _half_of_a_call(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    return message.get("role") == "tool" or bool(message.get("tool_calls"))
