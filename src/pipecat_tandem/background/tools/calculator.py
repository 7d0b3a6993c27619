#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A safe calculator tool: arithmetic evaluated on a whitelisted AST, never ``eval``.

Spoken arithmetic is normalized first ("17% of 2340", "12 times 7", "10 divided
by 4", "3 squared") and then parsed with ``ast.parse(mode="eval")``. Only numbers,
``+ - * / // % **``, unary signs, parentheses, a few functions (``sqrt``, ``abs``,
``round``, ``min``, ``max``, ``log``...), postfix factorial (``5!``, ``(2+3)!``) and
the constants ``pi``/``e``/``tau`` are accepted; any other node (names,
attributes, lambdas, subscripts, strings) or character (``#``, ``@``, ``!!``...)
is refused with a clear :class:`ToolError`: unknown syntax is never skipped, so
the calculator never answers a different question than the one asked.

Rational arithmetic runs on :class:`fractions.Fraction`, so ``0.1 + 0.2`` is 0.3
and integer results stay exact ints; functions like ``sqrt`` fall back to floats,
rounded to 12 significant digits. Every intermediate value is size-checked, so
``9**9**9`` or ``factorial(10**6)`` are refused instead of hanging the worker.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from pipecat_tandem.background.tools.base import Tool, ToolEnv, ToolError

MAX_EXPRESSION_CHARS = 500
"""Longest accepted expression (after normalization)."""

MAX_DEPTH = 300
"""Deepest accepted expression tree (a flat sum of n terms is n deep)."""

MAX_PAREN_DEPTH = 50
"""Deepest accepted parenthesis nesting."""

MAX_RESULT_DIGITS = 30
"""Whole-number results with more digits are returned as rounded floats."""

MAX_BITS = 4096
"""Largest accepted numerator/denominator size of any intermediate value (~1233 digits)."""

MAX_FACTORIAL = 300
"""Largest accepted argument of ``factorial``."""

SIGNIFICANT_DIGITS = 12
"""Non-exact results are rounded to this many significant digits."""

Number = Fraction | float

_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}

# Spoken forms → operators. Order matters: longer phrases first.
_WORDS: list[tuple[str, str]] = [
    (r"\bto the power of\b", " ** "),
    (r"\braised to\b", " ** "),
    (r"\bmultiplied by\b", " * "),
    (r"\bdivided by\b", " / "),
    (r"\bmodulo\b", " % "),
    (r"\bmod\b", " % "),
    (r"\btimes\b", " * "),
    (r"\bplus\b", " + "),
    (r"\bminus\b", " - "),
    (r"\bover\b", " / "),
    (r"\bsquared\b", " ** 2 "),
    (r"\bcubed\b", " ** 3 "),
    (r"\bsquare root of\b", " sqrt "),
    (r"\bsquare root\b", " sqrt "),
    (r"\bfactorial of\b", " factorial "),
]
# What a spoken arithmetic request opens with before the arithmetic itself.
_FILLER = re.compile(
    r"^\s*(?:(?:please|hey|okay|ok|so|and|now)[\s,]+)*(?:(?:can|could|would) you(?: please)?\s+)?"
    r"(?:what\s+is|what's|whats|how much is|work out|calculate|compute|evaluate|tell me)\s+",
    re.I,
)
_PERCENT_OF = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(?:%|percent)\s+of\s+")
_PERCENT_WORD = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*percent\b")
# "50%" followed by the end, an operator or a closing paren (not "10 % 3", a modulo).
_PERCENT_SIGN = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*%(?=\s*(?:$|[-+*/)]))")
_THOUSANDS = re.compile(r"\b\d{1,3}(?:,\d{3})+(?![\d,])")
_TIMES_X = re.compile(r"(?<=[\d)])\s*[x×]\s*(?=[\d(.])")
_SQRT_BARE = re.compile(r"\bsqrt\s+(\d+(?:\.\d+)?)")
_FACTORIAL_BARE = re.compile(r"\bfactorial\s+(\d+)")
# "5 factorial" → "5!" (a word after a number or a closing paren, not a call).
_FACTORIAL_WORD = re.compile(r"(?<=[\d)])\s*\bfactorial\b(?!\s*\()")
# Characters of arithmetic, plus Python punctuation the AST check refuses with a precise
# message ("[1, 2]" is a List, "'a'" a str). Any other character ("#", which ast.parse
# would skip as a comment, "$", "?") is refused outright, never dropped.
_ALLOWED_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz_+-*/%()., !'\"[]{}=:<>&|~@;")
_NUMBER_TAIL = re.compile(r"(?:\d[\d_]*\.?\d*|\.\d+)(?:e[-+]?\d+)?$")
_NAME_TAIL = re.compile(r"[a-z_][a-z0-9_]*$")


