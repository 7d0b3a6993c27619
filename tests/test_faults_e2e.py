"""Fault injection through the real server (issue 13): each fault ends in one short
sentence to the user, and the call goes on.

``TandemServer`` (the server ``tandem run`` starts) takes each call from a real aiortc
peer on 127.0.0.1, with the production pipeline (``build_tandem_pipeline``: VAD,
aggregators, delegation, speech guard, interleaver) on scripted models. The caller
says two things five seconds apart; one fault is injected in the first, and what
the caller hears (the ``bot_text`` the server sends it) and the call's event log
must show the fault told in one short sentence, once, and the second turn answered.

The in-process versions (virtual time, every variant) are ``test_speech_faults``,
``test_delivery_faults``, ``test_tool_errors`` and ``test_event_log_failures``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from pipecat_tandem.background.jobs import JobRegistry
from pipecat_tandem.background.tools import Tool, calculator_tool
from pipecat_tandem.observe.metrics import compute_metrics
from pipecat_tandem.policy.speech_faults import SpeechApologies
from tests.support.fake_llm import FakeReply
from tests.support.fake_services import FakeSessionFactory, FakeTTSService
from tests.support.media import TestPeer, speech_pcm
from tests.support.scenario import background_responder, weaving_responder
from tests.test_e2e_webrtc import start, wait_for
from tests.test_event_log_failures import FailingFile
from tests.test_scenarios import answer, delegate_arith
from tests.test_speech_faults import SORRY_LLM, SORRY_STT, SORRY_TTS, FaultySTT, FaultyTTS

pytestmark = pytest.mark.e2e

ASK = "what is 1234 times 5678"
WEATHER = "what is the weather in Rome"
SORRY_JOB = "Sorry, that failed."
SORRY_HUNG = SpeechApologies().llm_hung
#: Two short utterances five seconds apart: each is one VAD segment, so the scripted
#: STT's n-th transcription is the n-th thing the caller said.
CALLER = speech_pcm("Hello bot.", tail_silence_s=5.0) + speech_pcm(
    "Hello again.", lead_silence_s=0.0
)


def _weather_via_broken_tool(broken: str) -> Callable[[list[dict[str, Any]]], FakeReply]:
    """A background model that asks tool ``broken`` and says in one sentence if it failed."""

    def respond(messages: list[dict[str, Any]]) -> FakeReply:
        last = messages[-1] if messages else {}
        if last.get("role") != "tool":
            return FakeReply(text="", tool_calls=[(broken, {"city": "Rome"})])
        if "error" in str(last.get("content")):
            return FakeReply(text="I couldn't get the weather right now.")
        return FakeReply(text="Sunny, 21 degrees.")

    return respond


def _tool(name: str, fn: Callable[..., Any]) -> Tool:
    props = {"city": {"type": "string"}}
    return Tool(name=name, description="Weather.", properties=props, required=[], fn=fn)


def _raises(args: Any, env: Any) -> Any:
    raise ConnectionError("weather service unreachable")


def _not_json(args: Any, env: Any) -> Any:
    return {"temperatures": {21, 23}}  # a set: pipecat cannot put it in the context


def _fails_on_first_turn(messages: list[dict[str, Any]]) -> FakeReply:
    """The interaction model raises on the caller's first turn (a cloud 5xx), then works."""
    users = [m for m in messages if m.get("role") == "user"]
    if len(users) == 1 and messages[-1].get("role") == "user":
        return FakeReply(raise_error=RuntimeError("model exploded"))
    return weaving_responder(_delegate)(messages)


def _hangs_on_first_turn(messages: list[dict[str, Any]]) -> FakeReply:
    """The interaction model never answers the caller's first turn (a stalled socket)."""
    users = [m for m in messages if m.get("role") == "user"]
    if len(users) == 1 and messages[-1].get("role") == "user":
        return FakeReply(hang=True)
    return weaving_responder(_delegate)(messages)


