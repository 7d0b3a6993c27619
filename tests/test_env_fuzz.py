"""Fuzzing the environment the project reads (issue 13).

Every variable the package reads (``grep -rn "environ\\|getenv" src/pipecat_tandem``):
``TANDEM_INTERACTION``/``TANDEM_BACKGROUND`` (model specs, with
``OLLAMA_BASE_URL``), ``TANDEM_MODEL_DIR``/``XDG_CACHE_HOME`` (the model cache),
``TANDEM_LOG_LEVEL`` and ``TANDEM_DEPLOYMENT`` (``tandem worker``), ``LIVEKIT_URL``
and the bot's ``TANDEM_RECORD_DIR``/``TANDEM_PERCEPTION``/``TANDEM_BOT_SERVICES``,
each tried with malformed, empty and oversized values. A start that cannot work
exits non-zero with one line naming the variable; nothing raises a traceback.

``tandem run`` never serves here (``serve`` is a stub that records it was
reached) and ``tandem worker`` points at a Redis port nobody listens on, so no
model is loaded. Deterministic: ``derandomize=True``, small ``max_examples``.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipecat_tandem import cli, worker_command
from pipecat_tandem.bot_settings import preflight
from pipecat_tandem.models import weights

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: What an environment can hold: any text but NUL (and no lone surrogates).
_env_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),  # type: ignore[arg-type]
    max_size=40,
)
values = st.one_of(
    _env_text,
    st.sampled_from(
        [
            "",
            " ",
            "\t\n",
            "local",
            "LOCAL:",
            "local:nope",
            "openai:",
            "openai:gpt-4o-mini",
            "ollama:llama3",
            "ollama:",
            ":",
            "x" * 5000,
            "local:" + "q" * 300,
            "é" * 100,
            "\x1b[31m",
        ]
    ),
)

ENV_NAMES = [
    "TANDEM_INTERACTION",
    "TANDEM_BACKGROUND",
    "OLLAMA_BASE_URL",
    "TANDEM_MODEL_DIR",
    "XDG_CACHE_HOME",
    "LIVEKIT_URL",
    "TANDEM_LOG_LEVEL",
    "TANDEM_DEPLOYMENT",
    "TANDEM_RECORD_DIR",
    "TANDEM_PERCEPTION",
    "TANDEM_BOT_SERVICES",
]


def _one_line_refusal(code: int, err: str, name: str | None = None) -> None:
    assert code in (1, 2), (code, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "refused without a word"
    if code == 1:
        assert len(lines) == 1, err
        if name is not None:
            assert name in lines[0], err


def _main(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """``tandem ARGV`` in-process with ``env`` set and ``serve`` stubbed."""
    served: list[Any] = []

    async def fake_serve(args: Any, factory: Any, progress: Any) -> int:
        served.append(args)
        return 0

    err = io.StringIO()
    with monkeypatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setattr(cli, "serve", fake_serve)
        for name in ENV_NAMES:
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, err.getvalue(), served


@FUZZ
@given(name=st.sampled_from(["TANDEM_INTERACTION", "TANDEM_BACKGROUND"]), value=values)
def test_model_spec_variables_are_checked_before_serving(name, value, monkeypatch):
    from pipecat_tandem.pipelines.presets import parse_model_spec

    code, err, served = _main(["run"], {name: value}, monkeypatch)
    try:
        parse_model_spec(value or "local", env={})
        valid = True
    except ValueError:
        valid = not value.strip()  # empty means unset: the embedded model
    if valid:
        assert code == 0 and served, err
    else:
        assert not served, f"{name}={value!r} reached serve"
        _one_line_refusal(code, err, name)


@FUZZ
@given(value=values)
def test_ollama_base_url_is_checked_before_serving(value, monkeypatch):
    env = {"TANDEM_INTERACTION": "ollama:llama3", "OLLAMA_BASE_URL": value}
    code, err, served = _main(["run"], env, monkeypatch)
    if code != 0:
        assert not served
        _one_line_refusal(code, err, "TANDEM_INTERACTION")


@FUZZ
@given(value=values, make=st.sampled_from(["as is", "file", "dir"]))
def test_model_cache_variables(value, make, monkeypatch):
    with tempfile.TemporaryDirectory() as tmp:
        path = value
        if make != "as is":
            path = str(Path(tmp) / (value.replace("/", "_")[:100] or "x"))
            with contextlib.suppress(OSError, ValueError):
                if make == "file":
                    Path(path).write_text("x")
                else:
                    Path(path).mkdir()
        for name in ("TANDEM_MODEL_DIR", "XDG_CACHE_HOME"):
            with monkeypatch.context() as mp:
                mp.setenv(name, path)
                assert isinstance(weights.model_dir(), Path)  # never raises
            code, err, served = _main(["run"], {name: path}, monkeypatch)
            if code != 0:
                assert not served
                _one_line_refusal(code, err, name)


def test_a_model_dir_that_is_a_file_is_refused_with_one_line(tmp_path, monkeypatch):
    f = tmp_path / "models"
    f.write_text("not a folder")
    code, err, served = _main(["run"], {"TANDEM_MODEL_DIR": str(f)}, monkeypatch)
    assert not served
    _one_line_refusal(code, err, "TANDEM_MODEL_DIR")


def test_a_malformed_spec_variable_is_refused_before_serving(monkeypatch):
    # Regression: a bad $TANDEM_INTERACTION used to start the server (port taken,
    # "listening") and fail only in the warm-up, behind the pipecat banner.
    code, err, served = _main(["run"], {"TANDEM_INTERACTION": "gpt4 please"}, monkeypatch)
    assert not served
    _one_line_refusal(code, err, "TANDEM_INTERACTION")


@FUZZ
@given(value=values)
def test_livekit_url_variable(value, monkeypatch):
    code, err, served = _main(["run", "--room", "r1", "--token", "t"], {"LIVEKIT_URL": value},
                              monkeypatch)  # fmt: skip
    if code != 0:
        assert not served
        _one_line_refusal(code, err)


def _worker(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """``tandem worker`` against a closed Redis port: never gets as far as a model."""
    err = io.StringIO()
    with monkeypatch.context() as mp, contextlib.redirect_stderr(err):
        for name in ENV_NAMES:
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        mp.setattr(worker_command, "_background_worker", _no_model)
        try:
            code = cli.main(["worker", "--redis", "redis://127.0.0.1:1/0"])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, err.getvalue()


def _no_model(*args: Any) -> Any:
    raise AssertionError("a worker that cannot reach Redis must not load a model")


@FUZZ
@given(value=values)
def test_worker_log_level_variable(value, monkeypatch):
    code, err = _worker({"TANDEM_LOG_LEVEL": value}, monkeypatch)
    from loguru import logger

    try:
        logger.level(value.strip().upper())
        valid = True
    except (ValueError, TypeError):
        valid = not value.strip()
    if valid:
        _one_line_refusal(code, err)  # Redis is not there: that is the one line
    else:
        _one_line_refusal(code, err, "TANDEM_LOG_LEVEL")


def test_a_bogus_log_level_is_one_line_before_redis_is_tried(monkeypatch):
    # Regression: TANDEM_LOG_LEVEL=bogus raised a ValueError traceback from loguru
    # after the worker had connected and loaded its model.
    code, err = _worker({"TANDEM_LOG_LEVEL": "bogus"}, monkeypatch)
    _one_line_refusal(code, err, "TANDEM_LOG_LEVEL")


@FUZZ
@given(value=values)
def test_worker_deployment_variable(value, monkeypatch):
    code, err = _worker({"TANDEM_DEPLOYMENT": value}, monkeypatch)
    _one_line_refusal(code, err)


@FUZZ
@given(
    name=st.sampled_from(
        [
            "TANDEM_RECORD_DIR",
            "TANDEM_PERCEPTION",
            "TANDEM_BOT_SERVICES",
            "TANDEM_INTERACTION",
            "TANDEM_BACKGROUND",
        ]
    ),  # fmt: skip
    value=values,
)
def test_bot_settings_variables_are_clear_value_errors(name, value):
    try:
        preflight({name: value})
    except ValueError as e:
        assert str(e).strip() and "\n" not in str(e).strip()
