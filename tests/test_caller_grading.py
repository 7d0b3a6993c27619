"""The conversation suite's grading rules, on hand-made recordings (no call, no models)."""

import numpy as np
import pytest

from pipecat_tandem.bench.caller import BotRecording, Turn, ci_subset, grade_turn
from pipecat_tandem.bench.caller.conversations import CONVERSATIONS
from pipecat_tandem.bench.caller.ears import Heard
from pipecat_tandem.bench.caller.grading import mentions, normalize
from pipecat_tandem.bench.caller.mic import Spoken
from pipecat_tandem.bench.caller.script import Conversation
from pipecat_tandem.bench.caller.summary import markdown, summarize

LOUD = np.full(960, 3000, np.int16)
QUIET = np.zeros(960, np.int16)


def recording(*speech: tuple[float, float], until: float = 60.0) -> BotRecording:
    """20 ms frames from 0 to ``until``; loud inside each (start, end) span."""
    rec = BotRecording()
    for i in range(int(until / 0.02)):
        t = i * 0.02
        rec.add(t, LOUD if any(a <= t < b for a, b in speech) else QUIET)
    return rec


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("five thousand forty", "5040"),
        ("Five thousand and forty minutes.", "5040 minutes."),
        ("5,040", "5040"),
        ("twenty six point two", "26.2"),
        ("three hundred thirty-six", "336"),
        ("eighty six thousand four hundred", "86400"),
        ("no numbers here", "no numbers here"),
    ],
)
def test_normalize_reads_spoken_numbers_as_digits(text: str, want: str) -> None:
    assert normalize(text).strip() == want.lower()


def test_mentions_numbers_any_common_way_but_not_inside_other_numbers() -> None:
    assert mentions("That's five thousand and forty minutes.", "5040")
    assert mentions("It is 5,040 minutes.", "5040")
    assert not mentions("It is 50400 minutes.", "5040")
    assert not mentions("It is 15040.", "5040")
    assert mentions("There are seven days.", "7")
    assert mentions("The capital is Paris.", "paris")
    assert not mentions("The sky is low.", "blue")


def test_turn_refuses_what_cannot_be_played() -> None:
    with pytest.raises(ValueError, match="must say something"):
        Turn("chat")
    with pytest.raises(ValueError, match="empty"):
        Turn("chat", ("  ",))
    with pytest.raises(ValueError, match="due_s"):
        Turn("timer", ("Tell me when ten seconds have passed.",))
    with pytest.raises(ValueError, match="timeout_s"):
        Turn("chat", ("Hi.",), timeout_s=0)
    with pytest.raises(ValueError, match="at least one turn"):
        Conversation("empty", ())
    Turn("silence")  # a caller who says nothing is a turn too


def test_segments_merge_sentence_pauses_and_split_real_gaps() -> None:
    rec = recording((1.0, 2.0), (2.4, 3.0), (5.0, 6.0))
    segs = rec.segments()
    assert [(round(s.start, 2), round(s.end, 2)) for s in segs] == [(1.0, 3.0), (5.0, 6.0)]
    audio, started = rec.audio(segs[1])
    assert started == pytest.approx(5.0 - 0.2)
    assert len(audio) == 960 * (50 + 20)
    assert rec.loud_between(0.0, 10.0) == pytest.approx(2.6, abs=0.05)


def test_a_recorded_frame_must_be_mono() -> None:
    with pytest.raises(ValueError, match="mono"):
        BotRecording().add(0.0, np.zeros((2, 960), np.int16))


def test_chat_latency_is_end_of_voice_to_first_bot_audio() -> None:
    turn = Turn("chat", ("What is the capital of France?",), expect=("paris",))
    rec = recording((3.8, 5.0))
    heard = [Heard(3.8, 5.0, "The capital of France is Paris.")]
    r = grade_turn("c", 0, turn, Spoken(1.0, 3.0), 10.0, rec, heard)
    assert r.latency_s == pytest.approx(0.8, abs=0.021)
    assert r.on_topic is True
    assert r.spoke_over_user is False


def test_off_topic_and_talking_over_the_user_are_caught() -> None:
    turn = Turn("chat", ("What color is the sky on a clear day?",), expect=("blue",))
    rec = recording((1.6, 2.6))  # the bot starts while the caller is still talking
    heard = [Heard(1.6, 2.6, "The sky is low.")]
    r = grade_turn("c", 0, turn, Spoken(1.0, 3.0), 10.0, rec, heard)
    assert r.on_topic is False
    assert r.spoke_over_user is True


def test_a_job_read_out_as_a_plan_is_not_the_answer() -> None:
    turn = Turn("job", ("How many minutes in three and a half days?",), answer=("5040",))
    heard = [
        Heard(4.0, 4.6, "On it."),
        Heard(20.0, 37.0, "We can use the date function. Jason, name, arguments, operation."),
    ]
    r = grade_turn("c", 0, turn, Spoken(1.0, 3.0), 60.0, recording((4.0, 4.6), (20, 37)), heard)
    assert r.answer_spoken is False and r.not_an_answer is True and r.result_s is None


def test_a_job_whose_answer_is_said_in_words_is_graded_with_its_time() -> None:
    turn = Turn("job", ("How many minutes in three and a half days?",), answer=("5040",))
    heard = [Heard(4.0, 4.6, "On it."), Heard(21.0, 24.0, "That's five thousand forty minutes.")]
    r = grade_turn("c", 0, turn, Spoken(1.0, 3.0), 60.0, recording((4.0, 4.6), (21, 24)), heard)
    assert r.answer_spoken is True and r.not_an_answer is False
    assert r.result_s == pytest.approx(18.0)