def _delegate(text: str) -> str | None:
    return text if ("weather" in text or delegate_arith(text)) else None


@dataclass
class Fault:
    """One fault: the session factory that injects it and what the caller must hear."""

    texts: list[str]  # what the scripted STT transcribes, segment by segment
    told: str  # the one sentence the caller must hear about the fault
    stt_faults: dict[int, str] = field(default_factory=dict)
    tts_faults: dict[int, str] = field(default_factory=dict)
    background: Callable[[list[dict[str, Any]]], FakeReply] | None = None
    interaction: Callable[[list[dict[str, Any]]], FakeReply] | None = None
    tools: list[Tool] | None = None
    verbatim: bool = False
    disk_full: bool = False

    def factory(self) -> FakeSessionFactory:
        def options() -> dict[str, Any]:
            extra: dict[str, Any] = {
                # A hung model is cut at 1.5 s (the interaction model's first token
                # at 3 s), a hung job at its 2 s deadline.
                "speech_timeout_s": 1.5,
                "reply_timeout_s": 3.0,
                "registry": JobRegistry(default_deadline_s=2.0),
                "verbatim": self.verbatim,
            }
            if self.tools is not None:
                extra["tools"] = self.tools
            return extra

        def fill_the_disk(log: Any) -> None:
            # The record file's disk fills after 5 lines, mid-call.
            log._file.close()
            log._file = FailingFile(ok=5)

        return FakeSessionFactory(
            interaction=self.interaction or weaving_responder(_delegate),
            background=self.background or background_responder(answer),
            stt=lambda: FaultySTT(self.texts, self.stt_faults),
            tts=lambda: FaultyTTS(self.tts_faults) if self.tts_faults else FakeTTSService(),
            options=options,
            on_event_log=fill_the_disk if self.disk_full else None,
        )


def _job_fault(reply: FakeReply) -> Fault:
    return Fault([ASK, "hello again"], SORRY_JOB, background=background_responder(lambda t: reply))


FAULTS = {
    "stt raises": Fault(["hello there", "hello again"], SORRY_STT, stt_faults={0: "raise"}),
    "stt hangs": Fault(["hello there", "hello again"], SORRY_STT, stt_faults={0: "hang"}),
    "tts raises": Fault(["hello there", "hello again"], SORRY_TTS, tts_faults={0: "raise"}),
    "tts hangs": Fault(["hello there", "hello again"], SORRY_TTS, tts_faults={0: "hang"}),
    "interaction model raises": Fault(
        ["hello there", "hello again"], SORRY_LLM, interaction=_fails_on_first_turn
    ),
    "interaction model hangs": Fault(
        ["hello there", "hello again"], SORRY_HUNG, interaction=_hangs_on_first_turn
    ),
    "background raises": _job_fault(FakeReply(raise_error=RuntimeError("model exploded"))),
    "background hangs": _job_fault(FakeReply(hang=True)),
    "background garbage": _job_fault(FakeReply(text=" ...  ")),
    "background empty": _job_fault(FakeReply(text="")),
    "tool raises": Fault(
        [WEATHER, "hello again"],
        "I couldn't get the weather right now.",
        background=_weather_via_broken_tool("weather"),
        tools=[_tool("weather", _raises), calculator_tool()],
        verbatim=True,  # the background's own sentence is what the caller hears
    ),
    "tool returns non-JSON": Fault(
        [WEATHER, "hello again"],
        "I couldn't get the weather right now.",
        background=_weather_via_broken_tool("weather"),
        tools=[_tool("weather", _not_json), calculator_tool()],
        verbatim=True,
    ),
}


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _heard(peer: TestPeer) -> list[str]:
    return [m["text"] for m in peer.tandem_messages("bot_text")]


