#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Cancellation and topic-change detection on user utterances. No I/O.

Two signals make a background request stale:

* an explicit cancellation ("never mind", "forget it", "cancel that") — the job
  whose request the cancelling words name is cancelled and its work stopped
  ("never mind the sea turtle report" stops that report, not a newer one); the
  most recent one when they name none (:func:`cancel_target`);
* the user moving away: an explicit switch ("let's talk about something else"), or
  ``moved_after`` consecutive substantive utterances (at least ``min_words`` content
  words) sharing no content word with the task. The job keeps running; its result
  is offered briefly instead of being read out as current.

Waiting-room talk is not moving away: a request for a pastime ("tell me a joke",
"a short story about a sea turtle", "sing me a song") is how people fill the wait
for an answer they still want, and carries no need of its own that the answer
would interrupt. Such an utterance neither counts toward ``moved_after`` nor resets
it (like "ok thanks"); an explicit switch or cancel in it still counts. In
pipecat's ``async_tool_deferred_delivery_audio`` eval a weather look-up went stale
after a story and a joke and was offered ("want it?") instead of said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipecat_tandem.background.jobs import BackgroundJob, content_words

_CANCEL = re.compile(
    r"\b(never ?mind|forget (it|that|about (it|that))|cancel (that|it|the (task|request|search))|"
    r"don'?t bother|stop (that|looking|searching|working on (it|that))|scratch that|no need)\b",
    re.IGNORECASE,
)
#: Sentence ends: the words naming what to cancel are in the cancelling sentence
#: ("Never mind the report. Tell me a joke." names the report, not a joke).
_SENTENCE = re.compile(r"(?<=[.!?;])\s+")
#: A bare cancel with no punctuation after it, told by what follows: a new clause
#: ("... history of Paris actually never mind that what's the capital of japan", the
#: bot's recognizer's early pass in pipecat's ``interruption_audio`` eval), not an
#: object ("never mind the report", "never mind that it's raining").
#: A cancel that names nothing of its own: "never mind (that)", "forget it", ...
_BARE_CANCEL = (
    r"\b(?:never ?mind|forget (?:it|that|about (?:it|that))|scratch that)"
    r"(?:\s+(?:that|this|it|all that|what i (?:said|asked)|my last question))?"
)
_UNPUNCTUATED_CANCEL = re.compile(
    _BARE_CANCEL
    + r"(?=\s+(?:what|what's|where|where's|when|who|who's|how|why|which|can|could|would|will|"
    r"tell|give|show|let|let's|please|i|i'm|is|are|do|does|instead)\b)",
    re.IGNORECASE,
)
#: A bare cancel that ends its sentence after words of that sentence: "Detailed story
#: about the history of Paris, actually Never mind that. What's the capital of
#: Japan?" (the bot's recognizer joining two passes in ``interruption_audio``).
_SENTENCE_ENDING_CANCEL = re.compile(
    _BARE_CANCEL + r"(?=\s*[.!?;])",
    re.IGNORECASE,
)


def _stem(word: str) -> str:
    # "turtle" names a job about "turtles": plural -s only, enough for named topics.
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def cancel_target(utterance: str, active: list[BackgroundJob]) -> str | None:
    """The job a cancelling utterance means: the one whose request its words name.

    Each active job scores the content words it shares with the cancelling
    sentence (plural-insensitive; the cancel phrase itself never matches a task).
    The best score wins; a tie goes to the newest of the tied, and a sentence that
    names nothing of any job ("never mind", "forget it") cancels the newest job.

    Args:
        utterance: The user's words (a cancellation, see
            :meth:`TopicTracker.is_cancellation`).
        active: The jobs in flight, oldest first.

    Returns:
        The job id to cancel, or ``None`` when nothing is in flight.
    """
    if not active:
        return None
    sentences = [s for s in _SENTENCE.split(utterance or "") if _CANCEL.search(s)]
    named = {_stem(w) for s in sentences for w in content_words(_CANCEL.sub(" ", s))}
    best, best_score = active[-1], 0
    for job in active:  # oldest first: a later job with the same score replaces it
        score = len(named & {_stem(w) for w in job.keywords})
        if score and score >= best_score:
            best, best_score = job, score
    return best.job_id


#: Words that say nothing of their own around a cancel ("Actually, never mind.").
FILLER_WORDS = frozenset(
    "actually okay alright right oh oops um uh umm erm hmm well wait sorry no yes yeah "
    "thanks thank instead then after all now".split()
)


