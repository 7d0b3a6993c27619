"""Observed metrics derived correctly on tiny hand-made records (no pipeline)."""

import pytest

from pipecat_tandem.bench.observed import ObservedMetrics, compute_observed


def utt(text, arrived, start, end, *, interrupted=False, busy=False):
    return {
        "text": text, "arrived": arrived, "start": start, "end": end,
        "interrupted": interrupted, "arrived_while_speaking": busy,
    }  # fmt: skip


def record(utterances, *, queries=None, ready=None, failed=None, spans=None, until=20.0):
    return {
        "until": until,
        "seconds_per_word": 0.2,
        "queries": queries
        if queries is not None
        else [{"qid": "q1", "latency_s": 2.0, "outcome": "ok", "wanted": True}],
        "user_spans": spans
        if spans is not None
        else [{"start": 1.0, "end": 2.0, "text": "please look up the weather q1"}],
        "ready": ready if ready is not None else {"q1": 4.3},
        "failed_at": failed or {},
        "utterances": utterances,
    }


def test_clean_delivery_latency_and_gap():
    m = compute_observed(
        record([utt("I'm on it.", 2.6, 2.7, 3.3), utt("The answer is ANS-q1.", 4.6, 4.7, 5.5)])
    )
    assert (m.owed, m.delivered, m.lost, m.repeated, m.over_user, m.over_bot) == (1, 1, 0, 0, 0, 0)
    assert m.latencies_s == [pytest.approx(0.4)]
    assert m.gaps_s == [pytest.approx(1.4)]  # quiet since the bot stopped at 3.3


def test_race_repeat_and_over_bot_counted():
    # The same relay handed over twice, the second while the first is being spoken.
    m = compute_observed(
        record(
            [
                utt("I'm on it. The answer is ANS-q1.", 4.6, 4.7, 6.1),
                utt("I'm on it. The answer is ANS-q1.", 4.9, 6.1, 7.5, busy=True),
            ]
        )
    )
    assert m.repeated == 1 and m.over_bot == 1 and m.delivered == 1 and m.lost == 0
    # the delivery sentence starts after three words: heard at 4.7 + 3 * 0.2
    assert m.latencies_s == [pytest.approx(4.7 + 0.6 - 4.3)]
    assert m.gaps_s == [0.0, 0.0]  # glued to the acknowledgement


def test_cut_off_and_never_repeated_is_lost_and_redelivery_is_not_a_repeat():
    cut = utt("The answer is ANS-q1.", 4.6, 4.7, 5.1, interrupted=True)
    m = compute_observed(record([cut]))
    assert m.lost == 1 and m.delivered == 0 and m.repeated == 0
    again = utt("The answer is ANS-q1.", 7.9, 8.0, 8.8)
    m = compute_observed(record([cut, again]))
    assert m.lost == 0 and m.delivered == 1 and m.repeated == 0
    assert m.latencies_s == [pytest.approx(8.0 - 4.3)]


def test_cut_before_the_delivery_sentence_is_not_a_delivery():
    m = compute_observed(
        record([utt("Sure, happy to help. The answer is ANS-q1.", 6.0, 6.1, 6.3, interrupted=True)])
    )
    assert m.deliveries == 0 and m.lost == 1


def test_delivery_started_while_the_user_speaks():
    spans = [
        {"start": 1.0, "end": 2.0, "text": "please look up the weather q1"},
        {"start": 4.5, "end": 6.0, "text": "and another thing"},
    ]
    m = compute_observed(record([utt("The answer is ANS-q1.", 4.6, 4.7, 5.5)], spans=spans))
    assert m.over_user == 1 and m.gaps_s == [0.0]


def test_stale_read_offer_and_unfinished():
    unwanted = [{"qid": "q1", "latency_s": 4.0, "outcome": "ok", "wanted": False}]
    m = compute_observed(record([utt("The answer is ANS-q1.", 6.6, 6.7, 7.5)], queries=unwanted))
    assert m.stale_read == 1 and m.owed == 0 and m.lost == 0
    m = compute_observed(record([utt("I also have the answer on OFFER-q1, want it?", 6.6, 6.7, 8.5)],
                                queries=unwanted))  # fmt: skip
    assert m.stale_read == 0 and m.offered == 1
    m = compute_observed(record([], ready={}))
    assert m.unfinished == 1 and m.lost == 0 and m.owed == 0


def test_unnamed_failure_notice_is_attributed_and_a_hang_never_told_is_lost():
    fail = [{"qid": "q1", "latency_s": 2.0, "outcome": "fail", "wanted": True}]
    m = compute_observed(
        record(
            [utt("Sorry, I could not finish FAIL-?.", 4.6, 4.7, 5.9)],
            queries=fail,
            ready={},
            failed={"q1": 4.3},
        )  # fmt: skip
    )
    assert m.delivered == 1 and m.latencies_s == [pytest.approx(0.4)]
    hang = [{"qid": "q1", "latency_s": 0.0, "outcome": "hang", "wanted": True}]
    m = compute_observed(record([utt("I'm on it.", 2.6, 2.7, 3.3)], queries=hang, ready={}))
    assert m.owed == 1 and m.lost == 1


def test_interaction_latency_split_by_background_load():
    spans = [
        {"start": 1.0, "end": 2.0, "text": "please look up the weather q1"},
        {"start": 4.0, "end": 4.8, "text": "how are you"},
        {"start": 8.0, "end": 8.8, "text": "how are you"},
    ]
    utts = [
        utt("I'm on it.", 2.6, 2.7, 3.3),
        utt("Sure.", 5.1, 5.2, 5.4),  # q1 still running at 4.8: loaded
        utt("Sure.", 9.1, 9.2, 9.4),  # q1 ready at 6.3: idle
    ]
    m = compute_observed(record(utts, spans=spans, ready={"q1": 6.3}))
    assert m.interaction_loaded_s == [pytest.approx(0.4)]
    assert m.interaction_idle_s == [pytest.approx(0.4)]


def test_empty_and_garbage_free_records():
    m = compute_observed({"until": 5.0, "utterances": [], "queries": [], "user_spans": []})
    assert m == ObservedMetrics(runs=1)
    m = compute_observed(record([utt("no tokens here", 2.0, 2.1, 2.7)]))
    assert m.deliveries == 0 and m.lost == 1


def test_pooling_and_summary():
    a = compute_observed(record([utt("The answer is ANS-q1.", 4.6, 4.7, 5.5)]))
    b = compute_observed(record([utt("The answer is ANS-q1.", 5.6, 5.7, 6.5)]))
    pooled = ObservedMetrics()
    pooled.add(a)
    pooled.add(b)
    s = pooled.summary()
    assert s["runs"] == 2 and s["delivered"] == 2
    assert s["latency_p50_s"] == pytest.approx(0.9) and s["gap_ok"] == 2
    assert "latencies_s" not in s
