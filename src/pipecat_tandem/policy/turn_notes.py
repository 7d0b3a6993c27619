#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The machinery's notes inside a user turn, and their removal once answered.

The delegation processor writes a bracketed note into the user's own message when
it hands a request to the background ("[Background job job-1 is working this out.
Reply only with a short acknowledgement ...]"): a 0.5B interaction model reads an
instruction there, where it would miss a separate message. The note is for *that*
turn's reply. Left in the history it keeps telling the model "reply only with
'On it.'; do not answer it yourself" on every later turn.

Measured in pipecat's ``async_tool_cancellation`` eval: the report's turn was never
answered (the user's "Actually, never mind the report. Tell me a joke instead."
arrived while "On it." was still being written, so the 0.5B got two user
messages in a row, the first still carrying its note, the second a bracketed
"job-1 is now cancelled" note). With that prompt the 0.5B refused the joke ("Oh,
hello! I'm sorry, but I can't assist with that.") in 2 of 3 samples; with the first
note dropped and no cancel note it told a joke in 5 of 5 (2 of 3 with the cancel
note kept: so a cancel gets no note, the user's words say it).

:func:`drop_answered_notes` therefore removes, when a request is built, every
note but the one the coming reply answers (the history then reads "Write me a
report about sea turtles." / "On it."). The job's state is not lost by it: the
reply that acknowledged it stays, and results and cancels come as their own
frames.

Pure and synchronous: no I/O.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["NOTE_PREFIX", "delegated_job_note", "drop_answered_notes", "strip_notes"]

#: How every note the machinery puts in a user turn begins.
NOTE_PREFIX = "[Background job "

_NOTE = re.compile(r"\s*" + re.escape(NOTE_PREFIX) + r"[^\[\]]*\]\s*")


def delegated_job_note(job_id: str) -> str:
    """The note after a user turn whose request went to the background.

    Said inside the user's own turn, where even a small model reads it, so the
    interaction model acknowledges instead of guessing the answer itself.

    Args:
        job_id: The job the request became.

    Returns:
        One bracketed note, to put after the user's words.
    """
    return (
        f"{NOTE_PREFIX}{job_id} is working this out. Reply only with a short "
        "acknowledgement such as 'On it.'; do not answer it yourself and do not "
        "delegate it again.]"
    )


def strip_notes(text: str) -> str:
    """``text`` without the machinery's bracketed notes (whitespace closed up)."""
    return _NOTE.sub(" ", text).strip()


def drop_answered_notes(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with the notes kept only where the next reply still needs them.

    A note is kept only in the last user message, while no reply follows it: it
    is dropped once an assistant message follows (answered) or another user
    message does (superseded: the user spoke again before the reply, as a text
    client does when a slow reply is still being written). Messages are not changed in
    place: a changed one is a copy. A user message that held only a note keeps
    its text, so no turn becomes empty.

    Args:
        messages: Chat messages (``role``/``content`` dicts), oldest first.

    Returns:
        A new list.
    """
    noted = [i for i, m in enumerate(messages) if _is_user(m) and _NOTE.search(m["content"])]
    keep = noted[-1] if noted else -1
    dropped = set(noted)
    if any(_role(m) in ("assistant", "user") for m in messages[keep + 1 :]):
        keep = -1
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if i in dropped and i != keep:
            stripped = strip_notes(message["content"])
            if stripped:
                message = {**message, "content": stripped}
        out.append(message)
    return out


def _role(message: Any) -> Any:
    return message.get("role") if isinstance(message, dict) else None


def _is_user(message: Any) -> bool:
    return _role(message) == "user" and isinstance(message.get("content"), str)
