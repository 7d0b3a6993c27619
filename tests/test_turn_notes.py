"""The machinery's notes in user turns are dropped once answered or superseded."""

from pipecat_tandem.policy.turn_notes import (
    NOTE_PREFIX,
    delegated_job_note,
    drop_answered_notes,
    strip_notes,
)

GREETING = [
    {"role": "system", "content": "You are a friendly voice assistant."},
    {"role": "assistant", "content": "Hello! How can I assist you today?"},
]
REPORT = "Write me a report about sea turtles."
JOKE = "Actually, never mind the report. Tell me a joke instead."


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def test_notes_strip_to_the_users_words():
    delegated = f"{REPORT} {delegated_job_note('job-1')}"
    assert delegated_job_note("job-1").startswith(NOTE_PREFIX)
    assert strip_notes(delegated) == REPORT
    assert strip_notes(f"{NOTE_PREFIX}job-2 is done.] {JOKE}") == JOKE
    assert strip_notes("no note [here] at all") == "no note [here] at all"


def test_the_turn_being_answered_keeps_its_note():
    messages = [*GREETING, _user(f"{REPORT} {delegated_job_note('job-1')}")]
    assert drop_answered_notes(messages) == messages


def test_an_answered_note_is_dropped_and_nothing_is_changed_in_place():
    noted = _user(f"{REPORT} {delegated_job_note('job-1')}")
    messages = [*GREETING, noted, {"role": "assistant", "content": "On it."}, _user(JOKE)]
    out = drop_answered_notes(messages)
    assert out[2] == _user(REPORT) and out[3:] == messages[3:]
    assert noted["content"].endswith("delegate it again.]")  # the context's own message


def test_a_note_the_user_spoke_over_is_dropped():
    # pipecat's async_tool_cancellation, as the 0.5B got it: the report's turn was
    # never answered (the cancel came while "On it." was being written), so two user
    # messages in a row, the first still saying "reply only with 'On it.'".
    messages = [
        *GREETING,
        _user(f"{REPORT} {delegated_job_note('job-1')}"),
        _user(f"What's the weather in Paris? {delegated_job_note('job-2')}"),
    ]
    out = drop_answered_notes(messages)
    assert out[2] == _user(REPORT)
    assert out[3] == messages[3]


def test_a_turn_of_only_a_note_keeps_its_text():
    only = _user(delegated_job_note("job-1"))
    messages = [only, {"role": "assistant", "content": "On it."}, _user("thanks")]
    assert drop_answered_notes(messages)[0] == only


class _RecordingServer:
    """Test support: stands in for the model server and records each request."""

    def __init__(self) -> None:
        from pathlib import Path
        from types import SimpleNamespace

        self.config = SimpleNamespace(model_path=Path("fake.gguf"))
        self.requests: list[dict] = []

    async def stream_chat(self, request, spare=False):
        self.requests.append(request)
        yield {"choices": [{"delta": {"content": "Why did the tomato turn red?"}}]}


async def test_the_local_service_sends_and_prefills_without_answered_notes():
    from pipecat.frames.frames import LLMContextFrame
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.tests.utils import SleepFrame, run_test

    from pipecat_tandem.models.local_llm import LocalLLMService

    server = _RecordingServer()
    llm = LocalLLMService(server=server)  # type: ignore[arg-type]
    noted = f"{REPORT} {delegated_job_note('job-1')}"
    # A turn that does not call the report off (that would leave it out: topic.called_off).
    waiting = "Tell me a joke while I wait."
    context = LLMContext(messages=[_user(noted), _user(waiting)])
    await run_test(
        llm,
        frames_to_send=[LLMContextFrame(context), SleepFrame(0.2)],
        expected_down_frames=None,
    )
    turn, refill = server.requests
    assert [m["content"] for m in turn["messages"]] == [REPORT, waiting]
    # The prefill holds the history as the next turn will send it.
    assert [m["content"] for m in refill["messages"]][:2] == [REPORT, waiting]
    assert context.get_messages()[0]["content"] == noted  # the context is left alone