def cancel_only(utterance: str, active: list[BackgroundJob]) -> bool:
    """Whether the utterance only cancels, with nothing else for anyone to answer.

    "Actually, never mind.", "Never mind the report." (naming an active job) and
    "No, cancel that. Thanks." are; "Never mind. Tell me a joke instead." and "Never
    mind, what's the capital of Spain?" are not: their other words are for the
    interaction model. Such a turn is answered by the machinery, not the model.

    Args:
        utterance: The user's words.
        active: The jobs in flight (their words may name what is cancelled).
    """
    text = utterance or ""
    if not _CANCEL.search(text):
        return False
    named = {_stem(w) for job in active for w in job.keywords}
    left = content_words(_CANCEL.sub(" ", text)) - FILLER_WORDS
    return all(_stem(w) in named for w in left)


#: Besides fillers, what a cancel that takes back the words before it may say
#: ("never mind what I said", "never mind my last question").
_RETRACTING_WORDS = FILLER_WORDS | frozenset("said asked question last one".split())


def without_retracted(utterance: str) -> str:
    """The utterance from its last bare cancel on: the words it takes back left out.

    A spoken self-repair retracts what came before it: in pipecat's
    ``interruption_audio`` eval the user's "Tell me a long, detailed story about the
    history of Paris. Actually, never mind that — what's the capital of Japan?" came
    as one turn, and the 0.5B answered "Paris is the capital of Japan." in 8 of 8
    samples; from "Never mind that." on, "The capital of Japan is Tokyo." in 7 of 8.
    A cancel that names something of its own ("Never mind the wine.") takes back
    only that, and nothing is left out; nor when nothing follows the cancel (a turn
    that only cancels, see :func:`cancel_only`). A bare cancel that ends a sentence
    begun with other words counts (:data:`_SENTENCE_ENDING_CANCEL`), and one without
    punctuation after it when a new clause follows it (:data:`_UNPUNCTUATED_CANCEL`).

    Args:
        utterance: One user turn's words.

    Returns:
        The words from the last bare cancelling sentence on, or ``utterance``.
    """
    sentences = _SENTENCE.split(utterance or "")
    for i in range(len(sentences) - 2, 0, -1):
        sentence = sentences[i]
        if _CANCEL.search(sentence) and not (
            content_words(_CANCEL.sub(" ", sentence)) - _RETRACTING_WORDS
        ):
            return " ".join(sentences[i:])
    text = utterance or ""
    ending = [
        m
        for m in _SENTENCE_ENDING_CANCEL.finditer(text)
        if text[: m.start()].strip() and content_words(text[m.end() :]) - FILLER_WORDS
    ]
    if ending:
        # The 0.5B read "Detailed story about the history of Paris, actually Never
        # mind that. What's the capital of Japan?" as "Paris is the capital of
        # Japan." in 8 of 8 samples; from "Never mind that." on, Tokyo in 7 of 8.
        return text[ending[-1].start() :]
    bare = [m for m in _UNPUNCTUATED_CANCEL.finditer(text) if text[: m.start()].strip()]
    if bare:
        # Ended as a sentence: "Never mind that What's the capital of Japan?" got
        # "Japan is the capital of the country." from the 0.5B in 5 of 8 samples;
        # "Never mind that. What's ..." got Tokyo in 8 of 8.
        cancel = bare[-1]
        return f"{text[cancel.start() : cancel.end()]}.{text[cancel.end() :]}"
    return utterance


#: Where the words a cancel names end ("never mind the report, tell me a joke").
_CLAUSE_END = re.compile(r"[,.;:!?\u2014]|\s(?:and|but|instead|then)\b", re.IGNORECASE)


def called_off(turns: list[str]) -> frozenset[int]:
    """The user turns a later turn's cancel names: requests the user took back.

    "Write me a report about sea turtles." is called off by a later "Actually,
    never mind the report. Tell me a joke instead.": every word the cancel names
    ("report") is in it. In pipecat's ``async_tool_cancellation`` eval, asked
    "Anything else I should know?" 45 s on, the models answered from the request
    the user had taken back ("Yes, sea turtles are fascinating creatures ...").
    A cancel names the words from its phrase to its clause's end; a bare one
    ("never mind that") names none and calls off nothing here (see
    :func:`without_retracted`), and nor does one naming a word no earlier turn has
    ("No need to write it in French." after "Write me a poem."). When several
    earlier turns have all the words, the newest is meant.

    Args:
        turns: The user's turns, oldest first.

    Returns:
        The indexes of the turns called off.
    """
    stems = [{_stem(w) for w in content_words(t or "")} for t in turns]
    out: set[int] = set()
    for j, turn in enumerate(turns):
        for match in _CANCEL.finditer(turn or ""):
            rest = turn[match.end() :]
            end = _CLAUSE_END.search(rest)
            named = {_stem(w) for w in content_words(rest[: end.start() if end else None])}
            named -= {_stem(w) for w in _RETRACTING_WORDS}
            if not named:
                continue
            meant = [i for i in range(j) if named <= stems[i]]
            if meant:
                out.add(meant[-1])
    return frozenset(out)