def normalize_expression(text: str) -> str:
    """Turn spoken or typed arithmetic into Python expression syntax.

    Args:
        text: E.g. ``"what is 17% of 2,340?"``.

    Returns:
        The normalized expression, e.g. ``"(17/100)*2340"``.
    """
    # A trailing "!" is kept: "what is 5!" asks for five factorial.
    s = _FILLER.sub("", text.strip().lower()).strip().rstrip("?=. ").strip()
    s = s.replace("÷", "/").replace("−", "-").replace("^", "**")
    # Thousands separators only when no function call could own the comma.
    if not re.search(r"[a-z_]\s*\(", s):
        s = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), s)
    s = _PERCENT_OF.sub(r"(\1/100)*", s)
    s = _PERCENT_WORD.sub(r"(\1/100)", s)
    s = _PERCENT_SIGN.sub(r"(\1/100)", s)
    for pattern, repl in _WORDS:
        s = re.sub(pattern, repl, s)
    s = _SQRT_BARE.sub(r"sqrt(\1)", s)
    s = _FACTORIAL_BARE.sub(r"factorial(\1)", s)
    s = _FACTORIAL_WORD.sub("!", s)
    s = _TIMES_X.sub(" * ", s)
    return re.sub(r"\s+", " ", s).strip()


def _operand_start(s: str) -> int:
    """Where the operand that ends ``s`` starts (a number, name, call or parenthesized group).

    Returns:
        The index of its first character, or ``-1`` when ``s`` does not end in one.
    """
    if s.endswith(")"):
        depth = 0
        for i in range(len(s) - 1, -1, -1):
            depth += 1 if s[i] == ")" else -1 if s[i] == "(" else 0
            if depth == 0:
                name = _NAME_TAIL.search(s[:i])  # "sqrt(4)!" takes the whole call
                return name.start() if name else i
        return -1
    match = _NUMBER_TAIL.search(s) or _NAME_TAIL.search(s)
    return match.start() if match else -1


def rewrite_factorials(expression: str) -> str:
    """Turn postfix ``!`` into ``factorial(...)`` calls, binding tighter than any operator.

    ``5!`` → ``factorial(5)``, ``2+3!`` → ``2+factorial(3)``, ``(2+3)!`` →
    ``factorial((2+3))``, ``-3!`` → ``-factorial(3)``, ``2**3!`` → ``2**factorial(3)``.

    Args:
        expression: A normalized expression.

    Returns:
        The expression without ``!``.

    Raises:
        ToolError: On ``!!`` (a double factorial, not two factorials), ``!=`` or a ``!``
            with no operand before it.
    """
    if "!" not in expression:
        return expression
    if re.search(r"!\s*!", expression):
        raise ToolError("double factorial (!!) is not supported; write factorial(factorial(n))")
    if re.search(r"!\s*=", expression):
        raise ToolError("comparisons (!=) are not arithmetic")
    out = ""
    for i, part in enumerate(expression.split("!")):
        if i == 0:
            out = part
            continue
        head = out.rstrip()
        start = _operand_start(head)
        if start < 0:
            raise ToolError("'!' (factorial) must follow a number or a parenthesized expression")
        out = f"{head[:start]}factorial({head[start:]}){part}"
    return out


