#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Run one of pipecat's release-eval scenarios against a running tandem bot.

The scenario file is pipecat's, unedited; only the services it names for the
harness's own side (the judge, the user's voice, the bot-speech transcriber) are
replaced by local ones, and :mod:`.adapter` is wired into the session's event
stream. Everything else — the turns, the user's words, ``send_after`` timings,
the judged criteria — is pipecat's ``EvalScriptSession`` doing what it always does.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipecat_tandem.bench.release_evals.adapter import install

#: Where the copied scenarios live, relative to the repository root.
SCENARIO_DIR = Path("tests/data/release_evals/scenarios")
#: The four async-tool scenarios, then the controls.
ASYNC_SCENARIOS = (
    "async_tool_delivery",
    "async_tool_deferred_delivery_audio",
    "async_tool_cancellation",
    "async_tool_cancellation_concurrent",
)
CONTROL_SCENARIOS = ("capital_question", "multi_turn", "interruption_audio")


@dataclass
class ScenarioOutcome:
    """One run of one scenario.

    Parameters:
        name: The scenario.
        passed: Whether every turn passed.
        seconds: Wall time of the run.
        turns: Each turn's status (``passed``, ``failed``, ...).
        failures: The harness's failure messages, short.
        debug_tail: The end of the harness's debug log (for the report on a failure).
        waits: Per user turn (``t2``...), seconds from the user's last word to the
            bot's first reply, as the harness saw them (:func:`reply_waits`).
        judged: Every reply the judge was asked about: its criterion, the user's
            turns and the conversation before it, the reply, and the verdict
            (``LabelClassifier.judged``), for a labeler who did not write the judge.
    """

    name: str
    passed: bool
    seconds: float
    turns: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    debug_tail: list[str] = field(default_factory=list)
    waits: dict[str, float] = field(default_factory=dict)
    judged: list[dict[str, Any]] = field(default_factory=list)


_LOG_LINE = re.compile(r"^\s*(\d+\.\d+)\s+\[\s*(t\d+)\]\s+(.*)$")


def reply_waits(debug_log: list[str]) -> dict[str, float]:
    """How long the caller waited for each user turn's reply, from the harness's log.

    The wait runs from the user's last word (the text sent, or the end of the
    spoken turn: ``user_stopped_speaking``) to the bot's first reply (it starts
    speaking, or in text mode its response arrives). A turn the user did not
    speak in, or that got no reply, has none.

    Args:
        debug_log: The harness's debug lines ("  29.699  [ t3]  event: ...").

    Returns:
        Turn ("t2") → seconds.
    """
    waits: dict[str, float] = {}
    start: dict[str, float] = {}
    for line in debug_log:
        m = _LOG_LINE.match(str(line))
        if m is None:
            continue
        at, turn, what = float(m.group(1)), m.group(2), m.group(3)
        if turn in waits:
            continue
        if what.startswith("send:") or what.startswith("event: user_stopped_speaking"):
            start[turn] = at
        elif turn in start and (
            what.startswith("event: bot_started_speaking") or what.startswith("event: llm_response")
        ):
            waits[turn] = round(at - start[turn], 3)
    return waits


def load_scenario(name: str, root: Path) -> Any:
    """Pipecat's parsed scenario ``name`` from the copied files."""
    from pipecat.evals.scenario import EvalScenarioFile

    # pipecat's files use the top-level `turns:` form its loader now warns about
    # (once per file, under pipecat's "always" filter); they stay as pipecat wrote them.
    (scenario,) = EvalScenarioFile.load(root / SCENARIO_DIR / f"{name}.yaml").scenarios
    return scenario


def expects_greeting(scenario: Any) -> bool:
    """Whether the scenario waits for the bot to speak first (its first turn only observes).

    pipecat's scenarios that open with an observing turn ("Wait for the bot's
    on-connect greeting before speaking") need a bot that greets; one that opens
    with the user speaking (``interruption_audio``) has no turn for a greeting, and
    a greeting there races the first turn: its ``llm_started`` is taken for the
    reply's, and ``send_after: llm_started + 2000 ms`` barges into the greeting.
    pipecat's example bots greet in both, and get away with it because a cloud
    LLM's greeting has started before the harness's handshake is over; the
    embedded 0.5B's greeting starts seconds later. So the evals' bot greets only
    for scenarios that wait for it (``TANDEM_BOT_GREETING``, set per bot process).

    Args:
        scenario: pipecat's parsed scenario (:func:`load_scenario`).
    """
    turns = list(getattr(scenario, "turns", None) or [])
    if not turns:
        return False
    first = turns[0]
    return getattr(first, "user", None) is None and getattr(first, "dtmf", None) is None


def local_classifier(kind: str = "rule") -> Any:
    """An offline judge's classifier (a ``LabelClassifier``).

    It goes into an ``EvalJudge`` with no explainer (that would be an LLM too).

    Args:
        kind: ``rule`` (:mod:`.rule_judge`, deterministic) or ``model`` (:mod:`.judge`,
            the embedded Qwen 1.5B, one per process).
    """
    classifier: Any
    if kind == "model":
        from pipecat_tandem.bench.release_evals.judge import local_judge

        classifier = local_judge({})
    elif kind == "rule":
        from pipecat_tandem.bench.release_evals.rule_judge import RuleJudgeClassifier

        classifier = RuleJudgeClassifier()
    else:
        raise ValueError(f"judge must be rule or model, got {kind!r}")
    return classifier


async def run_scenario(
    name: str,
    bot_url: str,
    *,
    root: Path,
    cache_dir: str | None = None,
    record_path: str | None = None,
    judge: str = "rule",
) -> ScenarioOutcome:
    """Run scenario ``name`` once against the bot at ``bot_url`` (``ws://HOST:PORT/ws``).

    Args:
        name: A scenario under ``tests/data/release_evals/scenarios``.
        bot_url: The bot's eval WebSocket.
        root: The repository root.
        cache_dir: Where the harness caches synthesized user lines.
        record_path: Where to save the conversation audio, or ``None``.
        judge: ``rule`` or ``model`` (see :func:`local_classifier`).
    """
    from pipecat.evals.judge import EvalJudge
    from pipecat.evals.script_session import EvalScriptSession
    from pipecat.evals.session import EvalSessionParams

    from pipecat_tandem.bench.release_evals.local_services import (
        bot_transcriber,
        caching_user_voice,
    )

    scenario = load_scenario(name, root)
    audio = scenario.bot_audio
    classifier = local_classifier(judge)
    # The model judge is one per process: only this run's verdicts are this run's.
    before = len(classifier.judged)
    session = EvalScriptSession.from_scenario(
        scenario,
        bot_url,
        params=EvalSessionParams(
            cache_dir=cache_dir, record_path=record_path, bot_ready_timeout_s=120.0
        ),
        judge=EvalJudge(classifier, explainer=None),
        user_tts=caching_user_voice(cache_dir) if scenario.user_speech is not None else None,
        bot_stt=bot_transcriber() if audio else None,
    )
    # Before run(): the client builds its transport and serializer when it starts.
    install(session)
    started = time.monotonic()
    result = await session.run()
    return ScenarioOutcome(
        name=name,
        passed=bool(result.passed),
        seconds=time.monotonic() - started,
        turns=[str(t.status) for t in result.turns],
        failures=[str(f)[:300] for f in result.failures],
        debug_tail=[str(line)[:300] for line in result.debug_log[-40:]],
        waits=reply_waits(list(result.debug_log)),
        judged=classifier.judged[before:],
    )
