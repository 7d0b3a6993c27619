import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecat_tandem.background.tools import ToolEnv, ToolError, calculator_tool, evaluate
from pipecat_tandem.background.tools.calculator import (
    MAX_EXPRESSION_CHARS,
    normalize_expression,
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1234 * 5678", 7006652),
        ("17% of 2340", 397.8),
        ("17 percent of 2340", 397.8),
        ("sqrt(7921)", 89),
        ("0.1 + 0.2", 0.3),
        ("what is 12 times 7?", 84),
        ("10 divided by 4", 2.5),
        ("9 multiplied by 9", 81),
        ("100 minus 58 plus 3", 45),
        ("2^10", 1024),
        ("2 to the power of 8", 256),
        ("3 squared", 9),
        ("2 cubed", 8),
        ("square root of 144", 12),
        ("2,340 * 2", 4680),
        ("min(1,234)", 1),
        ("max(3, 9, 4)", 9),
        ("10 % 3", 1),
        ("10 mod 4", 2),
        ("50%", 0.5),
        ("7 // 2", 3),
        ("-(-3)", 3),
        ("+5", 5),
        ("(1 + 2) * (3 + 4)", 21),
        ("1/3", 0.333333333333),
        ("abs(-7.5)", 7.5),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("log(100, 10)", 2),
        ("log10(1000)", 3),
        ("log2(1024)", 10),
        ("ln(e)", 1),
        ("floor(2.7) + ceil(2.1)", 5),
        ("factorial(20)", 2432902008176640000),
        ("2**64", 18446744073709551616),
        ("3 x 4", 12),
        ("6 × 7", 42),
        ("8 ÷ 2", 4),
    ],
)
def test_evaluates(expression, expected):
    result = evaluate(expression)
    assert result == expected
    assert type(result) is type(expected)


def test_trigonometry_and_constants():
    assert evaluate("cos(0)") == 1
    assert evaluate("pi") == pytest.approx(math.pi)
    assert evaluate("sin(pi/2)") == 1
    assert abs(evaluate("sin(pi)")) < 1e-12


