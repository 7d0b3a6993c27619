#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""An offline judge for pipecat's eval harness: the embedded Qwen 1.5B, constrained.

The harness asks its judge through a ``pipecat.classifiers`` classifier: a reply
is ``yes`` / ``no`` / ``continue`` against a criterion, a function call is yes or
no. pipecat's default is gemma through Ollama, which downloads; here the
embedded background model (Qwen2.5 1.5B, from the registry packages) answers,
with its reply decoded under a JSON schema: a short note on what the judged text
does, then an enum of the allowed outcomes, so it cannot answer anything else.

It gives one answer, not a distribution: the chosen outcome gets probability 1.
How far it can be trusted is measured on labeled verdicts
(``tests/data/release_evals/judge_labels.jsonl``,
``benchmarks/bench_release_evals.py --judge-only --judge model``): 34 of 51 on
2026-12-05, not enough, so the runs use :mod:`.rule_judge`; this one stays to be
measured against. :class:`LabelClassifier` is the base both judges share.

As a scenario's judge block (``--judge model`` in the bench does the same)::

    judge:
      eval: {factory: pipecat_tandem.bench.release_evals.judge.local_judge, explainer: false}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pipecat.classifiers.base_classifier import (
    BaseClassifier,
    ChoiceQuestion,
    ChoiceResult,
    ClassifierError,
    ClassifierImage,
    YesNoQuestion,
    YesNoResult,
)

#: The judge's framing; the harness's own question and criterion follow it.
_SYSTEM = (
    "You are a strict judge of a voice assistant. You check whether one reply (or one "
    "function call) really does what a criterion says. A reply about something else, or "
    "with a wrong fact, does not satisfy it."
)
#: Bound on the judge's reply: one short JSON object with a short note.
_MAX_TOKENS = 80
#: Where the harness's notes start after the criterion.
_NOTES_START = "The bot's text may be"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render_state(state: Any) -> str:
    """The harness's state (conversation, latest reply or call) as plain lines."""
    if not isinstance(state, dict):
        return _text(state)
    lines: list[str] = []
    for entry in state.get("conversation") or []:
        speaker = entry.get("speaker", "?")
        turn = f" (turn {entry['turn']})" if "turn" in entry else ""
        lines.append(f"{speaker}{turn}: {entry.get('text', '')}")
    if "latest_bot_reply" in state:
        lines.append(
            f"LATEST BOT REPLY (the one to judge): {state['latest_bot_reply'] or '(none)'}"
        )
    if "call" in state:
        call = state["call"]
        lines.append(
            f"FUNCTION CALL (the one to judge): {call.get('name')}({_text(call.get('arguments'))})"
        )
    return "\n".join(lines) or "(empty conversation)"


