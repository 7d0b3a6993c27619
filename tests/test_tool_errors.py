"""A tool's bad argument is a tool error result, never an exception that fails the job."""

import math

import pytest

from pipecat_tandem.background.tools import (
    DocumentIndex,
    Tool,
    ToolEnv,
    calculator_tool,
    documents_tool,
)


@pytest.fixture
def search(tmp_path):
    (tmp_path / "wifi.md").write_text("# Office wifi\nThe office wifi password is tandem-42.\n")
    return documents_tool(DocumentIndex(tmp_path))


@pytest.mark.parametrize("limit", [1e999, -1e999, math.nan, 10**400])
def test_search_documents_with_an_absurd_limit_is_an_error_result(search, limit):
    outcome = search.call({"query": "wifi", "limit": limit}, ToolEnv())
    assert set(outcome) == {"error"} and outcome["error"]


def test_a_tool_that_raises_anything_returns_an_error_result():
    def broken(args, env):
        return {"value": 1 / args["n"]}

    tool = Tool(name="broken", description="d", properties={}, required=[], fn=broken)
    assert "ZeroDivisionError" in tool.call({"n": 0}, ToolEnv())["error"]
    assert "KeyError" in tool.call({}, ToolEnv())["error"]
    assert tool.call({"n": 4}, ToolEnv()) == {"result": {"value": 0.25}}


def test_arguments_that_are_not_a_mapping_are_an_error_result():
    outcome = calculator_tool().call(["1+1"], ToolEnv())  # type: ignore[arg-type]
    assert "error" in outcome


def test_cancellation_is_not_swallowed():
    def cancelled(args, env):
        raise KeyboardInterrupt

    tool = Tool(name="c", description="d", properties={}, required=[], fn=cancelled)
    with pytest.raises(KeyboardInterrupt):
        tool.call({}, ToolEnv())


def _returning(value):
    return Tool(name="odd", description="d", properties={}, required=[], fn=lambda a, e: value)


@pytest.mark.parametrize("value", [{1, 2}, b"\xff", object(), "cycle"])
def test_a_result_that_is_not_json_is_an_error_result(value):
    # Regression (issue 13): pipecat's aggregator raised on it and the job failed.
    if value == "cycle":
        value = {}
        value["self"] = value
    outcome = _returning(value).call({}, ToolEnv())
    assert (
        set(outcome) == {"error"} and "odd gave a result that could not be read" in outcome["error"]
    )


def test_a_job_whose_tool_returns_non_json_still_answers():
    from pipecat_tandem.background.agent import BackgroundAgent
    from tests.support.fake_llm import FakeLLMService
    from tests.support.virtual_time import run_virtual
    from tests.test_background_agent import _collect, tool_then_answer

    agent = BackgroundAgent(
        llm_factory=lambda: FakeLLMService(tool_then_answer("odd", {})),
        tools=[_returning({1, 2})],
        prefetch=False,
    )
    answer, _ = run_virtual(_collect(agent))
    assert answer.startswith("It is error: odd gave a result that could not be read")