_SWITCH = re.compile(
    r"\b(something else|change (of )?(the )?subject|different topic|new topic|moving on|"
    r"on another note|unrelated question)\b",
    re.IGNORECASE,
)


# A request for something to pass the time: a verb asking for it, then (a few words
# on) the pastime itself. Its topic words ("about a sea turtle") are the pastime's,
# not a new need.
_PASTIME = re.compile(
    # "the story of the Roman empire" asks for history, not a pastime: no "the" between.
    r"\b(tell|give|read|recite|sing|share|make up|write|know|hear)\b"
    r"(\W+(?!the\b|of\b|about\b)\w+){0,4}?\W+"
    r"(jokes?|story|stories|poems?|riddles?|limericks?|songs?|fun facts?|tongue twisters?|"
    r"puns?|haikus?)\b"
    r"|\bmake me (laugh|smile)\b|\bentertain me\b",
    re.IGNORECASE,
)


def is_pastime(utterance: str) -> bool:
    """Whether the utterance asks for a pastime (a joke, a story, a song...).

    "Tell me a short story about a sea turtle.", "Actually, tell me a joke
    instead.", "Do you know any good riddles?" are; "What's a good recipe for
    pancakes?" and "Write me a report about sea turtles." are not.
    """
    return bool(_PASTIME.search(utterance or ""))


#: The pastimes :data:`_PASTIME` knows, singular, by their last word ("fun fact": "fact").
PASTIME_WORDS = frozenset("joke story poem riddle limerick song fact twister pun haiku".split())


def singular(word: str) -> str:
    """A pastime's word in the singular, lower case ("stories": "story", "jokes": "joke")."""
    word = word.lower()
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") else word


def pastime_asked(utterance: str) -> str | None:
    """The pastime an utterance asks for, singular and lower case ("joke", "story").

    None when it asks for none, or for one it does not name ("make me laugh").
    """
    match = _PASTIME.search(utterance or "")
    thing = match.group(3) if match else None
    return singular(thing) if thing else None


@dataclass
class TopicVerdict:
    """What one utterance means for the jobs in flight.

    Parameters:
        cancel: Jobs to cancel (work stops, results dropped).
        stale: Jobs whose request the user moved away from (results offered, not read).
    """

    cancel: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


class TopicTracker:
    """Decides which jobs a user utterance cancels or leaves stale.

    Args:
        moved_after: Consecutive unrelated substantive utterances that make a job stale.
        min_words: Content words an utterance needs to count as substantive.
    """

    def __init__(self, *, moved_after: int = 2, min_words: int = 2) -> None:
        if moved_after < 1 or min_words < 1:
            raise ValueError("moved_after and min_words must be >= 1")
        self._moved_after = moved_after
        self._min_words = min_words
        self._unrelated: dict[str, int] = {}

    @staticmethod
    def is_cancellation(utterance: str) -> bool:
        """Whether the utterance asks to drop the current request."""
        return bool(_CANCEL.search(utterance or ""))

    def observe(
        self, utterance: str, active: list[BackgroundJob], *, new_task: bool = False
    ) -> TopicVerdict:
        """Update with a finalized user utterance; ``active`` jobs oldest first.

        Args:
            utterance: The user's words.
            active: The jobs in flight, oldest first.
            new_task: The utterance hands the background another task. A caller who
                queues "convert 26 miles" after "work out 15 % of 80" still wants
                both answers, so a new task never counts as moving away (an explicit
                switch or cancel still does).
        """
        verdict = TopicVerdict()
        text = (utterance or "").strip()
        if not text or not active:
            return verdict
        if self.is_cancellation(text):
            target = cancel_target(text, active)
            if target is not None:
                verdict.cancel.append(target)
            return verdict
        switch = bool(_SWITCH.search(text))
        pastime = is_pastime(text)
        words = content_words(text)
        for job in active:
            if job.stale_reason:
                continue
            if switch:
                verdict.stale.append(job.job_id)
                continue
            if len(words) < self._min_words or new_task or pastime:
                continue  # "ok", "thanks", "hmm", "tell me a joke" say nothing about the topic
            if words & job.keywords:
                self._unrelated[job.job_id] = 0
                continue
            count = self._unrelated.get(job.job_id, 0) + 1
            self._unrelated[job.job_id] = count
            if count >= self._moved_after:
                verdict.stale.append(job.job_id)
        return verdict
