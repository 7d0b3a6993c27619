"""RuleRouter: accuracy on a labeled set, and bad input never crashes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipecat_tandem.policy.routing import (
    MAX_TASK_CHARS,
    RouteDecision,
    Router,
    RuleRouter,
)

# (utterance, needs_background). Balanced: 30 delegations, 30 direct answers.
LABELED: list[tuple[str, bool]] = [
    # --- needs the background: arithmetic ---
    ("What is 1234 times 5678?", True),
    ("what's 17 percent of 2340", True),
    ("Can you work out 17 percent of 2340?", True),
    ("What's the square root of 7921?", True),
    ("How much is 45 divided by 9?", True),
    ("Calculate the average of 12, 18 and 30.", True),
    ("What's 2,340 plus 1,999?", True),
    ("If I tip 18% on 64 dollars how much is that?", True),
    ("twelve times thirteen", True),
    ("What is 3.5 * 12", True),
    # --- planning ---
    ("Plan a three day trip to Rome.", True),
    ("Plan a three-day trip to Rome for me.", True),
    ("Help me plan a weekly workout schedule.", True),
    ("Can you organize my week so I have time to study?", True),
    ("Make me a packing list for a camping weekend.", True),
    ("Create a meal plan for next week.", True),
    ("Give me step by step instructions to change a tire.", True),
    # --- look-ups ---
    ("Look up the opening hours of the British Museum.", True),
    ("Find me a good Italian restaurant near Covent Garden.", True),
    ("Search for the latest news about electric cars.", True),
    ("What's the weather tomorrow in London?", True),
    ("What time is it?", True),
    ("How many days until Christmas?", True),
    ("Convert 30 miles to kilometers.", True),
    ("Good morning! What's the weather like today?", True),
    ("Hey, can you look up flights to Berlin?", True),
    # --- careful reasoning / writing ---
    ("Compare the iPhone and the Pixel for me.", True),
    ("Write an email to my landlord about the broken heater.", True),
    ("Explain why the sky is blue in detail.", True),
    ("Summarize the conversation so far.", True),
    # --- answered directly: tricky chit-chat ---
    ("I'm feeling tired", False),
    ("I'm feeling a bit tired today.", False),
    ("Good morning", False),
    ("Good morning!", False),
    ("What's your name?", False),
    ("Hi, how are you today?", False),
    ("Hello there!", False),
    ("Thanks, that was helpful!", False),
    ("Thank you so much for planning my trip.", False),
    ("Tell me a joke.", False),
    ("Okay, bye for now.", False),
    ("That sounds great.", False),
    ("That plan sounds perfect.", False),
    ("Yeah, I guess so.", False),
    ("Who are you?", False),
    ("Are you a robot?", False),
    ("I'm so bored.", False),
    ("Never mind.", False),
    ("Nice to meet you.", False),
    ("I love pizza.", False),
    ("My favourite colour is blue.", False),
    ("Can you hear me?", False),
    ("Sorry, I didn't catch that.", False),
    ("What do you like to do?", False),
    ("Good night, talk to you later.", False),
    ("I had a long day at work.", False),
    ("Cool, thanks.", False),
    ("Do you like music?", False),
    ("Yes please.", False),
    ("Let's keep chatting.", False),
]


def test_labeled_set_is_balanced_and_large_enough():
    positives = sum(1 for _, label in LABELED if label)
    assert len(LABELED) >= 40
    assert abs(positives - (len(LABELED) - positives)) <= 2


def test_accuracy_at_least_90_percent():
    router = RuleRouter()
    wrong = [(u, label) for u, label in LABELED if router.route(u).needs_background != label]
    accuracy = 1 - len(wrong) / len(LABELED)
    assert accuracy >= 0.90, f"accuracy {accuracy:.0%}, misrouted: {wrong}"


@pytest.mark.parametrize(
    ("utterance", "reason"),
    [
        ("what's 17 percent of 2340", "arithmetic"),
        ("plan a three day trip to Rome", "planning"),
        ("look up the opening hours of the Louvre", "lookup"),
        ("compare these two phones", "reasoning"),
        ("I'm feeling tired", "chit-chat"),
        ("I love pizza", "no signal"),
    ],
)
def test_reasons(utterance, reason):
    assert RuleRouter().route(utterance).reason == reason


@pytest.mark.parametrize(
    ("utterance", "needs_background"),
    [
        # Telling the assistant a plan asks for nothing (pipecat's multi_turn eval
        # expects "Alex" and "Italy" acknowledged, not "On it.").
        ("My name is Alex, and I'm planning a trip to Italy.", False),
        ("We're planning a wedding next spring.", False),
        ("I’ve been planning a move to Lisbon.", False),
        # What the rest of the turn asks for still counts.
        ("I'm planning a trip to Italy and need an itinerary.", True),
        ("I'm planning a party, can you help me plan the menu?", True),
        ("We are planning a trip to Rome, what's the weather there this week?", True),
        ("plan a trip to Italy for me", True),
        # Another of the same, asked as a follow-up.
        ("Also write one about volcanoes.", True),
        ("Draft me another one for my landlord.", True),
    ],
)
def test_a_plan_told_is_chit_chat_a_plan_asked_for_is_delegated(utterance, needs_background):
    assert RuleRouter().route(utterance).needs_background is needs_background


def test_task_is_the_cleaned_utterance():
    decision = RuleRouter().route("  plan   a trip\n to Rome  ")
    assert decision == RouteDecision(True, "plan a trip to Rome", "planning")


def test_direct_answers_carry_no_task():
    assert RuleRouter().route("hello").task == ""


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("?!?! ... 123", "no words"),
        ("\x00\x01\x02", "no words"),
        (None, "not text"),
        (42, "not text"),
        (b"plan a trip", "not text"),
    ],
)
def test_bad_input_stays_with_interaction_model(bad, reason):
    decision = RuleRouter().route(bad)
    assert decision == RouteDecision(False, "", reason)


def test_oversized_input_is_not_routed():
    decision = RuleRouter().route("plan a trip to Rome " * 500)
    assert decision == RouteDecision(False, "", "oversized")


def test_long_but_allowed_task_is_truncated():
    text = "Plan a trip to Rome " + "and then Florence " * 40
    decision = RuleRouter(max_chars=5000).route(text)
    assert decision.needs_background
    assert len(decision.task) == MAX_TASK_CHARS


def test_rejects_bad_config():
    with pytest.raises(ValueError, match="max_chars"):
        RuleRouter(max_chars=0)


def test_is_a_router():
    assert isinstance(RuleRouter(), Router)


def test_decisions_are_stable_across_calls():
    router = RuleRouter()
    first = [router.route(u) for u, _ in LABELED]
    second = [router.route(u) for u, _ in reversed(LABELED)]
    assert first == list(reversed(second))


@given(st.text(max_size=300))
def test_never_raises_on_arbitrary_text(text):
    decision = RuleRouter().route(text)
    assert isinstance(decision.needs_background, bool)
    assert len(decision.task) <= MAX_TASK_CHARS
    if not decision.needs_background:
        assert decision.task == ""
