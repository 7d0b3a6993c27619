"""Frame-level tests of the ResultInterleaver contract (pipecat run_test, virtual time)."""

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesAppendFrame,
    LLMTextFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.tests.utils import SleepFrame, run_test

from pipecat_tandem.frames import (
    BackgroundDeliveryFrame,
    BackgroundErrorFrame,
    BackgroundJobStateFrame,
    BackgroundResultFrame,
    JobState,
)
from pipecat_tandem.processors import ResultInterleaver
from tests.support.virtual_time import run_virtual


def run(interleaver, frames, direction=FrameDirection.DOWNSTREAM):
    return run_virtual(
        run_test(interleaver, frames_to_send=frames, frames_to_send_direction=direction)
    )


def deliveries(frames):
    return [f for f in frames if isinstance(f, LLMMessagesAppendFrame | TTSSpeakFrame)]


def test_contract_constructor_and_weave_delivery_at_gap():
    il = ResultInterleaver(min_gap_s=0.5)
    down, up = run(il, [BackgroundResultFrame(job_id="j1", text="42"), SleepFrame(1.0)])
    [d] = deliveries(down)
    assert isinstance(d, LLMMessagesAppendFrame) and d.run_llm is True and not d.interruptible
    assert d.messages[0]["role"] == "developer" and "42" in d.messages[0]["content"]
    assert any(isinstance(f, BackgroundDeliveryFrame) for f in up)
    assert not any(isinstance(f, BackgroundResultFrame) for f in down)  # consumed, not leaked


def test_verbatim_mode_says_the_result_as_one_llm_response_text_clients_see():
    # A TTSSpeakFrame is speech only: RTVI sends no bot-llm-* message for it, so a text
    # client (pipecat's eval harness in text mode) never saw a delivered result.
    down, _ = run(ResultInterleaver(min_gap_s=0.5, verbatim=True),
                  [BackgroundResultFrame(job_id="j1", text="It is 42.", task="the answer"), SleepFrame(1.0)])  # fmt: skip
    assert not deliveries(down)  # no TTSSpeakFrame: the text is spoken once, by the TTS
    reply = [f for f in down if isinstance(f, LLMFullResponseStartFrame | LLMTextFrame
                                           | LLMFullResponseEndFrame)]  # fmt: skip
    assert [type(f) for f in reply] == [
        LLMFullResponseStartFrame,
        LLMTextFrame,
        LLMFullResponseEndFrame,
    ]
    assert "It is 42." in reply[1].text


def test_verbatim_delivery_reaches_a_text_client_as_rtvi_bot_llm_messages():
    from pipecat.processors.frameworks.rtvi import RTVIObserver

    sent: list[dict] = []

    class Recorder(RTVIObserver):
        async def send_rtvi_message(self, model, exclude_none=True):
            sent.append(model.model_dump(exclude_none=exclude_none))

    il = ResultInterleaver(min_gap_s=0.5, verbatim=True)
    run_virtual(
        run_test(
            il,
            frames_to_send=[BackgroundResultFrame(job_id="j1", text="It is 42."), SleepFrame(1.0)],
            observers=[Recorder()],
        )
    )
    llm = [m for m in sent if m["type"].startswith("bot-llm-")]
    assert [m["type"] for m in llm] == ["bot-llm-started", "bot-llm-text", "bot-llm-stopped"]
    assert llm[1]["data"]["text"] == "It is 42."


@pytest.mark.parametrize("direction", [FrameDirection.DOWNSTREAM, FrameDirection.UPSTREAM])
def test_nothing_between_user_start_and_stop_in_either_direction(direction):
    il = ResultInterleaver(min_gap_s=0.5)
    frames = [
        UserStartedSpeakingFrame(),
        BackgroundResultFrame(job_id="j1", text="42"),
        SleepFrame(3.0),
        UserStoppedSpeakingFrame(),
        SleepFrame(1.0),
    ]
    down, up = run(il, frames, direction)
    out = down if direction is FrameDirection.DOWNSTREAM else up
    delivered = [e for e in il.event_log.events if e["kind"] == "delivered"]
    stop = [e for e in il.event_log.events if e["kind"] == "user_stopped"][0]
    assert len(delivered) == 1 and delivered[0]["t"] == pytest.approx(stop["t"] + 0.5)
    assert len(deliveries(down)) == 1
    assert any(isinstance(f, UserStoppedSpeakingFrame) for f in out)  # passed on untouched


def test_not_while_bot_speaks_frames_arriving_upstream():
    il = ResultInterleaver(min_gap_s=0.5)
    # Bot speaking frames come upstream from the output transport.
    frames = [BotStartedSpeakingFrame(), BackgroundResultFrame(job_id="j1", text="42"),
              SleepFrame(2.0), BotStoppedSpeakingFrame(), SleepFrame(0.3)]  # fmt: skip
    run(il, frames, FrameDirection.UPSTREAM)
    assert not [e for e in il.event_log.events if e["kind"] == "delivered"]


def test_not_while_a_response_is_in_flight():
    il = ResultInterleaver(min_gap_s=0.5)
    frames = [LLMFullResponseStartFrame(), BackgroundResultFrame(job_id="j1", text="42"), SleepFrame(2.0),
              LLMFullResponseEndFrame(), SleepFrame(0.4)]  # fmt: skip
    down, _ = run(il, frames)
    assert not deliveries(down)


def test_failure_is_delivered_honestly_and_cancelled_job_never():
    il = ResultInterleaver(min_gap_s=0.5)
    frames = [
        UserStartedSpeakingFrame(),
        BackgroundResultFrame(job_id="c", text="secret"),
        BackgroundJobStateFrame(job_id="c", state=JobState.CANCELLED),
        BackgroundErrorFrame(job_id="f", error="it timed out after 5 s", task="plan"),
        UserStoppedSpeakingFrame(),
        SleepFrame(1.0),
    ]
    down, _ = run(il, frames)
    [d] = deliveries(down)
    content = d.messages[0]["content"]
    assert "timed out" in content and "secret" not in content


def test_out_of_order_and_duplicate_speaking_frames_are_harmless():
    il = ResultInterleaver(min_gap_s=0.5)
    frames = [UserStoppedSpeakingFrame(), BotStoppedSpeakingFrame(), BotStoppedSpeakingFrame(),
              BackgroundResultFrame(job_id="j", text="x"), BackgroundResultFrame(job_id="j", text="x"),
              SleepFrame(1.0)]  # fmt: skip
    down, _ = run(il, frames)
    assert len(deliveries(down)) == 1
    assert [e["kind"] for e in il.event_log.events].count("duplicate_ignored") == 1


def test_bad_constructor_arguments_raise():
    with pytest.raises(ValueError):
        ResultInterleaver(min_gap_s=-1)
    with pytest.raises(ValueError):
        ResultInterleaver(stale_mode="loud")
