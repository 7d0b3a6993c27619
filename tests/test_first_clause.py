"""The first clause of a reply is spoken early; the rest by sentence."""

from __future__ import annotations

import pytest
from pipecat.frames.frames import (
    AggregatedTextFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.tests.utils import run_test

from pipecat_tandem.processors.first_clause_processor import (
    FirstClauseAggregator,
    FirstClauseProcessor,
)


async def chunks(aggregator: FirstClauseAggregator, tokens: list[str]) -> list[str]:
    out = []
    for token in tokens:
        out += [a.text async for a in aggregator.aggregate(token)]
    rest = await aggregator.flush()
    if rest and rest.text:
        out.append(rest.text)
    return out


def tokens(text: str) -> list[str]:
    # Word-ish streaming, as an LLM delivers it.
    return [t + " " for t in text.split(" ")]


async def test_opening_clause_is_released_before_its_sentence_ends():
    aggregator = FirstClauseAggregator()
    got = await chunks(aggregator, tokens("I'm doing well, thank you! How about you?"))
    assert got == ["I'm doing well,", "thank you!", "How about you?"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Too short to stand alone: wait for the sentence.
        ("Well, that depends. Ask me later.", ["Well, that depends.", "Ask me later."]),
        # Thousands separators and decimals are not clause ends.
        ("It is 7,006,652 in total.", ["It is 7,006,652 in total."]),
        # No clause at all: sentence by sentence.
        ("The capital of France is Paris.", ["The capital of France is Paris."]),
        # Only the first clause is cut early; later commas wait for their sentence.
        (
            "Sure thing, here you go. One, two, three.",
            ["Sure thing,", "here you go.", "One, two, three."],
        ),
        ("", []),
    ],
)
async def test_only_a_long_enough_opening_clause_is_cut(text, expected):
    assert await chunks(FirstClauseAggregator(), tokens(text) if text else []) == expected


async def test_each_reply_opens_afresh_also_after_an_interruption():
    aggregator = FirstClauseAggregator()
    assert (await chunks(aggregator, tokens("Yes of course, I can do that.")))[0] == (
        "Yes of course,"
    )
    [a async for a in aggregator.aggregate("We were talking, ")]
    await aggregator.handle_interruption()
    assert await chunks(aggregator, tokens("Okay then, let's stop.")) == [
        "Okay then,",
        "let's stop.",
    ]


def test_min_words_must_be_positive():
    with pytest.raises(ValueError):
        FirstClauseAggregator(min_words=0)


async def test_processor_hands_the_tts_the_clause_first():
    frames = [
        LLMFullResponseStartFrame(),
        *[LLMTextFrame(t) for t in tokens("Good question, spiders have eight legs.")],
        LLMFullResponseEndFrame(),
        InterruptionFrame(),
    ]
    down, _ = await run_test(
        FirstClauseProcessor(), frames_to_send=frames, expected_down_frames=None
    )
    spoken = [f.text for f in down if isinstance(f, AggregatedTextFrame)]
    assert spoken == ["Good question,", "spiders have eight legs."]


async def released_after(text_tokens: list[str]) -> tuple[int | None, str | None]:
    """(index of the token after which the first chunk came out, that chunk)."""
    aggregator = FirstClauseAggregator()
    for i, token in enumerate(text_tokens):
        out = [a.text async for a in aggregator.aggregate(token)]
        if out:
            return i, out[0]
    return None, None


@pytest.mark.parametrize(
    ("stream", "index", "chunk"),
    [
        # A plainly ended opening sentence goes at its last token, not the next one.
        (["The", " capital", " of", " France", " is", " Paris", ".", " It"], 6, None),
        (["How", " about", " you", "?", " I"], 3, "How about you?"),
        (["Sure", "!", " Here"], 1, "Sure!"),
        # Abbreviations, decimals and short words still wait for the next token, as
        # pipecat does.
        (["Not", " now", ".", " I"], 3, "Not now."),
        (["Ask", " Dr", ".", " Smith", " today", "."], 5, "Ask Dr. Smith today."),
        (["It", " costs", " $", "29", ".", "99", " today", "."], 7, "It costs $29.99 today."),
    ],
)
async def test_a_plainly_ended_opening_sentence_is_not_held_for_the_next_token(
    stream, index, chunk
):
    at, first = await released_after(stream)
    assert at == index
    assert first == (chunk or "The capital of France is Paris.")


async def test_after_an_early_sentence_the_rest_aggregates_as_usual():
    aggregator = FirstClauseAggregator()
    got = await chunks(aggregator, ["Yes", "!", " I", " can", " help", ".", " Ask", " away", "."])
    assert got == ["Yes!", "I can help.", "Ask away."]
