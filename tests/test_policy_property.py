"""Property test: random timelines of speech, bot speech and results never break the rules."""

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from pipecat_tandem.frames import DeliveryPolicy
from pipecat_tandem.policy.delivery import DeliveryScheduler

ACTIONS = ["user_start", "user_stop", "bot_start", "bot_stop", "resp_start", "resp_end",
           "result", "partial", "failure", "cancel", "stale"]  # fmt: skip

events = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=2.0, allow_nan=False),
        st.sampled_from(ACTIONS),
        st.integers(min_value=0, max_value=5),  # job index
        st.sampled_from(list(DeliveryPolicy)),
    ),
    min_size=1,
    max_size=40,
)


def _run(timeline, stale_mode, verbatim):
    s = DeliveryScheduler(
        min_gap_s=0.5, stale_mode=stale_mode, verbatim=verbatim, confirm_timeout_s=3.0
    )
    now = 0.0
    emitted = Counter()
    interrupted = Counter()
    ready = set()

    def drain_until(t):
        nonlocal now
        while True:
            wake = s.next_wakeup(now)
            if wake is None or wake > t:
                break
            now = max(now, wake)
            poll(now)
            if s.next_wakeup(now) == wake:
                break
        now = t

    def poll(t):
        while (d := s.poll(t)) is not None:
            assert not s.gap.user_speaking, "delivery while the user speaks"
            assert not d.user_speaking
            if (
                d.mode != "silent"
                and not d.interrupt_bot
                and all(i.policy is DeliveryPolicy.WHEN_IDLE for i in d.items)
            ):
                assert not s.gap.bot_speaking and not s.gap.response_in_flight
                assert t - s.gap.quiet_since() >= 0.5 - 1e-9, "when_idle before min gap"
            for i in d.items:
                emitted[i.output_id] += 1
        for e in s.drain_events():
            if e["kind"] == "delivery_interrupted":
                for oid in e["output_ids"]:
                    interrupted[oid] += 1

    for dt, action, job, policy in timeline:
        drain_until(now + dt)
        jid = f"j{job}"
        if action == "user_start":
            s.user_started(now)
        elif action == "user_stop":
            s.user_stopped(now)
        elif action == "bot_start":
            s.bot_started(now)
        elif action == "bot_stop":
            s.bot_stopped(now)
        elif action == "resp_start":
            s.response_started(now)
        elif action == "resp_end":
            s.response_ended(now)
        elif action in ("result", "partial", "failure"):
            item = s.add(job_id=jid, text="t", now=now, kind="failure" if action == "failure" else "result",
                         is_final=action != "partial", policy=policy)  # fmt: skip
            if item:
                ready.add(item.output_id)
        elif action == "cancel":
            s.drop_job(jid, now)
        elif action == "stale":
            s.mark_stale(jid, now)
        poll(now)
    drain_until(now + 30.0)
    s.close(now)
    for e in s.drain_events():
        if e["kind"] == "delivery_interrupted":
            for oid in e["output_ids"]:
                interrupted[oid] += 1
    # Every output is accounted for exactly once, and never emitted twice without a cut-off.
    assert set(s.status) == ready
    assert all(
        v in ("delivered", "merged", "into_context", "dropped_stale", "dropped_session_end")
        for v in s.status.values()
    )
    for oid, n in emitted.items():
        assert n <= 1 + interrupted[oid], f"{oid} emitted {n} times"


@settings(max_examples=1200, deadline=None)
@given(events, st.sampled_from(["offer", "drop"]), st.booleans())
def test_random_timelines_keep_the_delivery_rules(timeline, stale_mode, verbatim):
    _run(timeline, stale_mode, verbatim)
