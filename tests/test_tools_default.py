import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipecat_tandem.background.tools as tools_pkg
from pipecat_tandem.background.tools import ToolEnv, default_tools


def test_default_tools_without_documents():
    names = [t.name for t in default_tools()]
    assert names == ["calculator", "dates", "convert_units", "look_at_camera"]


def test_default_tools_with_documents(tmp_path):
    (tmp_path / "notes.md").write_text("The spare key is under the blue pot.")
    tools = {t.name: t for t in default_tools(documents_dir=tmp_path)}
    assert "search_documents" in tools
    out = tools["search_documents"].call({"query": "where is the spare key"}, ToolEnv())
    assert out["result"]["results"][0]["path"] == "notes.md"


def test_default_tools_reject_a_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        default_tools(documents_dir=tmp_path / "nope")


def test_schemas_are_valid_function_schemas():
    for tool in default_tools():
        schema = tool.schema().to_default_dict()
        assert schema["name"] == tool.name
        assert set(tool.required) <= set(schema["parameters"]["properties"])
        json.dumps(schema)


def test_all_results_are_json_serializable():
    calls = {
        "calculator": {"expression": "17% of 2340"},
        "dates": {"operation": "add", "days": 3},
        "convert_units": {"value": 1, "from_unit": "mi", "to_unit": "km"},
        "look_at_camera": {},
    }
    for tool in default_tools():
        json.dumps(tool.call(calls[tool.name], ToolEnv()))


def test_exported_members():
    for name in tools_pkg.__all__:
        assert hasattr(tools_pkg, name)
    assert sorted(tools_pkg.__all__) == tools_pkg.__all__


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["today", "add", "difference", "km", "°F", "2024-02-29", "17% of 2340"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_TOOLS = default_tools()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_TOOLS), st.data())
def test_any_arguments_give_a_result_or_an_error(tool, data):
    keys = [*tool.properties, "junk"]
    args = data.draw(st.dictionaries(st.sampled_from(keys), _values, max_size=len(keys)))
    out = tool.call(args, ToolEnv())
    assert set(out) in ({"result"}, {"error"})
    json.dumps(out)
