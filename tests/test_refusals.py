"""A small model's refusal caught before it is spoken, and a second opinion in its place."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMTextFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import SleepFrame, run_test

from pipecat_tandem.models import local_llm
from pipecat_tandem.models.local_llm import LocalLLMService
from pipecat_tandem.policy.refusals import (
    SECOND_OPINION_CHARS,
    RefusalSniffer,
    RefusalVerdict,
    is_refusal,
    only_begun,
    second_opinion_messages,
    story_names,
    whole_sentences,
)
from pipecat_tandem.policy.speech_faults import SpeechApologies

REFUSAL = "I'm sorry, but I can't assist with that."
JOKE = "Sure, here's a joke: why was the sea turtle sad? It had no shell!"


@pytest.mark.parametrize(
    "text",
    [
        REFUSAL,
        "I apologize, but I can't help with that request.",
        "I cannot help with that.",
        "Sorry, I'm not able to provide that.",
        "Oh, I'm sorry, but I can\u2019t assist with that.",
        "Oh, hello! I'm sorry, but I can't help with that.",  # the 0.5B, in a release eval
        "Oh, hello there! I'm sorry, but I can't assist with that.",  # and in another
        "Hi there, I'm sorry, but I can't do that.",
        # Not understood, the 0.5B to "Tell me they joke instead." (pipecat's deferred eval)
        'I apologize, but I\'m not sure what you mean by "joke."',
        "I'm not sure what you mean.",
        "Sorry, I don't understand.",
        # The 0.5B asked again after going on with the story the user cut short.
        "I apologize, but I cannot continue the conversation.",
        "I'm sorry, I can't discuss that.",
        # The 0.5B to "tell me a joke instead", in the deferred eval.
        "Oh, I see, I'm sorry, but I can't help with that.",
        "I'm afraid I can't help with that.",
    ],
)
def test_refusals_are_recognised(text):
    assert is_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry to hear that.",
        "I can't wait to hear about it!",
        "Sorry, I can't continue without your name: what is it?",
        "Oh, I see, you want a joke: why did the turtle cross the road?",
        "I'm afraid it will rain today.",
        "Sorry, could you say that again?",
        "The capital of France is Paris.",
        "Unfortunately it rained all day.",
        "I'm not sure it will rain today.",
        "Sorry, I don't understand why it rained, but here is the forecast.",
        "",
    ],
)
def test_other_replies_are_not_refusals(text):
    assert not is_refusal(text)


def _feed(deltas: list[str]) -> tuple[RefusalSniffer, str]:
    sniffer = RefusalSniffer()
    return sniffer, "".join(sniffer.feed(d) for d in deltas)


def test_an_ordinary_reply_is_released_at_its_first_words():
    sniffer, spoken = _feed(["The", " capital", " of France is Paris."])
    assert sniffer.verdict is RefusalVerdict.TEXT
    assert spoken == "The capital of France is Paris."
    # "I" could open "I'm sorry": held for one more word only.
    sniffer = RefusalSniffer()
    assert sniffer.feed("I") == ""
    assert sniffer.feed("'m fine") == "I'm fine"
    sniffer, spoken = _feed(["Okay", ",", " I'll", " work that out."])
    assert spoken == "Okay, I'll work that out." and sniffer.verdict is RefusalVerdict.TEXT
    sniffer, spoken = _feed(["Oh", ", hello!", " I'm sorry", ", but I can't help with that."])
    assert spoken == "" and sniffer.verdict is RefusalVerdict.REFUSAL
    # A greeting's "there" is part of it, not the reply's first word.
    sniffer, spoken = _feed(["Oh", ", hello", " there", "! I'm", " sorry, but I can't assist."])
    assert spoken == "" and sniffer.verdict is RefusalVerdict.REFUSAL
    sniffer, spoken = _feed(["Hello", " there", "! The", " weather is sunny."])
    assert spoken == "Hello there! The weather is sunny." and sniffer.verdict is RefusalVerdict.TEXT
    sniffer, spoken = _feed(["Hello", " there", " is a", " song."])  # "there" opening a reply
    assert sniffer.verdict is RefusalVerdict.TEXT


def test_a_refusal_is_held_whole_and_sympathy_is_released_at_its_sentence_end():
    sniffer, spoken = _feed(["I'm sorry", ", but I", " can't assist", " with that.", " Bye."])
    assert spoken == "" and sniffer.verdict is RefusalVerdict.REFUSAL
    assert sniffer.finish() == REFUSAL + " Bye."
    sniffer, spoken = _feed(["I'm sorry", " to hear that.", " Get well soon."])
    assert spoken == "I'm sorry to hear that. Get well soon."
    assert sniffer.finish() == ""


def test_a_reply_that_ends_while_undecided_is_decided_whole():
    sniffer, spoken = _feed(["Sorry, I can't help with that"])  # no final stop
    assert spoken == "" and sniffer.finish() == "Sorry, I can't help with that"
    assert sniffer.verdict is RefusalVerdict.REFUSAL
    sniffer, spoken = _feed(["I"])
    assert spoken == "" and sniffer.finish() == "I"
    assert sniffer.verdict is RefusalVerdict.UNDECIDED


STORY = "A sea turtle, a marine creature, is a marine organism that lives in the ocean."


def test_a_reply_that_starts_the_previous_one_again_is_held_whole():
    # The eval: interrupted in its story and asked for a joke, the 0.5B began the story again.
    sniffer = RefusalSniffer(previous=STORY)
    spoken = "".join(
        sniffer.feed(d) for d in ["A sea", " turtle, a", " marine creature,", " is a", " marine"]
    )
    assert spoken == "" and sniffer.verdict is RefusalVerdict.REPEAT
    # A reply that shares only its first words is released where it parts.
    sniffer = RefusalSniffer(previous=STORY)
    assert sniffer.feed("A sea turtle") == ""
    assert sniffer.feed(" joke? Why did it cross") == "A sea turtle joke? Why did it cross"
    # A short previous reply ("Yes.") is not something a reply can repeat.
    sniffer = RefusalSniffer(previous="Yes, I am.")
    assert sniffer.feed("Yes, I am here to help.") == "Yes, I am here to help."
    # A whole reply equal to a long previous one, decided at its end.
    sniffer = RefusalSniffer(previous=STORY)
    assert "".join(sniffer.feed(w + " ") for w in STORY.split(" ")[:7]) == ""
    assert sniffer.finish() and sniffer.verdict is RefusalVerdict.UNDECIDED  # 7 words: too few
    sniffer = RefusalSniffer(previous=STORY)
    for word in STORY.split(" ")[:8]:
        sniffer.feed(word + " ")
    assert sniffer.verdict is RefusalVerdict.REPEAT


#: pipecat's deferred-delivery eval, run 2 of 2026-12-06: the story's spoken part, cut
#: short by "Actually, I've changed my mind. Tell me a joke instead.", and the reply.
CUT_STORY = (
    "A sea turtle, named Bill, was born in a small island near San Francisco. Bill had a "
    "special ability to swim underwater and he was able to swim to"
)
GOES_ON = (
    "Bill was born in a small island near San Francisco, and he was always looking out "
    "for the best weather."
)


SPOKEN_OVER = [BotStartedSpeakingFrame(), InterruptionFrame(), BotStoppedSpeakingFrame()]
CUT_HISTORY = [
    {"role": "user", "content": "Tell me a short story about a sea turtle."},
    {"role": "assistant", "content": CUT_STORY},
]


def _say(previous: str, reply: str, *, cut_short: bool) -> tuple[RefusalSniffer, str]:
    sniffer = RefusalSniffer(previous=previous, cut_short=cut_short)
    spoken = "".join(sniffer.feed(w + " ") for w in reply.split(" "))
    return sniffer, spoken + sniffer.finish() if sniffer.verdict is RefusalVerdict.TEXT else spoken


def test_a_reply_that_goes_on_with_a_reply_cut_short_is_a_repeat():
    sniffer, spoken = _say(CUT_STORY, GOES_ON, cut_short=True)
    assert spoken == "" and sniffer.verdict is RefusalVerdict.REPEAT
    sniffer, spoken = _say(CUT_STORY, "Well, " + GOES_ON, cut_short=True)  # after an interjection
    assert spoken == "" and sniffer.verdict is RefusalVerdict.REPEAT
    # A reply the user let finish is only checked from its start: a later run of it is
    # said ("Bill was born ..." to "Where was he born again?").
    sniffer, spoken = _say(CUT_STORY, GOES_ON, cut_short=False)
    assert spoken.strip() == GOES_ON and sniffer.verdict is RefusalVerdict.TEXT
    # Seven words in a row are not enough, and a new reply is released as it parts.
    sniffer, spoken = _say(CUT_STORY, "Bill was born in a small island, too.", cut_short=True)
    assert sniffer.verdict is RefusalVerdict.TEXT and spoken.strip().endswith("too.")
    sniffer = RefusalSniffer(previous=CUT_STORY, cut_short=True)
    assert sniffer.feed("Why did ") == "Why did "
    # A run that ends where the cut story ends is still the story.
    tail = "special ability to swim underwater and he was able to swim to"
    sniffer, spoken = _say(CUT_STORY, tail, cut_short=True)
    assert spoken == "" and sniffer.verdict is RefusalVerdict.REPEAT


class _Server:
    """Test support: stands in for a model server, streaming one scripted reply in pieces."""

    def __init__(self, reply: str, *later: str, delay_s: float = 0.0, busy: bool = False) -> None:
        self.config = SimpleNamespace(model_path=Path("fake.gguf"), slots=1)
        self.replies = [reply, *later]  # the last one again for any further request
        self.delay_s = delay_s
        self.in_flight = 1 if busy else 0  # a background job generating on it
        self.busy = self.in_flight  # ... and someone waits for it (not cancelled)
        self.requests: list[dict] = []
        self.sent = 0  # words streamed, over all requests

    async def stream_chat(self, request, spare=False):
        import asyncio

        reply = self.replies[min(len(self.requests), len(self.replies) - 1)]
        self.requests.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        for word in reply.split(" "):
            self.sent += 1
            yield {"choices": [{"delta": {"content": word + " "}}]}


async def _reply(
    small: _Server,
    large: _Server | None,
    history: list | None = None,
    before: list | None = None,
    asked_for: str = "Tell me they joke instead.",
) -> str:
    llm = LocalLLMService(server=small, second_opinion=large, refill_cache=False)  # type: ignore[arg-type]
    asked = {"role": "user", "content": asked_for}
    context = LLMContext(messages=[*(history or []), asked])
    frames = [*(before or []), LLMContextFrame(context), SleepFrame(0.3)]
    down, _ = await run_test(llm, frames_to_send=frames, expected_down_frames=None)
    return "".join(f.text for f in down if isinstance(f, LLMTextFrame)).strip()


async def test_a_refusal_gets_the_larger_models_reply_instead():
    small, large = _Server(REFUSAL), _Server(JOKE)
    assert await _reply(small, large) == JOKE
    # The same request, minus tools: the larger model sees what the small one saw.
    assert large.requests[0]["messages"] == small.requests[0]["messages"]


async def test_a_second_opinion_reads_the_persona_and_the_latest_of_a_long_call():
    persona = {"role": "system", "content": "You are a friendly voice assistant."}
    chat = [
        {"role": role, "content": f"{role} line {i}: " + "words " * 8}
        for i in range(20)
        for role in ("user", "assistant")
    ]
    small, large = _Server(REFUSAL), _Server(JOKE)
    assert await _reply(small, large, [persona, *chat]) == JOKE
    asked = large.requests[0]["messages"]
    assert asked[0]["content"] == persona["content"]
    assert asked[-1]["content"] == "Tell me they joke instead."
    # The latest lines, in order, within the budget; the small model saw them all.
    assert [m["content"] for m in asked[1:-1]] == [m["content"] for m in chat[-len(asked) + 2 :]]
    assert sum(len(m["content"]) for m in asked[1:]) <= SECOND_OPINION_CHARS
    assert 2 < len(asked) < len(small.requests[0]["messages"]) == 42


def test_a_second_opinions_window_does_not_open_on_half_a_tool_call():
    call = {"role": "assistant", "content": "", "tool_calls": [{"id": "1"}]}
    result = {"role": "tool", "tool_call_id": "1", "content": "75"}
    said = {"role": "assistant", "content": "It is 75."}
    asked = {"role": "user", "content": "Tell me they joke instead."}
    out = second_opinion_messages([call, result, said, asked], 100)
    assert out == [said, asked]
    assert second_opinion_messages([result], 100) == [result]  # the last is always kept


@pytest.mark.parametrize(
    ("sizes", "budget", "kept"),
    [
        ([10, 10, 10], 100, [0, 1, 2]),  # all fit
        ([10, 50, 60], 100, [2]),  # the last two do not fit together
        ([10, 50, 40], 100, [0, 1, 2]),  # exactly the budget
        ([10, 50, 45], 100, [1, 2]),  # one character over
        ([500], 100, [0]),  # the last message is kept whatever its size
        ([], 100, []),
    ],
)
def test_second_opinion_messages_keep_the_latest_that_fit(sizes, budget, kept):
    system = [{"role": "system", "content": "persona " * 40}]  # never counted
    rest = [{"role": "user", "content": "x" * n} for n in sizes]
    out = second_opinion_messages([*system, *rest], budget)
    assert out[0] is system[0]
    assert out[1:] == [rest[i] for i in kept]


async def test_a_repeat_of_the_previous_reply_gets_the_larger_models_reply_instead():
    history = [
        {"role": "user", "content": "Tell me a short story about a sea turtle."},
        {"role": "assistant", "content": STORY},
    ]
    large = _Server(JOKE)
    assert await _reply(_Server(STORY), large, history) == JOKE
    assert len(large.requests) == 1


async def test_without_a_second_opinion_or_for_other_replies_nothing_changes():
    assert await _reply(_Server(REFUSAL), None) == REFUSAL
    large = _Server(JOKE)
    assert await _reply(_Server("The capital of France is Paris."), large) == (
        "The capital of France is Paris."
    )
    assert large.requests == []


async def test_a_second_opinion_too_slow_to_start_leaves_the_refusal(monkeypatch):
    monkeypatch.setattr(local_llm, "SECOND_OPINION_FIRST_TOKEN_S", 0.05)
    assert await _reply(_Server(REFUSAL), _Server(JOKE, delay_s=0.2)) == REFUSAL


STORY_HISTORY = [
    {"role": "user", "content": "Tell me a short story about a sea turtle."},
    {"role": "assistant", "content": STORY},
]


async def test_a_repeat_is_asked_again_of_the_small_model_when_the_larger_one_is_busy():
    # Seen in pipecat's deferred-delivery eval: the 1.5B was writing a job's
    # answer, gave no first token in 6 s, and the repeated story was spoken.
    small, large = _Server(STORY, JOKE), _Server(JOKE, busy=True)
    assert await _reply(small, large, STORY_HISTORY) == JOKE
    assert large.requests == []  # not queued behind the job
    assert len(small.requests) == 2
    told = small.requests[1]["messages"]
    assert told[:-1] == small.requests[0]["messages"]
    assert told[-1]["role"] == "system" and "Do not repeat" in told[-1]["content"]


async def test_a_repeat_is_asked_again_when_the_larger_model_is_too_slow(monkeypatch):
    monkeypatch.setattr(local_llm, "SECOND_OPINION_FIRST_TOKEN_S", 0.05)
    small = _Server(STORY, JOKE)
    assert await _reply(small, _Server(JOKE, delay_s=0.2), STORY_HISTORY) == JOKE
    assert len(small.requests) == 2


async def test_a_repeat_asked_again_that_repeats_again_is_said_once():
    small = _Server(STORY, STORY)
    assert await _reply(small, _Server(JOKE, busy=True), STORY_HISTORY) == STORY
    # Both stopped at their verdict ("A sea turtle, a marine creature, is a ..."):
    # the reply is written out a third time, to be said whole.
    assert len(small.requests) == 3


async def test_a_repeat_asked_again_that_refuses_asks_the_user_to_say_it_again():
    small = _Server(STORY, "I apologize, but I cannot continue the conversation.")
    assert await _reply(small, _Server(JOKE, busy=True), STORY_HISTORY) == (SpeechApologies().llm)
    assert len(small.requests) == 2


async def test_a_refusal_is_never_asked_again_of_the_small_model():
    # Talking a model out of a refusal is not the small model's call: the larger
    # one, when free, gives its own answer; a busy one leaves the refusal.
    small = _Server(REFUSAL, JOKE)
    assert await _reply(small, _Server(JOKE, busy=True)) == REFUSAL
    assert len(small.requests) == 1


async def test_a_reply_that_loops_is_cut_at_its_first_repeat():
    # The 0.5B in pipecat's deferred-delivery eval, with no refusal and no repeat
    # of its previous reply for the second opinion to catch.
    looped = "O-I-C I've changed my mind. " + "I've changed my mind. " * 8
    small = _Server(looped)
    assert await _reply(small, _Server(JOKE)) == "O-I-C I've changed my mind. I've changed my mind."


async def test_a_reply_going_on_with_the_story_the_user_cut_short_gets_the_second_opinion():
    large = _Server(JOKE)
    assert await _reply(_Server(GOES_ON), large, CUT_HISTORY, before=SPOKEN_OVER) == JOKE
    # The user let the story end: the same reply is spoken.
    let_finish = [BotStartedSpeakingFrame(), BotStoppedSpeakingFrame(), InterruptionFrame()]
    large = _Server(JOKE)
    assert await _reply(_Server(GOES_ON), large, CUT_HISTORY, before=let_finish) == GOES_ON
    assert large.requests == []


async def test_asked_again_after_a_cut_short_reply_the_small_model_is_not_shown_it():
    history = [{"role": "user", "content": "A story?"}, {"role": "assistant", "content": CUT_STORY}]
    small = _Server(GOES_ON, JOKE)
    assert await _reply(small, _Server(JOKE, busy=True), history, before=SPOKEN_OVER) == JOKE
    first, again = (r["messages"] for r in small.requests)
    assert [m["content"] for m in again] == [m["content"] for m in first if m is not first[-2]]
    assert CUT_STORY not in str(again)


async def test_a_cut_short_repeat_asks_the_small_model_before_the_larger_one():
    # The larger model's prefill took 2-4 s at the caller; the small one's retry ~0.3 s.
    other = "Why did the crab never share? Because it was shellfish."
    small, large = _Server(GOES_ON, other), _Server(JOKE)
    assert await _reply(small, large, CUT_HISTORY, before=SPOKEN_OVER) == other
    assert large.requests == []
    # The retry going on with the story too: the larger model answers.
    small, large = _Server(GOES_ON), _Server(JOKE)
    assert await _reply(small, large, CUT_HISTORY, before=SPOKEN_OVER) == JOKE
    assert len(small.requests) == 2 and len(large.requests) == 1
    # A refusal after the cut story: the same.
    small, large = _Server(REFUSAL, other), _Server(JOKE)
    assert await _reply(small, large, CUT_HISTORY, before=SPOKEN_OVER) == other
    assert large.requests == [] and CUT_STORY not in str(small.requests[1]["messages"])
    # ... and with the larger model busy, a retry that refuses asks the user again.
    small = _Server(GOES_ON, "I apologize, but I cannot continue the conversation.")
    spoken = await _reply(small, _Server(JOKE, busy=True), CUT_HISTORY, before=SPOKEN_OVER)
    assert spoken == SpeechApologies().llm


async def test_a_larger_model_busy_only_with_a_cancelled_request_is_asked():
    # pipecat's cancellation eval: "never mind the report, tell me a joke instead"
    # cancels the report's job, and the 0.5B refuses the joke. The job's request
    # still holds the 1.5B's slot until its next token, but nobody waits for it.
    large = _Server(JOKE, busy=True)
    large.busy = 0  # in flight, but cancelled
    assert await _reply(_Server(REFUSAL), large) == JOKE
    assert len(large.requests) == 1


def test_a_refusal_after_oh_i_see_is_held_streamed_word_by_word():
    sniffer, spoken = _say("", "Oh, I see, I'm sorry, but I can't help with that.", cut_short=False)
    assert spoken == "" and sniffer.verdict is RefusalVerdict.REFUSAL
    sniffer, spoken = _say("", "Oh, I see, you want a joke instead.", cut_short=False)
    assert sniffer.verdict is RefusalVerdict.TEXT
    assert spoken.strip() == "Oh, I see, you want a joke instead."


@pytest.mark.parametrize(
    ("previous", "others", "names"),
    [
        (CUT_STORY, ["What's the weather in San Francisco?"], {"bill"}),
        (CUT_STORY, [], {"bill", "san", "francisco"}),
        # Capitals owed to their place: a clause after a colon, a quotation.
        ("Sure, here's a joke: Why don't scientists trust atoms? Because they lie.", [], set()),
        ('Luna sang all day, and then she said, "Hello there, friends and family!"', [], set()),
        # Written in lower case too: a word, not a name.
        ("The Sea was calm that day, and the sea was wide and blue and deep.", [], set()),
        # Said by the user: not made up by the reply.
        (
            "Bill was born in a small island and he loved Bill the whale.",
            ["Tell me about Bill"],
            set(),
        ),
        ("A turtle named Bill.", [], set()),  # too short to tell
    ],
)
def test_story_names(previous, others, names):
    assert story_names(previous, others) == names


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        # The 0.5B after "Tell me they joke instead." in pipecat's deferred eval.
        ("Bill, a sea turtle, was born on an island.", RefusalVerdict.REPEAT),
        (
            "I apologize for the confusion. I'm sorry Bill's joke was that he swam.",
            RefusalVerdict.REPEAT,
        ),
        ("O-I-C, bill was a Joe Cleving C-turtle.", RefusalVerdict.REPEAT),
        # A joke: no name of the story's, told once 16 words are out.
        ("Why did the sea turtle cross the road? To get to the other tide!", RefusalVerdict.TEXT),
        (
            "Sure, here is one for you about turtles and the sea, and it is a short one "
            "about Bill.",
            RefusalVerdict.TEXT,
        ),
    ],
)
def test_a_reply_that_brings_back_the_cut_storys_names_goes_on_with_it(reply, verdict):
    names = story_names(CUT_STORY, ["What's the weather in San Francisco?"])
    sniffer = RefusalSniffer(previous=CUT_STORY, cut_short=True, names=names)
    spoken = "".join(sniffer.feed(w + " ") for w in reply.split(" "))
    rest = sniffer.finish()
    if verdict is RefusalVerdict.REPEAT:
        assert sniffer.verdict is verdict and spoken == "" and rest.strip() == reply
    else:  # said whole: released at word 16, or at its end if shorter
        assert sniffer.verdict is not RefusalVerdict.REPEAT
        assert (spoken + rest).strip() == reply
    # Not cut short: the names are not looked for, and a reply is released at once.
    sniffer = RefusalSniffer(previous=CUT_STORY, cut_short=False, names=names)
    assert sniffer.feed("Bill ") == "Bill "


async def test_a_reply_naming_the_cut_storys_turtle_gets_the_second_opinion():
    history = [
        {"role": "user", "content": "What's the weather in San Francisco?"},
        {"role": "assistant", "content": "On it."},
        {"role": "user", "content": "Tell me a short story about a sea turtle."},
        {"role": "assistant", "content": CUT_STORY},
    ]
    large = _Server(JOKE)
    reply = "Bill, a sea turtle, was born on an island."
    before = [BotStartedSpeakingFrame(), InterruptionFrame(), BotStoppedSpeakingFrame()]
    assert await _reply(_Server(reply), large, history, before) == JOKE
    assert len(large.requests) == 1


async def test_a_reply_is_cut_short_for_every_turn_until_another_follows_it():
    # The user spoke over the story in two turns ("Actually... I've changed my mind."
    # and "Tell me they joke instead."); neither reply was said before the next.
    story = [
        {"role": "user", "content": "What's the weather in San Francisco?"},
        {"role": "assistant", "content": "On it."},
        {"role": "user", "content": "Tell me a short story about a sea turtle."},
        {"role": "assistant", "content": CUT_STORY},
    ]
    first = [*story, {"role": "user", "content": "Actually... I've changed my mind."}]
    second = [*first, {"role": "user", "content": "Tell me they joke instead."}]
    answered = [*second, {"role": "assistant", "content": JOKE}, {"role": "user", "content": "Ha."}]
    going_on = "Bill, a sea turtle, was born on an island."
    small = _Server("Okay.", going_on, going_on)
    large = _Server(JOKE)
    llm = LocalLLMService(server=small, second_opinion=large, refill_cache=False)  # type: ignore[arg-type]
    frames = [
        BotStartedSpeakingFrame(),
        InterruptionFrame(),
        BotStoppedSpeakingFrame(),
        LLMContextFrame(LLMContext(messages=first)),
        SleepFrame(0.2),
        LLMContextFrame(LLMContext(messages=second)),
        SleepFrame(0.3),
        LLMContextFrame(LLMContext(messages=answered)),  # a reply followed: not cut short
        SleepFrame(0.3),
    ]
    down, _ = await run_test(llm, frames_to_send=frames, expected_down_frames=None)
    said = "".join(f.text for f in down if isinstance(f, LLMTextFrame))
    assert said.split() == ("Okay. " + JOKE + " " + going_on).split()
    assert len(large.requests) == 1


#: The 0.5B to "Tell me, a joke instead." after a story it told as a definition
#: (pipecat's deferred eval, 14 of 16 samples).
DEFINITION = "A joke is a short, funny, or amusing story that is meant to be funny and not mean."


def _answer(asked: str, reply: str) -> tuple[RefusalSniffer, str]:
    """The sniffer after the whole reply, and what of it is spoken."""
    sniffer = RefusalSniffer(asked=asked)
    spoken = "".join(sniffer.feed(w + " ") for w in reply.split(" "))
    rest = sniffer.finish()
    held = sniffer.verdict in (RefusalVerdict.REFUSAL, RefusalVerdict.REPEAT)
    return sniffer, spoken if held else spoken + rest


@pytest.mark.parametrize(
    "asked",
    [
        "Actually... I've changed my mind. Tell me, a joke instead.",  # as tiny.en heard it
        "Tell me they joke instead.",
        "Can you tell me some jokes?",
    ],
)
def test_a_definition_of_the_pastime_asked_for_did_not_follow_the_request(asked):
    sniffer, spoken = _answer(asked, DEFINITION)
    assert spoken == "" and sniffer.verdict is RefusalVerdict.REFUSAL
    assert sniffer.held.strip() == DEFINITION
    # Told, a joke is released as it is said; and it stays so for another try.
    sniffer, spoken = _answer(asked, JOKE)
    assert sniffer.verdict is RefusalVerdict.TEXT and spoken.strip() == JOKE
    assert sniffer.fresh()._pastime == "joke"


@pytest.mark.parametrize(
    "asked",
    ["What's a joke?", "What is a joke, exactly?", "Define joke.", ""],
)
def test_a_definition_asked_for_is_said(asked):
    sniffer, spoken = _answer(asked, DEFINITION)
    assert sniffer.verdict is RefusalVerdict.TEXT and spoken.strip() == DEFINITION


async def test_a_definition_instead_of_a_joke_gets_the_larger_models_joke():
    large = _Server(JOKE)
    assert await _reply(_Server(DEFINITION), large) == JOKE
    assert len(large.requests) == 1


@pytest.mark.parametrize(
    "reply",
    [
        "Oh, I see. I'll change my mind and joke instead.",
        "Sure, I can tell you a joke!",
    ],
)
def test_a_reply_that_only_echoes_the_pastime_asked_for_did_not_follow_it(reply):
    asked = "Actually... I've changed my mind. Tell me they joke instead."
    sniffer, spoken = _answer(asked, reply)
    assert spoken == "" and sniffer.verdict is RefusalVerdict.REFUSAL


def test_a_joke_is_held_only_until_its_first_word_of_its_own():
    sniffer = RefusalSniffer(asked="Tell me a joke.")
    assert sniffer.feed("Sure, ") == "" and sniffer.feed("here's ") == ""
    assert sniffer.feed("one: ") == "" and sniffer.feed("why ") == ""
    # "did" is the joke's: the reply is on its way and is released whole so far.
    assert sniffer.feed("did ") == "Sure, here's one: why did "
    assert sniffer.verdict is RefusalVerdict.TEXT
    # Not asked for a pastime: an ordinary reply goes at once.
    assert RefusalSniffer(asked="What's the time?").feed("Sure, ") == "Sure, "


async def test_an_echo_instead_of_a_joke_gets_the_larger_models_joke():
    large = _Server(JOKE)
    assert await _reply(_Server("Oh, I see. I'll joke instead."), large) == JOKE


MISHEARD = "Actually... I've changed my mind. Tell me it a joke instead."


def test_a_reply_opening_with_the_users_other_words_said_back_did_not_follow():
    reply = (
        "Oh, I see, I've changed my mind. "
        "I've been looking for a sea turtle in San Francisco for a long time."
    )
    sniffer, spoken = _answer(MISHEARD, reply)
    assert spoken == "" and sniffer.verdict is RefusalVerdict.REFUSAL
    # Decided at the first sentence's end, not at the reply's.
    sniffer = RefusalSniffer(asked=MISHEARD)
    for word in "Oh, I see, I've changed my mind. I've".split(" "):
        sniffer.feed(word + " ")
    assert sniffer.verdict is RefusalVerdict.REFUSAL
    sniffer, spoken = _answer(MISHEARD, "Sure, I'll tell you a joke! Why did the turtle swim?")
    assert sniffer.verdict is RefusalVerdict.TEXT and spoken.startswith("Sure, I'll tell you")


@pytest.mark.parametrize(
    ("spoken", "said", "begun"),
    [
        (
            "A sea turtle, named Luna, was found in a pond.",
            "A sea turtle, named Luna, was found in a pond. Luna was a fish.",
            True,
        ),
        (
            "A sea turtle named Luna",
            "A sea turtle, named Luna, was found.",
            True,
        ),  # spacing, commas
        ("A sea turtle, named Luna.", "A sea turtle, named Luna.", False),  # all of it
        ("Hello there.", "A sea turtle, named Luna.", False),  # another reply
        ("", "A sea turtle.", False),
        ("A sea turtle.", "", False),
    ],
)
def test_only_begun(spoken, said, begun):
    assert only_begun(spoken, said) is begun


async def test_a_reply_stopped_between_its_sentences_is_cut_short_without_a_barge_in():
    # The deferred eval: the bot's speech paused between two sentences of the story,
    # the user came in 0.2 s later, and the conversation kept the sentences spoken.
    spoken = "A sea turtle, named Bill, was born in a small island near San Francisco."
    whole = spoken + " Bill had a special ability to swim underwater."
    asked = [{"role": "user", "content": "Tell me a short story about a sea turtle."}]
    later = [
        *asked,
        {"role": "assistant", "content": spoken},
        {"role": "user", "content": "Tell me they joke instead."},
    ]
    going_on = "Sure, I'd like to joke. Bill was born in a small island near San Francisco."
    small, large = _Server(whole, going_on), _Server(JOKE)
    llm = LocalLLMService(server=small, second_opinion=large, refill_cache=False)  # type: ignore[arg-type]
    frames = [
        LLMContextFrame(LLMContext(messages=asked)),
        SleepFrame(0.2),
        LLMContextFrame(LLMContext(messages=later)),  # no InterruptionFrame at all
        SleepFrame(0.3),
    ]
    down, _ = await run_test(llm, frames_to_send=frames, expected_down_frames=None)
    said = "".join(f.text for f in down if isinstance(f, LLMTextFrame))
    assert said.split() == (whole + " " + JOKE).split()
    assert len(large.requests) == 1


async def test_a_reply_is_stopped_at_its_verdict_while_the_second_opinion_is_free():
    # The deferred eval: the 0.5B named the cut story's turtle at its first word and
    # went on for 2 s more before the 1.5B was asked.
    small, large = _Server(GOES_ON), _Server(JOKE)
    assert await _reply(small, large, CUT_HISTORY, before=SPOKEN_OVER) == JOKE
    assert small.sent == 2  # "Bill", and "Bill" again: nothing after the name


async def test_a_refusal_stopped_at_its_verdict_keeps_its_whole_sentences(monkeypatch):
    monkeypatch.setattr(local_llm, "SECOND_OPINION_FIRST_TOKEN_S", 0.05)
    small = _Server(REFUSAL + " Is there anything else I can help with?")
    assert await _reply(small, _Server(JOKE, delay_s=0.2)) == REFUSAL
    assert small.sent == len(REFUSAL.split())


async def test_a_reply_stopped_mid_sentence_with_no_second_opinion_is_written_out(monkeypatch):
    # "A joke is a" is judged there (a definition, not a joke): with the second
    # opinion too slow, the reply is generated again, whole, and said unchecked.
    monkeypatch.setattr(local_llm, "SECOND_OPINION_FIRST_TOKEN_S", 0.05)
    defined = "A joke is a short, funny story."
    small = _Server(defined)
    assert await _reply(small, _Server(JOKE, delay_s=0.2)) == defined
    assert len(small.requests) == 2 and "tools" not in small.requests[1]


@pytest.mark.parametrize(
    ("text", "whole"),
    [
        ("I'm sorry, but I can't help with that. Is", "I'm sorry, but I can't help with that."),
        ("Okay. Sure! Why? ", "Okay. Sure! Why?"),
        ("A sea turtle, Luna,", ""),
        ("", ""),
        ("Version 2.5 is", ""),  # a point inside a number ends nothing
    ],
)
def test_whole_sentences(text, whole):
    assert whole_sentences(text) == whole


async def test_a_refusal_of_the_turn_that_calls_a_request_off_is_asked_again_without_it():
    # pipecat's cancellation evals: "Actually, never mind the report. Tell me a joke
    # instead." after "Write me a report about sea turtles." / "On it.", refused.
    report = [
        {"role": "user", "content": "Write me a report about sea turtles."},
        {"role": "assistant", "content": "On it."},
    ]
    small, large = _Server(REFUSAL, JOKE), _Server(JOKE)
    asked = "Actually, never mind the report. Tell me a joke instead."
    assert await _reply(small, large, report, asked_for=asked) == JOKE
    assert large.requests == []
    first, again = (r["messages"] for r in small.requests)
    assert "sea turtles" in str(first) and "On it." in str(first)
    assert [m["content"] for m in again] == [asked]


async def test_a_refusal_with_nothing_to_leave_out_goes_to_the_larger_model():
    small, large = _Server(REFUSAL, JOKE), _Server("Sure! Why did the crab blush?")
    history = [
        {"role": "user", "content": "Write me a poem."},
        {"role": "assistant", "content": "On it."},
    ]
    assert await _reply(small, large, history) == "Sure! Why did the crab blush?"
    assert len(small.requests) == 1 and len(large.requests) == 1
