"""The conversation suite's scripts.

Chit-chat with known answers, delegated tasks (arithmetic in words, units, dates
and durations, a look-up in the document folder, a short plan), chat while a job
runs, "never mind", a change of topic, timers and reminders, "can you see me?" with
and without a camera, a barge-in on an
announcement, a cough and a caller who says nothing. ``ci=True`` marks the small
subset the test suite runs on every change.
"""

from __future__ import annotations

from pipecat_tandem.bench.caller.script import Conversation, Turn

JOB_TIMEOUT_S = 45.0


def _chat(question: str, *expect: str) -> Turn:
    return Turn("chat", (question,), expect=expect)


def _job(task: str, *answer: str, kind: str = "job") -> Turn:
    return Turn(
        "job",
        (task,),
        expect=("on it", "sure", "okay", "let me", "moment", *answer),
        answer=answer,
        wait="result",
        timeout_s=JOB_TIMEOUT_S,
        after_s=1.0,
    )


CONVERSATIONS: tuple[Conversation, ...] = (
    Conversation(
        "chit_chat",
        (
            _chat("What is the capital of France?", "paris"),
            _chat("What color is the sky on a clear day?", "blue"),
            _chat("How many days are in a week?", "seven", "7"),
            _chat("What do bees make?", "honey"),
            _chat("What is the opposite of hot?", "cold"),
            _chat("Which animal says moo?", "cow"),
            _chat("What season comes after winter?", "spring"),
            _chat("How many legs does a spider have?", "eight", "8"),
            _chat("What is frozen water called?", "ice"),
            _chat("What is the largest ocean on Earth?", "pacific"),
            _chat("Hi there. How are you today?", "good", "great", "well", "fine", "thank"),
            _chat("Tell me a short joke.", "why", "what", "because", "joke"),
        ),
        ci=True,
    ),
    Conversation(
        "delegated_quantities",
        (
            _job("How many minutes are there in three and a half days?", "5040"),
            _job("Please work out one thousand two hundred and thirty four times five.", "6170"),
            _job("Convert twenty six point two miles to kilometres.", "42"),
            _job("How many hours are in two weeks?", "336"),
            _job("What is fifteen percent of eighty dollars?", "12"),
            _job(
                "How many days are there from the second of December to the eighteenth of January?",
                "47",
            ),
            _job("How many seconds are in a day?", "86400"),
        ),
        ci=True,
    ),
    Conversation(
        "delegated_lookups_and_plans",
        (
            _job("What is the wifi password in my notes?", "meadow"),
            _job("Look up my hotel booking reference for Lisbon in my notes.", "qx7"),
            _job("Give me a short plan for a morning routine before work."),
            _job("What day of the week is Christmas this year?", "friday"),
        ),
    ),
    Conversation(
        "chat_while_a_job_runs",
        (
            Turn(
                "job",
                ("How many hours are in two weeks?",),
                expect=("on it", "sure", "okay", "moment"),
                # Graded on everything said after the request, replies to chat included.
                answer=("336",),
                wait="ack",
                after_s=0.8,
            ),
            Turn("busy_chat", ("Meanwhile, what is the capital of Italy?",), expect=("rome",)),
            Turn("busy_chat", ("And what do cows drink?",), expect=("water", "milk")),
            # The caller goes quiet and waits for the job's answer (if not yet given).
            Turn("silence", wait="result", timeout_s=JOB_TIMEOUT_S),
        ),
    ),
    Conversation(
        "chat_while_a_plan_is_made",
        (
            Turn(
                "job",
                ("Give me a short plan for a weekend in Lisbon.",),
                expect=("on it", "sure", "okay", "moment", "let me"),
                wait="ack",
                after_s=0.8,
            ),
            Turn(
                "busy_chat", ("By the way, how many legs does a cat have?",), expect=("four", "4")
            ),
            Turn("busy_chat", ("What is the capital of Germany?",), expect=("berlin",)),
            Turn("busy_chat", ("What colour are ripe bananas?",), expect=("yellow",)),
            Turn("silence", wait="result", timeout_s=JOB_TIMEOUT_S),
        ),
    ),
    Conversation(
        "never_mind_and_topic_change",
        (
            Turn(
                "job",
                ("Work out seventeen percent of two thousand three hundred and forty.",),
                expect=("on it", "sure", "okay", "moment"),
                wait="ack",
                after_s=0.8,
            ),
            Turn("nevermind", ("Actually, never mind.",), after_s=2.0),
            _chat("Tell me a short joke.", "why", "what", "because"),
            Turn(
                "topic",
                ("Let's talk about something else.", "What is the capital of Spain?"),
                expect=("madrid",),
            ),
        ),
    ),
    Conversation(
        "timers",
        (
            Turn(
                "timer",
                ("Tell me when ten seconds have passed.",),
                expect=("tell you", "will", "okay", "sure"),
                due_s=10.0,
                wait="none",
                after_s=14.0,
            ),
            Turn(
                "timer",
                ("Remind me to stretch in fifteen seconds.",),
                expect=("remind", "stretch"),
                due_s=15.0,
                wait="none",
                after_s=19.0,
            ),
        ),
        ci=True,
    ),
    # "Can you see me?" is answered from whether pictures arrive, not by the model.
    Conversation(
        "seen_on_camera",
        (
            Turn("sight", ("Can you see me?",), expect=("can see",)),
            Turn("sight", ("Is my camera on?",), expect=("camera is on",)),
        ),
        ci=True,
        camera=True,
    ),
    Conversation(
        "no_camera_to_see",
        (Turn("sight", ("Can you see me?",), expect=("can't see", "cannot see")),),
        ci=True,
    ),
    Conversation(
        "barge_in_noise_silence",
        (
            Turn(
                "chat",
                ("Tell me about the history of the bicycle.",),
                expect=(),
                wait="none",
                after_s=0.0,
                timeout_s=8.0,
            ),
            Turn(
                "barge_in", ("Stop. What is two plus two?",), expect=("four", "4"), barge_in_s=1.5
            ),
            Turn("noise", noise="cough", quiet=True, wait="none", after_s=5.0),
            Turn("silence", quiet=True, wait="none", after_s=8.0),
            _chat("Are you still there?", "yes", "here", "yeah", "sure", "help"),
            # A thirty-second monologue, one sentence after another: one reply at its end.
            Turn(
                "monologue",
                (
                    "So let me tell you about my week, because it has been a long one.",
                    "On Monday the train was late and I missed the start of a meeting.",
                    "On Tuesday my sister called to say she is moving to Lisbon in the spring.",
                    "Wednesday was quiet, I went for a run by the river after work.",
                    "On Thursday the kitchen tap started leaking and I had to call a plumber.",
                    "And today I finally finished the report I had been writing for weeks.",
                    "Anyway, what do you think I should do this weekend to relax?",
                ),
                expect=("weekend", "relax", "rest", "walk", "read", "movie", "could", "try"),
                timeout_s=15.0,
            ),
        ),
    ),
)


def ci_subset() -> tuple[Conversation, ...]:
    """The conversations CI runs (each trimmed to its first turns to keep CI short)."""
    keep = {
        "chit_chat": 3,
        "delegated_quantities": 1,
        "timers": 1,
        "seen_on_camera": 1,
        "no_camera_to_see": 1,
    }
    return tuple(
        Conversation(c.name, c.turns[: keep[c.name]], ci=True, camera=c.camera)
        for c in CONVERSATIONS
        if c.name in keep
    )
