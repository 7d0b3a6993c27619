"""Tool calls in small models' text: parsing (pure) and the streaming sniffer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipecat_tandem.models.tool_calls import (
    MAX_TOOL_CALL_CHARS,
    ParsedToolCall,
    SniffVerdict,
    ToolCallSniffer,
    classify_prefix,
    parse_tool_calls,
)

DELEGATE = ParsedToolCall("delegate", {"task": "1234 * 5678"})


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "delegate", "arguments": {"task": "1234 * 5678"}}',
        '  {"name": "delegate", "arguments": {"task": "1234 * 5678"}}\n',
        '```json\n{"name": "delegate", "arguments": {"task": "1234 * 5678"}}\n```',
        '```\n{"name": "delegate", "arguments": {"task": "1234 * 5678"}}\n```',
        '{{"name": "delegate", "arguments": {"task": "1234 * 5678"}}}',
        '{{"name": "delegate", "arguments": {"task": "1234 * 5678"}}}}',
        '<tool_call>\n{"name": "delegate", "arguments": {"task": "1234 * 5678"}}\n</tool_call>',
        '<tool_call>{"name": "delegate", "arguments": {"task": "1234 * 5678"}}',
        '{"name": "delegate", "arguments": "{\\"task\\": \\"1234 * 5678\\"}"}',
        '{"name": "delegate", "parameters": {"task": "1234 * 5678"}}',
        '{"type": "function", "function": {"name": "delegate", '
        '"arguments": {"task": "1234 * 5678"}}}',
    ],
)
def test_shapes_of_one_call(text):
    assert parse_tool_calls(text) == [DELEGATE]


def test_several_calls():
    two = [ParsedToolCall("a", {"x": 1}), ParsedToolCall("b", {})]
    assert parse_tool_calls('[{"name": "a", "arguments": {"x": 1}}, {"name": "b"}]') == two
    assert parse_tool_calls('{"name": "a", "arguments": {"x": 1}}\n{"name": "b"}') == two
    tagged = (
        '<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n'
        '<tool_call>\n{"name": "b"}\n</tool_call>'
    )
    assert parse_tool_calls(tagged) == two
    assert parse_tool_calls('{"name": "a", "arguments": {"x": 1}} {"name": "b"}') == two
    assert parse_tool_calls('{"name": "a", "arguments": {"x": 1}},\n{"name": "b"}') == two


def test_a_cut_off_second_call_spoils_the_reply():
    assert parse_tool_calls('{"name": "a"}\n{"name": "b", "argu') is None


def test_missing_or_null_arguments_become_empty():
    assert parse_tool_calls('{"name": "now"}') == [ParsedToolCall("now", {})]
    assert parse_tool_calls('{"name": "now", "arguments": null}') == [ParsedToolCall("now", {})]
    assert parse_tool_calls('{"name": "now", "arguments": ""}') == [ParsedToolCall("now", {})]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "The answer is 42.",
        "Sure! Let me check that for you.",
        '{"name": "delega',  # cut off
        '{"name": "delegate", "arguments": {"task": "x"}',  # unbalanced
        "{not json at all}",
        '{"city": "Paris"}',  # JSON, but not a call
        '{"name": "", "arguments": {}}',
        '{"name": 42, "arguments": {}}',
        '{"name": "x", "arguments": [1, 2]}',
        '{"name": "x", "arguments": "not json"}',
        "[1, 2, 3]",
        "[]",
        '[{"name": "a"}, "oops"]',
        '```python\n{"name": "a"}\n```',
        '<tool_call>{"name": "a"}</tool_call> and then some words',
        "<tool_call>garbage</tool_call>",
        '{"name": "a"}\nnot json',
        "{{{{",
        "}}}}",
    ],
)
def test_garbage_is_text(text):
    assert parse_tool_calls(text) is None


def test_non_string_and_oversized_are_text():
    assert parse_tool_calls(None) is None  # type: ignore[arg-type]
    assert parse_tool_calls(b'{"name": "a"}') is None  # type: ignore[arg-type]
    huge = '{"name": "a", "arguments": {"x": "' + "y" * MAX_TOOL_CALL_CHARS + '"}}'
    assert parse_tool_calls(huge) is None


@given(st.text(max_size=200))
def test_never_raises(text):
    result = parse_tool_calls(text)
    assert result is None or all(isinstance(c, ParsedToolCall) and c.name for c in result)


@pytest.mark.parametrize(
    ("prefix", "verdict"),
    [
        ("", SniffVerdict.UNDECIDED),
        ("  \n", SniffVerdict.UNDECIDED),
        ("{", SniffVerdict.HOLD),
        (' {"', SniffVerdict.HOLD),
        ("<tool", SniffVerdict.UNDECIDED),
        ("<tool_call>", SniffVerdict.HOLD),
        ("<b>", SniffVerdict.TEXT),
        ("`", SniffVerdict.UNDECIDED),
        ("```", SniffVerdict.UNDECIDED),
        ("```js", SniffVerdict.UNDECIDED),
        ("```json\n", SniffVerdict.UNDECIDED),
        ("```json\n{", SniffVerdict.HOLD),
        ("```json\nHello", SniffVerdict.TEXT),
        ("```python\n", SniffVerdict.TEXT),
        ('```{"name"', SniffVerdict.HOLD),
        ("```" + "a" * 20, SniffVerdict.TEXT),
        ("[", SniffVerdict.UNDECIDED),
        ("[{", SniffVerdict.HOLD),
        ("[laughs]", SniffVerdict.TEXT),
        ("H", SniffVerdict.TEXT),
        ("Sure", SniffVerdict.TEXT),
    ],
)
def test_classify_prefix(prefix, verdict):
    assert classify_prefix(prefix) is verdict


def test_sniffer_releases_text_immediately_and_once():
    sniffer = ToolCallSniffer()
    assert sniffer.feed(" ") == ""
    assert sniffer.feed("Hel") == " Hel"
    assert sniffer.verdict is SniffVerdict.TEXT
    assert sniffer.feed("lo.") == "lo."
    assert sniffer.finish() == ""


def test_sniffer_holds_a_streamed_call_until_the_end():
    sniffer = ToolCallSniffer()
    deltas = ['{"', "name", '":', ' "delegate", "arguments": {"task": "1234 * 5678"}}']
    assert [sniffer.feed(d) for d in deltas] == ["", "", "", ""]
    assert sniffer.verdict is SniffVerdict.HOLD
    assert parse_tool_calls(sniffer.finish()) == [DELEGATE]


def test_sniffer_fence_with_prose_is_released_at_the_end():
    sniffer = ToolCallSniffer()
    for delta in ["``", "`json\n", "{bad json"]:
        assert sniffer.feed(delta) == ""
    held = sniffer.finish()
    assert held == "```json\n{bad json"
    assert parse_tool_calls(held) is None  # the service speaks it as text


def test_sniffer_blank_reply_stays_undecided():
    sniffer = ToolCallSniffer()
    sniffer.feed("  ")
    assert sniffer.verdict is SniffVerdict.UNDECIDED
    assert sniffer.finish() == "  "


@given(st.lists(st.text(max_size=10), max_size=20))
def test_sniffer_loses_nothing(deltas):
    sniffer = ToolCallSniffer()
    out = "".join(sniffer.feed(d) for d in deltas) + sniffer.finish()
    assert out == "".join(deltas)