def _check_size(value: Number) -> Number:
    if isinstance(value, Fraction):
        if value.numerator.bit_length() > MAX_BITS or value.denominator.bit_length() > MAX_BITS:
            raise ToolError("number too large for the calculator")
        return value
    if math.isnan(value):
        raise ToolError("result is not a number (undefined operation)")
    if math.isinf(value):
        raise ToolError("number too large for the calculator (overflow)")
    return value


def _as_float(x: Number) -> float:
    try:
        return float(x)
    except OverflowError:
        raise ToolError("number too large for the calculator (overflow)") from None


def _pow(base: Number, exp: Number) -> Number:
    if isinstance(exp, Fraction) and exp.denominator == 1 and isinstance(base, Fraction):
        n = exp.numerator
        if base == 0 and n < 0:
            raise ToolError("division by zero (zero to a negative power)")
        if abs(base) not in (0, 1):
            # Estimate the result size before computing it: bits ≈ |n| * log2(max(num, den)).
            bits = max(base.numerator.bit_length(), base.denominator.bit_length())
            if abs(n) > MAX_BITS or (bits - 1) * abs(n) > MAX_BITS:
                raise ToolError("exponent too large: the result would be astronomically big")
        return _check_size(base**n)
    b, e = _as_float(base), _as_float(exp)
    if b < 0 and not e.is_integer():
        raise ToolError("a negative number to a fractional power is not a real number")
    if b == 0 and e < 0:
        raise ToolError("division by zero (zero to a negative power)")
    try:
        return _check_size(math.pow(b, e))
    except OverflowError:
        raise ToolError("exponent too large: the result would be astronomically big") from None


