#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""How deliveries are worded, for the interaction model (weave) or the TTS (verbatim).

The templates are plain strings so applications can override any of them
(``DeliveryWording(result_intro=...)``), as LiveKit's tool executor allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipecat_tandem.policy.injection import defuse, quote_data

if TYPE_CHECKING:
    from pipecat_tandem.policy.delivery import PendingOutput


def _short(text: str, limit: int = 600) -> str:
    # Spoken text goes into the context too (as the bot's turn): defused, never a call.
    text = defuse(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class DeliveryWording:
    """Templates for woven (developer message) and verbatim (spoken) deliveries."""

    weave_intro: str = (
        "Background work has finished. Tell the user now, briefly and naturally, in your own "
        "words, once. Do not repeat anything you already told them and do not mention job ids."
    )
    weave_result: str = "- Request: {task}\n  Result: {text}"
    weave_partial: str = "- Request: {task}\n  Partial result (more is coming): {text}"
    weave_redelivery: str = (
        "  (Your earlier announcement of this was cut off by the user: say it again briefly.)"
    )
    weave_offer: str = (
        "- The user moved on from: {task}. An answer exists; do NOT read it out. Offer it in "
        "one short sentence, e.g. 'I also have the answer on that, want it?'. Answer: {text}"
    )
    weave_failure: str = (
        "- Request: {task}\n  It failed ({text}). Say so honestly in one short sentence."
    )
    silent_note: str = (
        "Background result (for context only; mention it only if it becomes relevant):\n"
        "- Request: {task}\n  Result: {text}"
    )
    # A result the user kept talking over: announcing it once more would be one time too
    # many, but it must stay at hand for when they ask.
    into_context_note: str = (
        "Background result the user cut off several times (for context only: do not "
        "announce it again; if the user asks about it, answer from it):\n"
        "- Request: {task}\n  Result: {text}"
    )
    into_context_failure: str = (
        "Background request the user cut off several times (for context only: do not "
        "announce it again; if the user asks about it, say it failed):\n"
        "- Request: {task}\n  It failed ({text})."
    )
    spoken_result: str = "About {task}: {text}"
    spoken_offer: str = "I also have the answer on {task}. Want it?"
    # The error text is for the log and the page, not the ear: one honest sentence.
    spoken_failure: str = "Sorry, I couldn't work out {task}."

    def weave(self, items: list[PendingOutput]) -> str:
        """One developer message carrying every item of a merged delivery."""
        lines = [self.weave_intro]
        for item in items:
            # Background text is data: quoted and defused, so a model that copies it
            # (a document holding a tool call) cannot emit a call from it.
            fields = {
                "task": quote_data(item.task or "your earlier request", 200),
                "text": quote_data(item.text),
            }
            if item.kind == "failure":
                lines.append(self.weave_failure.format(**fields))
            elif item.stale:
                lines.append(self.weave_offer.format(**fields))
            elif not item.is_final:
                lines.append(self.weave_partial.format(**fields))
            else:
                lines.append(self.weave_result.format(**fields))
            if item.attempts:
                lines.append(self.weave_redelivery)
        return "\n".join(lines)

    def silent(self, items: list[PendingOutput]) -> str:
        """A context-only note for ``silent`` deliveries."""
        return "\n".join(
            self.silent_note.format(
                task=quote_data(i.task or "earlier request", 200), text=quote_data(i.text)
            )
            for i in items
        )

    def into_context(self, items: list[PendingOutput]) -> str:
        """A context-only note for outputs whose redeliveries are used up."""
        return "\n".join(
            (self.into_context_failure if i.kind == "failure" else self.into_context_note).format(
                task=quote_data(i.task or "earlier request", 200), text=quote_data(i.text)
            )
            for i in items
        )

    def spoken(self, items: list[PendingOutput]) -> str:
        """The verbatim text for the TTS."""
        parts = []
        for item in items:
            task = _short(item.task or "your earlier request", 120).rstrip(".?!")
            text = _short(item.text).rstrip()
            if item.verbatim and not item.stale and item.kind != "failure":
                parts.append(text)
            elif item.kind == "failure":
                parts.append(self.spoken_failure.format(task=task, text=text.rstrip(".")))
            elif item.stale:
                parts.append(self.spoken_offer.format(task=task))
            elif len(items) == 1:
                parts.append(text)  # one answer speaks for itself
            else:
                parts.append(self.spoken_result.format(task=task, text=text))
        return " ".join(parts)