def test_a_timer_that_claims_it_is_done_at_once_is_an_early_claim() -> None:
    turn = Turn("timer", ("Tell me when ten seconds have passed.",), due_s=10.0)
    early = [Heard(4.0, 5.0, "Okay."), Heard(5.5, 6.5, "10 seconds have passed.")]
    r = grade_turn("c", 0, turn, Spoken(1.0, 3.0), 30.0, recording(), early)
    assert r.early_claim is True
    honest = [Heard(4.0, 5.0, "Okay, I'll tell you."), Heard(13.3, 14.0, "Ten seconds.")]
    r = grade_turn("c", 0, turn, Spoken(1.0, 3.0), 30.0, recording(), honest)
    assert r.early_claim is False
    assert r.fired_s == pytest.approx(10.3)


def test_a_cough_that_gets_a_reply_did_not_stay_quiet() -> None:
    turn = Turn("noise", noise="cough", quiet=True, wait="none")
    r = grade_turn("c", 0, turn, Spoken(1.0, 1.4), 8.0, recording((2.5, 3.5)), [])
    assert r.stayed_quiet is False
    r = grade_turn("c", 0, turn, Spoken(1.0, 1.4), 8.0, recording(), [])
    assert r.stayed_quiet is True


def test_the_scripts_cover_what_the_issue_names() -> None:
    kinds = [t.kind for c in CONVERSATIONS for t in c.turns]
    assert kinds.count("chat") >= 10
    assert (
        sum(1 for c in CONVERSATIONS for t in c.turns if t.kind == "job" and t.wait == "result")
        >= 10
    )
    for kind in ("timer", "nevermind", "topic", "barge_in", "noise", "silence"):
        assert kind in kinds
    ci = ci_subset()
    assert 0 < sum(len(c.turns) for c in ci) < len(kinds)


def test_the_summary_reports_medians_and_counts() -> None:
    turn = Turn("chat", ("What is the capital of France?",), expect=("paris",))
    rs = [
        grade_turn(
            "c", i, turn, Spoken(1.0, 3.0), 10.0, recording((3.0 + d, 6.0)), [Heard(3.5, 5.0, t)]
        )
        for i, (d, t) in enumerate([(0.5, "Paris."), (1.0, "Paris."), (2.0, "London.")])
    ]
    s = summarize(rs)
    assert s["chat_latency_p50_s"] == pytest.approx(1.0, abs=0.03)
    assert s["on_topic"] == "2/3"
    table = markdown(rs)
    assert "| c | 2 | chat | What is the capital of France? | 2.00 | no |" in table


def test_chat_during_a_job_is_reported_against_idle_chat() -> None:
    def turn_at(kind: str, delay: float, i: int):
        turn = Turn(kind, ("What is the capital of France?",), expect=("paris",))  # type: ignore[arg-type]
        return grade_turn(
            "c",
            i,
            turn,
            Spoken(1.0, 3.0),
            10.0,
            recording((3.0 + delay, 6.0)),
            [Heard(3.5, 5, "Paris")],
        )

    rs = [turn_at("chat", 1.0, 0), turn_at("chat", 1.2, 1), turn_at("busy_chat", 1.5, 2)]
    s = summarize(rs)
    # Idle chat only, and a real median: two samples give their mean (the lower one
    # had hidden a 3.0 s busy turn behind a 1.1 s one in a run of the suite).
    assert s["chat_latency_p50_s"] == pytest.approx(1.1, abs=0.03)
    assert s["chat_during_job_p50_s"] == pytest.approx(1.5, abs=0.03)
    assert s["chat_during_job_vs_idle"] == pytest.approx(1.5 / 1.1, abs=0.05)
    assert summarize(rs[:2])["chat_during_job_vs_idle"] is None
    assert summarize([*rs, turn_at("chat", 2.5, 3)])["chat_latency_p90_s"] == pytest.approx(
        2.5, abs=0.03
    )


def test_a_silence_that_waits_for_a_job_is_not_an_unanswered_turn() -> None:
    wait = grade_turn(
        "c", 0, Turn("silence", wait="result"), Spoken(1.0, 1.0), 9.0, recording(), []
    )
    asked = grade_turn("c", 1, Turn("chat", ("Hello?",)), Spoken(9.0, 10.0), 15.0, recording(), [])
    assert summarize([wait, asked])["unanswered"] == 1


def test_the_caller_waits_for_its_own_job_not_any_delivery():
    from pipecat_tandem.bench.caller.call import owed_jobs

    messages = [
        {"type": "job_state", "job_id": "job-1", "state": "queued"},
        {"type": "job_state", "job_id": "job-1", "state": "running"},
        {"type": "job_state", "job_id": "job-2", "state": "queued"},
        {"type": "delivery", "job_ids": ["job-1"], "kind": "result"},  # job-1 answered
    ]
    assert owed_jobs(messages) == {"job-2"}
    # A redelivery of job-1 settles nothing more; job-2 is settled by its failure.
    messages += [
        {"type": "delivery", "job_ids": ["job-1"], "kind": "result"},
        {"type": "job_error", "job_id": "job-2", "error": "x"},
        {"type": "job_state", "job_id": "job-3", "state": "running"},
        {"type": "job_state", "job_id": "job-3", "state": "cancelled"},
        {"type": "delivery"},  # malformed: no ids
    ]
    assert owed_jobs(messages) == set()


def test_a_reply_that_yields_to_a_caller_going_on_is_a_brief_overlap() -> None:
    turn = Turn("chat", ("Let's talk about something else.", "What is the capital of Spain?"))
    rec = recording((2.6, 2.75))  # started in the caller's pause, stopped as they went on
    r = grade_turn("c", 0, turn, Spoken(1.0, 4.5), 10.0, rec, [])
    assert r.spoke_over_user is False
    assert 0 < r.over_user_s < 0.3
    assert summarize([r])["brief_overlaps"] == 1