def _binop(op: ast.operator, a: Number, b: Number) -> Number:
    if isinstance(op, ast.Pow):
        return _pow(a, b)
    if isinstance(op, ast.Div | ast.FloorDiv | ast.Mod) and b == 0:
        raise ToolError("division by zero")
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        x, y = a, b
    else:
        x, y = _as_float(a), _as_float(b)  # type: ignore[assignment]
    if isinstance(op, ast.Add):
        r: Any = x + y
    elif isinstance(op, ast.Sub):
        r = x - y
    elif isinstance(op, ast.Mult):
        r = x * y
    elif isinstance(op, ast.Div):
        r = x / y
    elif isinstance(op, ast.FloorDiv):
        r = Fraction(x // y) if isinstance(x, Fraction) else x // y
    elif isinstance(op, ast.Mod):
        r = x % y
    else:
        raise ToolError(f"unsupported operator {type(op).__name__}")
    return _check_size(r)


def _sqrt(x: Number) -> Number:
    if x < 0:
        raise ToolError("square root of a negative number is not a real number")
    if isinstance(x, Fraction):
        # Exact root when numerator and denominator are perfect squares.
        n, d = math.isqrt(x.numerator), math.isqrt(x.denominator)
        if n * n == x.numerator and d * d == x.denominator:
            return Fraction(n, d)
    return math.sqrt(_as_float(x))


def _log(x: Number, base: Number | None = None) -> Number:
    if x <= 0 or (base is not None and (base <= 0 or base == 1)):
        raise ToolError("logarithm is only defined for positive numbers (and a base ≠ 1)")
    if base is None:
        return math.log(_as_float(x))
    return math.log(_as_float(x)) / math.log(_as_float(base))


def _factorial(x: Number) -> Number:
    if not (isinstance(x, Fraction) and x.denominator == 1 and x >= 0):
        raise ToolError("factorial needs a non-negative whole number")
    if x > MAX_FACTORIAL:
        raise ToolError(f"factorial argument too large (max {MAX_FACTORIAL})")
    return Fraction(math.factorial(int(x)))


def _round(x: Number, digits: Number | None = None) -> Number:
    if digits is None:
        return Fraction(round(x))
    if not (isinstance(digits, Fraction) and digits.denominator == 1 and abs(digits) <= 15):
        raise ToolError("round(x, digits) needs whole-number digits between -15 and 15")
    if isinstance(x, Fraction):
        return round(x, int(digits))
    return round(x, int(digits))


def _float_fn(fn: Callable[[float], float]) -> Callable[[Number], Number]:
    def wrapped(x: Number) -> Number:
        try:
            return fn(_as_float(x))
        except OverflowError:
            raise ToolError(f"{fn.__name__}({_format(x)}) is too large") from None
        except ValueError:
            raise ToolError(f"{fn.__name__} is not defined for {_format(x)}") from None

    return wrapped


# name → (function, min args, max args)
_FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    "sqrt": (_sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "min": (min, 1, 20),
    "max": (max, 1, 20),
    "log": (_log, 1, 2),
    "ln": (_log, 1, 1),
    "log10": (lambda x: _log(x, Fraction(10)), 1, 1),
    "log2": (lambda x: _log(x, Fraction(2)), 1, 1),
    "exp": (_float_fn(math.exp), 1, 1),
    "sin": (_float_fn(math.sin), 1, 1),
    "cos": (_float_fn(math.cos), 1, 1),
    "tan": (_float_fn(math.tan), 1, 1),
    "floor": (lambda x: Fraction(math.floor(x)), 1, 1),
    "ceil": (lambda x: Fraction(math.ceil(x)), 1, 1),
    "factorial": (_factorial, 1, 1),
}


def _eval(node: ast.AST, depth: int) -> Number:
    if depth > MAX_DEPTH:
        raise ToolError(f"expression nested too deeply (max depth {MAX_DEPTH})")
    if isinstance(node, ast.Expression):
        return _eval(node.body, depth + 1)
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ToolError(f"only numbers are allowed, not {type(v).__name__} {v!r}"[:200])
        if isinstance(v, float) and not math.isfinite(v):
            raise ToolError("number too large for the calculator (overflow)")
        return _check_size(Fraction(v) if isinstance(v, int) else Fraction(repr(v)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _eval(node.operand, depth + 1)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        return _binop(node.op, _eval(node.left, depth + 1), _eval(node.right, depth + 1))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"unknown name {node.id!r}; known constants: {', '.join(_CONSTANTS)}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ToolError(
                f"unsupported syntax: {type(node.func).__name__} call "
                f"(only these functions may be called: {', '.join(_FUNCTIONS)})"
            )
        if node.func.id not in _FUNCTIONS:
            raise ToolError(f"unknown function {node.func.id!r}; known: {', '.join(_FUNCTIONS)}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ToolError("functions take plain positional arguments only")
        fn, lo, hi = _FUNCTIONS[node.func.id]
        if not lo <= len(node.args) <= hi:
            raise ToolError(f"{node.func.id} takes {lo}–{hi} argument(s), got {len(node.args)}")
        args = [_eval(a, depth + 1) for a in node.args]
        result = fn(*args)
        return _check_size(Fraction(result) if isinstance(result, int) else result)
    raise ToolError(f"unsupported syntax: {type(node).__name__} (only arithmetic is allowed)")


def _to_output(value: Number) -> int | float:
    if isinstance(value, Fraction):
        if value.denominator == 1 and abs(value.numerator) < 10**MAX_RESULT_DIGITS:
            return int(value)
        try:
            value = float(value)
        except OverflowError:
            raise ToolError("result too large (more than 308 digits)") from None
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if rounded.is_integer() and abs(rounded) < 1e15:
        return int(rounded)
    return rounded


def _format(value: Number) -> str:
    out = _to_output(value) if isinstance(value, Fraction) else value
    return str(out)


def evaluate(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely.

    Args:
        expression: Typed or spoken arithmetic, e.g. ``"1234 * 5678"`` or ``"17% of 2340"``.

    Returns:
        An ``int`` when the result is a whole number, else a float rounded to
        :data:`SIGNIFICANT_DIGITS` significant digits.

    Raises:
        ToolError: On empty, oversized, unsupported or undefined input.
    """
    if not isinstance(expression, str):
        raise ToolError(f"expression must be a string, got {type(expression).__name__}")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"expression too long ({len(expression)} > {MAX_EXPRESSION_CHARS} chars)")
    normalized = normalize_expression(expression)
    if not normalized:
        raise ToolError("empty expression")
    if len(normalized) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"expression too long (max {MAX_EXPRESSION_CHARS} chars)")
    unknown = sorted({ch for ch in normalized if ch not in _ALLOWED_CHARS})
    if unknown:
        # ast.parse would skip some of them ("5 # x" is 5): refuse instead of guessing.
        shown = " ".join(repr(ch) for ch in unknown[:5])
        raise ToolError(f"unsupported character(s) {shown} in {expression.strip()[:80]!r}")
    normalized = rewrite_factorials(normalized)
    depth = 0
    for ch in normalized:
        depth += 1 if ch == "(" else -1 if ch == ")" else 0
        if depth > MAX_PAREN_DEPTH:
            raise ToolError(f"expression nested too deeply (max {MAX_PAREN_DEPTH} parentheses)")
    try:
        tree = ast.parse(normalized, mode="eval")
    except SyntaxError:
        raise ToolError(f"could not parse {expression.strip()[:80]!r} as arithmetic") from None
    except (RecursionError, MemoryError, ValueError):
        raise ToolError("expression too complex to parse") from None
    try:
        return _to_output(_eval(tree, 0))
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except RecursionError:
        raise ToolError(f"expression nested too deeply (max depth {MAX_DEPTH})") from None
    except (OverflowError, MemoryError):
        raise ToolError("number too large for the calculator") from None


_CURRENCY = re.compile(r"[$£€]|\b(?:dollars?|euros?|pounds? sterling|bucks)\b", re.IGNORECASE)
_OPERATION = re.compile(r"[-+*/^%x×÷!]|\b(?:times|plus|minus|divided|over|power|of)\b", re.I)


def task_arithmetic(task: str) -> str | None:
    """The task itself as a calculator expression, when it is nothing but arithmetic.

    "Please work out 1,234 times 5.", "What is 15% of $80?": the words that ask and
    the currency are dropped and the rest must evaluate as it stands, with an
    operation in it (a bare number is not a sum). A task with anything else in it
    ("five times the number of days in a week", "the total of three coffees at
    4.50") gives ``None``: the model writes that expression itself.
    """
    if not isinstance(task, str) or len(task) > MAX_EXPRESSION_CHARS:
        return None
    text = " ".join(_CURRENCY.sub(" ", task).split()).rstrip(" ?.")
    text = re.sub(r"(?<![\d)])!+$", "", text).rstrip(" ?.")  # "5!" is five factorial
    text = re.sub(r",?\s+please$", "", text, flags=re.IGNORECASE).rstrip(" ,")
    if not _OPERATION.search(_FILLER.sub("", text)):
        return None
    try:
        evaluate(text)
    except ToolError:
        return None
    return text


def _run(args: Mapping[str, Any], env: ToolEnv) -> dict[str, Any]:
    expression = args.get("expression")
    if expression is None or (isinstance(expression, str) and not expression.strip()):
        raise ToolError("missing 'expression' (e.g. '1234 * 5678' or '17% of 2340')")
    if isinstance(expression, int | float) and not isinstance(expression, bool):
        expression = repr(expression)
    value = evaluate(expression)
    return {"expression": normalize_expression(expression), "value": value}


def calculator_tool() -> Tool:
    """The ``calculator`` tool for the background agent."""
    return Tool(
        name="calculator",
        description=(
            "Evaluate arithmetic exactly. Accepts + - * / // % ** and parentheses, "
            "percentages ('17% of 2340'), words ('12 times 7', '10 divided by 4'), "
            "functions sqrt abs round min max log ln log10 log2 exp sin cos tan floor ceil "
            "factorial (also written 5!) and the constants pi, e. Use it for any non-trivial "
            "arithmetic."
        ),
        properties={
            "expression": {
                "type": "string",
                "description": "The arithmetic to evaluate, e.g. '1234 * 5678' or 'sqrt(7921)'.",
            }
        },
        required=["expression"],
        fn=_run,
    )