@pytest.mark.parametrize("name", list(FAULTS))
async def test_a_fault_is_told_in_one_sentence_and_the_call_goes_on(name, tmp_path):
    fault = FAULTS[name]
    factory = fault.factory()
    srv = await start(factory, tmp_path)
    peer = TestPeer(f"http://127.0.0.1:{srv.port}", pcm=CALLER)
    try:
        await peer.connect()
        told = await wait_for(lambda: fault.told in _heard(peer), 15)
        assert told, (name, _heard(peer))
        # The second turn is heard and answered after the fault.
        answered = await wait_for(
            lambda: "Sure." in _heard(peer)[_heard(peer).index(fault.told) + 1 :], 15
        )
        assert answered, (name, _heard(peer))
        transcripts = [m["text"] for m in peer.tandem_messages("transcript")]
        assert "hello again" in transcripts
        heard = _heard(peer)
        assert heard.count(fault.told) == 1, heard
        if name.startswith("tts"):
            # The reply whose speech failed is not shown to the caller as said.
            assert heard.count("Sure.") == 1, heard
        assert len(_sentences(fault.told)) == 1 and len(fault.told.split()) <= 12
        # Nothing of the error itself reaches the caller's ear.
        assert not any(w in " ".join(heard) for w in ("exploded", "Error", "error", "{"))
    finally:
        await peer.close()
    assert await wait_for(lambda: srv.sessions.active == 0, 10)
    await srv.stop()
    events = factory.tandems[-1].event_log.events
    m = compute_metrics(events)
    assert m.lost == 0 and m.repeated == 0
    if name.startswith(("stt", "tts", "interaction")):
        assert [e["kind"] for e in events].count("speech_apology") == 1


async def test_a_full_disk_costs_only_the_record(tmp_path):
    # The record's disk fills mid-call: nothing is said about it (it is the operator's
    # problem, logged once), the delegated answer and the next turn are heard.
    fault = Fault([ASK, "hello again"], "The answer is 7006652.", disk_full=True)
    factory = fault.factory()
    srv = await start(factory, tmp_path)
    peer = TestPeer(f"http://127.0.0.1:{srv.port}", pcm=CALLER)
    try:
        await peer.connect()
        assert await wait_for(lambda: "Sure." in _heard(peer), 20), _heard(peer)
        assert _heard(peer)[:3] == ["I'm on it.", "The answer is 7006652.", "Sure."]
    finally:
        await peer.close()
    assert await wait_for(lambda: srv.sessions.active == 0, 10)
    await srv.stop()
    log = factory.tandems[-1].event_log
    assert log.dropped > 10 and log.write_error is not None
    assert compute_metrics(log.events).lost == 0  # accounting kept in memory


async def test_a_caller_who_vanishes_mid_delivery_loses_nothing_and_the_next_call_works(
    tmp_path,
):
    # The caller hangs up the moment the result starts being delivered: the session
    # ends, the result is accounted (not lost, not left pending) and the server
    # answers the next caller.
    fault = Fault([ASK, "hello again", "hello there"], "")
    factory = fault.factory()
    srv = await start(factory, tmp_path)
    base = f"http://127.0.0.1:{srv.port}"
    first = TestPeer(base, pcm=CALLER)
    try:
        await first.connect()
        assert await wait_for(lambda: first.tandem_messages("delivery"), 15)
    finally:
        await first.close()
    assert await wait_for(lambda: srv.sessions.active == 0, 10), "the vanished call stayed"
    events = factory.tandems[-1].event_log.events
    m = compute_metrics(events)
    assert m.lost == 0 and m.repeated == 0
    assert [e["kind"] for e in events].count("result_ready") == 1
    second = TestPeer(base, pcm=speech_pcm("Hello bot."))
    try:
        await second.connect()
        # The next caller's question is delegated and answered as usual.
        answered = await wait_for(lambda: "The answer is 7006652." in _heard(second), 15)
        assert answered, _heard(second)
    finally:
        await second.close()
    assert await wait_for(lambda: srv.sessions.active == 0, 10)
    await srv.stop()
