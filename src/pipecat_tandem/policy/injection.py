#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Background and tool text is data: it must never become a tool call.

Two defences, both pure and synchronous:

* :func:`quote_data` makes a text safe to put into a model's context: its JSON
  braces, code fences and ``<tool_call>`` tags are defused.
  Every tool call the local models' parser accepts needs a JSON object, so no
  part of a quoted text, even copied verbatim by a model, parses as a call.
* :class:`EchoGuard` remembers the background texts delivered in a session and
  refuses a tool call whose argument strings reproduce one of them (a model
  echoing what a document or a result told it), unless the user has spoken
  since that text arrived, so a suggestion the user accepts still runs. A text
  that itself held a JSON call to the same tool is refused even then.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_TAG = re.compile(r"</?\s*tool_call\s*>", re.I)
_WORD = re.compile(r"[^\W_]+", re.U)


def defuse(text: str) -> str:
    """Collapse whitespace and neutralize what could make ``text`` parse as a tool call."""
    text = " ".join(str(text).split())
    text = _TAG.sub("tool_call", text)
    return text.replace("{", "(").replace("}", ")").replace("```", "'''")


def quote_data(text: str, limit: int = 600) -> str:
    """``text`` as a defused datum of at most ``limit`` characters.

    No quotation marks are added: a small model copies them into its speech, and
    the defusing alone is what keeps every part of the text from parsing as a call.
    """
    body = defuse(text)
    return body if len(body) <= limit else body[: max(0, limit - 1)] + "\u2026"


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def _shingles(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def embedded_calls(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Every JSON object in ``text`` shaped like a tool call (``name`` + ``arguments``)."""
    found: list[tuple[str, dict[str, Any]]] = []
    decoder = json.JSONDecoder()
    position = text.find("{")
    while position != -1:
        try:
            value, _end = decoder.raw_decode(text, position)
        except ValueError:
            value = None
        if isinstance(value, dict):
            if isinstance(value.get("function"), dict):
                value = value["function"]
            name = value.get("name")
            arguments = value.get("arguments", value.get("parameters", {}))
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments)
                except ValueError:
                    arguments = None
            if isinstance(name, str) and isinstance(arguments, dict):
                found.append((name.strip(), arguments))
        position = text.find("{", position + 1)
    return found


@dataclass(frozen=True)
class _Datum:
    text_words: list[str]
    calls: list[tuple[str, dict[str, Any]]]
    at: float


class EchoGuard:
    """Refuses tool calls that reproduce background or tool text (see the module docstring).

    Args:
        min_words: Argument strings shorter than this are not judged (a short task
            such as "what time is it" is easily contained in any answer).
        overlap: Share of an argument's word trigrams found in one datum for it to
            count as reproduced.
        keep: How many recent data texts are remembered.
    """

    def __init__(self, *, min_words: int = 4, overlap: float = 0.8, keep: int = 32) -> None:
        if min_words < 3 or not 0 < overlap <= 1 or keep < 1:
            raise ValueError("min_words must be >= 3, overlap in (0, 1], keep >= 1")
        self._min_words = min_words
        self._overlap = overlap
        self._data: deque[_Datum] = deque(maxlen=keep)
        self._last_user: float | None = None

    def remember(self, text: str, *, now: float) -> None:
        """Record a background or tool text that reaches the model."""
        if isinstance(text, str) and text.strip():
            self._data.append(_Datum(_words(text), embedded_calls(text), now))

    def user_spoke(self, *, now: float) -> None:
        """Record a user utterance (what came before it is no longer the model's only cue)."""
        self._last_user = now

    def refusal(self, name: str, arguments: Mapping[str, Any]) -> str | None:
        """Why the call ``name(arguments)`` is refused as echoed data, or None."""
        strings = [s for s in _strings(arguments) if len(_words(s)) >= 1]
        for datum in self._data:
            for call_name, call_args in datum.calls:
                if call_name == name and self._reproduces(strings, list(_strings(call_args))):
                    return "it repeats a tool call written inside a background result"
        judged = [s for s in strings if len(_words(s)) >= self._min_words]
        if not judged:
            return None
        for datum in self._data:
            if self._last_user is not None and self._last_user >= datum.at:
                continue  # the user spoke since: the model may act on what they said
            if all(self._covered(_words(s), datum.text_words) for s in judged):
                return "its arguments repeat background text, not a request from the user"
        return None

    def _covered(self, words: list[str], data_words: list[str]) -> bool:
        grams = _shingles(words, 3)
        if not grams:
            return False
        return len(grams & _shingles(data_words, 3)) / len(grams) >= self._overlap

    def _reproduces(self, strings: list[str], call_strings: list[str]) -> bool:
        mine = " ".join(" ".join(_words(s)) for s in strings)
        theirs = " ".join(" ".join(_words(s)) for s in call_strings)
        return bool(mine) and (mine == theirs or (len(mine) >= 8 and mine in theirs))