class LabelClassifier(BaseClassifier):
    """A classifier that answers each question with one label (probability 1).

    Subclasses implement :meth:`_label`; a yes/no question is asked as a choice
    of ``yes`` or ``no``. Every reply it judges is kept in :attr:`judged` (the
    criterion, the conversation before it, the reply and the verdict), so a run's
    verdicts can be labeled afterwards by someone who did not write the judge.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.judged: list[dict[str, Any]] = []

    async def _ask(
        self,
        state: str | dict[str, Any] | list[Any],
        questions: Mapping[str, Any],
        images: Sequence[ClassifierImage] = (),
    ) -> tuple[dict[str, Any], None]:
        results: dict[str, Any] = {}
        for name, question in questions.items():
            if isinstance(question, YesNoQuestion):
                label = await self._label(state, question.instructions, {"yes": None, "no": None})
                results[name] = YesNoResult(probability=1.0 if label == "yes" else 0.0)
            elif isinstance(question, ChoiceQuestion):
                label = await self._label(state, question.instructions, question.options)
                self._keep(state, question.instructions, label)
                probabilities = {option: float(option == label) for option in question.options}
                results[name] = ChoiceResult(
                    choice=label, probabilities=probabilities, confidence=1.0
                )
            else:
                raise ClassifierError(f"the judge cannot answer {type(question).__name__}")
        return results, None

    async def _label(self, state: Any, instructions: Any, options: Mapping[str, Any]) -> str:
        """The one label of ``options`` that fits (raise ``ClassifierError`` if none can)."""
        raise NotImplementedError

    def _keep(self, state: Any, instructions: Any, label: str) -> None:
        if not isinstance(state, dict) or "latest_bot_reply" not in state:
            return  # a function call or a whole run: not a reply to label
        conversation = [
            {"speaker": str(e.get("speaker", "?")), "text": str(e.get("text", ""))}
            for e in state.get("conversation") or []
            if isinstance(e, dict)
        ]
        self.judged.append(
            {
                "criterion": split_criterion(_text(instructions))[1].rstrip("."),
                "user_turns": [e["text"] for e in conversation if e["speaker"] == "user"],
                "conversation": conversation,
                "reply": str(state.get("latest_bot_reply") or ""),
                "verdict": label,
            }
        )


class LocalJudgeClassifier(LabelClassifier):
    """Answers the harness's questions with a local GGUF model under a JSON schema.

    Args:
        server: A ``LocalModelServer`` (default: the embedded Qwen 1.5B on 2 threads).
        **kwargs: Passed to ``BaseClassifier``.
    """

    def __init__(self, *, server: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._server = server

    @property
    def model(self) -> str | None:
        """The model that answers, named in the metrics."""
        return "qwen2.5-1.5b-instruct (embedded)"

    def _ensure_server(self) -> Any:
        if self._server is None:
            from pipecat_tandem.models.local_server import LocalModelServer, ServerConfig
            from pipecat_tandem.models.requantize import ensure_weights
            from pipecat_tandem.models.weights import QWEN_15B

            self._server = LocalModelServer(
                ServerConfig(model_path=ensure_weights(QWEN_15B), n_threads=2, name="judge")
            )
        return self._server

    async def _label(self, state: Any, instructions: Any, options: Mapping[str, Any]) -> str:
        labels = list(options)
        described = "\n".join(
            f"- {label}: {_text(meaning)}" if meaning else f"- {label}"
            for label, meaning in options.items()
        )
        question, criterion = split_criterion(_text(instructions))
        prompt = (
            f"{render_state(state)}\n\nQUESTION: {question}\nCRITERION: {criterion}\n\n"
            f"LABELS:\n{described}\n\nFirst say in a few words what the judged text actually "
            "does, then give the label."
        )
        # The note comes before the label: a 1.5B model asked for the label alone
        # answered "yes" to nearly everything (8 of 8 on the first labeled cases).
        schema = {
            "type": "object",
            "properties": {
                "what_it_does": {"type": "string", "maxLength": 160},
                "label": {"type": "string", "enum": labels},
            },
            "required": ["what_it_does", "label"],
        }
        request = {
            "messages": [
                {"role": "system", "content": _SYSTEM},
                {"role": "user", "content": prompt},
            ],
            "temperature": 0.0,
            "max_tokens": _MAX_TOKENS,
            "response_format": {"type": "json_schema", "json_schema": {"schema": schema}},
        }
        try:
            response = await self._ensure_server().complete_async(request)
            content = response["choices"][0]["message"]["content"]
            label = json.loads(content)["label"]
        except Exception as e:  # a failed question is a ClassifierError: the harness retries once
            raise ClassifierError(f"the local judge failed: {e}") from e
        if label not in options:
            raise ClassifierError(f"the local judge answered {label!r}, not one of {labels}")
        return str(label)


def split_criterion(instructions: str) -> tuple[str, str]:
    """The harness's question and its criterion, without the notes after it.

    The harness writes ``QUESTION Criterion: CRITERION. NOTES``; a small model
    judges better with the criterion on a line of its own.
    """
    head, sep, tail = instructions.partition("Criterion:")
    if not sep:
        return instructions, ""
    criterion = tail.split(_NOTES_START, 1)[0].split("`conversation` is context", 1)[0]
    return head.strip(), criterion.strip()


def local_judge(config: Mapping[str, Any]) -> LocalJudgeClassifier:
    """The harness's ``judge.eval.factory``: a :class:`LocalJudgeClassifier`.

    Args:
        config: The scenario's ``judge.eval`` block (nothing in it is needed).
    """
    return _shared()


_JUDGE: LocalJudgeClassifier | None = None


def _shared() -> LocalJudgeClassifier:
    # One model load per process: every scenario run builds a judge, and loading
    # 1 GB of weights each time would dominate the run.
    global _JUDGE
    if _JUDGE is None:
        _JUDGE = LocalJudgeClassifier()
    return _JUDGE
