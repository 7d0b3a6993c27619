"""Fuzzing the ``tandem`` flags (issue 13): any value is used or refused clearly, never a traceback.

Values are what a shell can pass: negative, huge, NaN, infinities, empty,
hex, underscores, non-ASCII digits, long and random text (no NUL byte, which
no argv can hold). ``run`` never serves here: ``serve`` is replaced by a stub
that records what it was given, so an accepted value is checked for sanity
instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipecat_tandem import cli

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_argv_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=30,
)
values = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats().map(str),  # nan, inf, -inf, 1e+300, -0.0
    st.sampled_from(
        ["", " ", "nan", "NaN", "inf", "-inf", "0x10", "1e3", "1_000", "+5", "-0", "٣", "9" * 5000]
    ),
    _argv_text,
)


def _run(argv: list[str]) -> tuple[int, str, list[Any]]:
    """``tandem ARGV`` in-process with ``serve`` stubbed: (exit code, stderr, served args)."""
    served: list[Any] = []

    async def fake_serve(args: Any, factory: Any, progress: Any) -> int:
        served.append(args)
        return 0

    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setattr(cli, "serve", fake_serve)
        for name in ("LIVEKIT_URL", "LIVEKIT_TOKEN", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
            mp.delenv(name, raising=False)
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, err.getvalue(), served


def _refused_clearly(code: int, err: str) -> None:
    assert code in (1, 2), (code, err)
    assert "Traceback" not in err
    assert err.strip(), "refused without a word"
    if code == 2:
        assert "error:" in err


@FUZZ
@given(flag=st.sampled_from(["--port", "--max-sessions"]), value=values)
def test_numeric_run_flags(flag: str, value: str) -> None:
    code, err, served = _run(["run", f"{flag}={value}"])
    if code != 0:
        _refused_clearly(code, err)
        return
    (args,) = served
    if flag == "--port":
        assert isinstance(args.port, int) and 0 <= args.port <= 65535
    else:
        assert isinstance(args.max_sessions, int) and args.max_sessions >= 1


@FUZZ
@given(
    flag=st.sampled_from(["--interaction", "--background", "--ice-server", "--room"]),
    value=values,
)
def test_text_run_flags(flag: str, value: str) -> None:
    code, err, served = _run(["run", f"{flag}={value}"])
    if code != 0:
        _refused_clearly(code, err)
        return
    (args,) = served
    if flag in ("--interaction", "--background"):
        spec = getattr(args, flag[2:])
        assert spec and not any(c.isspace() for c in spec)
    elif flag == "--ice-server":
        assert len(args.ice_servers) == 1


@FUZZ
@given(value=values, make=st.sampled_from(["nothing", "file", "dir"]))
def test_path_run_flags(value: str, make: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        name = value.replace("/", "_") or "x"
        path = Path(tmp) / name[:100]
        with contextlib.suppress(OSError):
            if make == "file":
                path.write_text("x")
            elif make == "dir":
                path.mkdir()
        for flag in ("--record", "--documents"):
            code, err, _ = _run(["run", f"{flag}={path}"])
            if code != 0:
                _refused_clearly(code, err)


@FUZZ
@given(value=values)
def test_bench_seeds(value: str) -> None:
    parser = cli.build_parser()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            args = parser.parse_args(["bench", f"--seeds={value}"])
        except SystemExit as e:
            _refused_clearly(int(e.code or 0), err.getvalue())
            return
    assert 1 <= args.seeds <= 50


@settings(FUZZ, max_examples=40)
@given(
    name=_argv_text.map(lambda s: s.replace("/", "_")[:60]),
    suffix=st.sampled_from([".png", ".html", ".PNG", ".txt", "", ".png.bak"]),
    where=st.sampled_from(["here", "missing-dir", "under-a-file"]),
)
def test_timeline_outputs(name: str, suffix: str, where: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "s.jsonl"
        events = [{"t": 0.0, "kind": "user_started"}, {"t": 1.0, "kind": "user_stopped"}]
        log.write_text("".join(json.dumps(e) + "\n" for e in events))
        folder = {"here": Path(tmp), "missing-dir": Path(tmp) / "nope", "under-a-file": log}[where]
        out = folder / f"{name or 'x'}{suffix}"
        code, err, _ = _run(["timeline", str(log), "-o", str(out)])
        if code == 0:
            assert out.is_file() and out.stat().st_size > 0
        else:
            _refused_clearly(code, err)
            assert not out.exists()