def test_large_whole_numbers_become_rounded_floats():
    assert evaluate("2**100") == pytest.approx(2.0**100)
    assert isinstance(evaluate("2**100"), float)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('true')", "unsupported syntax: Attribute"),
        ("().__class__", "unsupported syntax: Attribute"),
        ("a.b", "unsupported syntax: Attribute"),
        ("x + 1", "unknown name 'x'"),
        ("open", "unknown name 'open'"),
        ("lambda: 1", "unsupported syntax: Lambda"),
        ("[1, 2]", "unsupported syntax: List"),
        ("'a' * 3", "only numbers are allowed"),
        ("1 if 1 else 2", "unsupported syntax: IfExp"),
        ("(1).real", "unsupported syntax: Attribute"),
        ("print(1)", "unknown function 'print'"),
        ("sqrt(x=4)", "positional arguments only"),
        ("max(*[1, 2])", "positional arguments only"),
        ("max()", "takes 1–20 argument(s)"),
        ("9**9**9", "exponent too large"),
        ("2**100000", "exponent too large"),
        ("10**400 * 10**400", "result too large"),
        ("1e400", "number too large"),
        ("exp(1000)", "too large"),
        ("factorial(1000)", "factorial argument too large"),
        ("factorial(2.5)", "non-negative whole number"),
        ("1/0", "division by zero"),
        ("10 % 0", "division by zero"),
        ("5 // 0", "division by zero"),
        ("0**-1", "division by zero"),
        ("sqrt(-1)", "not a real number"),
        ("(-8)**(1/3)", "not a real number"),
        ("log(0)", "only defined for positive"),
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("what is ?", "empty expression"),
        ("2 +", "could not parse"),
        ("1 2 3", "could not parse"),
        ("(" * 60 + "1" + ")" * 60, "nested too deeply"),
        ("-" * 400 + "1", "nested too deeply"),
        ("1" * (MAX_EXPRESSION_CHARS + 1), "expression too long"),
    ],
)
def test_refuses(expression, message):
    with pytest.raises(ToolError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(expression)


def test_refuses_non_string():
    with pytest.raises(ToolError, match="must be a string"):
        evaluate(12)  # type: ignore[arg-type]


def test_long_flat_sum_is_not_too_deep():
    assert evaluate("+".join(["1"] * 240)) == 240


def test_normalizes_spoken_forms():
    assert normalize_expression("What is 17% of 2,340?") == "(17/100)*2340"
    assert normalize_expression("12 times 7") == "12 * 7"


def test_tool_wraps_results_and_errors():
    tool = calculator_tool()
    assert tool.schema().name == "calculator"
    assert tool.schema().required == ["expression"]
    assert tool.call({"expression": "1234 * 5678"}, ToolEnv()) == {
        "result": {"expression": "1234 * 5678", "value": 7006652}
    }
    assert tool.call({"expression": 42}, ToolEnv())["result"]["value"] == 42
    assert "missing 'expression'" in tool.call({}, ToolEnv())["error"]
    assert "missing 'expression'" in tool.call({"expression": ""}, ToolEnv())["error"]
    assert "must be a string" in tool.call({"expression": [1]}, ToolEnv())["error"]
    assert "unknown function" in tool.call({"expression": "eval('1')"}, ToolEnv())["error"]


@given(st.integers(-(10**12), 10**12), st.integers(-(10**12), 10**12))
def test_integer_arithmetic_is_exact(a, b):
    assert evaluate(f"{a} * ({b})") == a * b
    assert evaluate(f"{a} + ({b})") == a + b
    assert evaluate(f"{a} - ({b})") == a - b
    if b:
        assert evaluate(f"{a} // ({b})") == a // b


@settings(max_examples=300)
@given(st.text(max_size=120))
def test_arbitrary_text_gives_a_number_or_a_tool_error(text):
    try:
        result = evaluate(text)
    except ToolError as e:
        assert str(e)
    else:
        assert isinstance(result, int | float)


@settings(max_examples=200)
@given(st.text(alphabet="0123456789+-*/%().e ", max_size=60))
def test_arithmetic_soup_never_crashes(text):
    try:
        result = evaluate(text)
    except ToolError:
        return
    assert isinstance(result, int | float)
    assert math.isfinite(result)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("5!", 120),
        ("what is 5!", 120),
        ("What is 5!?", 120),
        ("(2+3)!", 120),
        ("2+3!", 8),
        ("-3!", -6),
        ("2**3!", 64),
        ("2^3!", 64),
        ("3!**2", 36),
        ("sqrt(4)! + 1", 3),
        ("0!", 1),
        ("(3!)!", 720),
        ("5 factorial", 120),
        ("factorial of 6", 720),
        ("what is 5! times 2", 240),
    ],
)
def test_postfix_factorial(expression, expected):
    """Issue 13, defect 5: "5!" was read as 5 (the "!" was silently stripped)."""
    result = evaluate(expression)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("10!!", "double factorial"),
        ("(10**9)!", "factorial argument too large"),
        ("301!", "factorial argument too large"),
        ("2.5!", "non-negative whole number"),
        ("(-3)!", "non-negative whole number"),
        ("!5", "must follow a number"),
        ("5!=120", "comparisons"),
        ("5 # 3", "unsupported character"),
        ("2 $ 3", "unsupported character"),
        ("7 ? 3", "unsupported character"),
    ],
)
def test_unknown_syntax_is_refused_never_dropped(expression, message):
    with pytest.raises(ToolError, match=message):
        evaluate(expression)


def test_tool_reports_factorial_errors_and_values():
    tool = calculator_tool()
    assert tool.call({"expression": "what is 5!"}, ToolEnv())["result"]["value"] == 120
    assert "error" in tool.call({"expression": "10!!"}, ToolEnv())
    assert "error" in tool.call({"expression": "(10**9)!"}, ToolEnv())
