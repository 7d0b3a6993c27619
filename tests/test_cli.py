"""The ``tandem`` command: argument errors, the run path on fake services, timeline."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys

import pytest

from pipecat_tandem import cli
from tests.support.fake_services import FakeSessionFactory


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["run", "--port", "99999"],
        ["run", "--port", "abc"],
        ["run", "--max-sessions", "0"],
        ["run", "--interaction", ""],
        ["run", "--ice-server", "http://not-ice"],
        ["run", "--ice-server", "turn:x|user-only"],
        ["run", "--livekit-url", "wss://lk.example"],
        ["run", "--room", "demo"],
        ["run", "--livekit-url", "ftp://x", "--room", "demo", "--token", "t"],
        ["run", "--livekit-url", "wss://x", "--room", "demo"],
        ["run", "--livekit-url", "wss://x", "--room", "demo", "--api-key", "k"],
        ["timeline"],
        ["timeline", "missing.jsonl", "-o", "out.png"],
    ],
)
def test_bad_flags_exit_with_code_2(argv, monkeypatch, capsys):
    for name in ("LIVEKIT_URL", "LIVEKIT_TOKEN", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_record_must_be_a_directory(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "--record", str(f)])
    assert info.value.code == 2 and "not a directory" in capsys.readouterr().err


def test_timeline_output_extension(tmp_path, capsys):
    log = tmp_path / "s.jsonl"
    log.write_text('{"t": 0, "kind": "user_started", "job_id": null}\n')
    with pytest.raises(SystemExit) as info:
        cli.main(["timeline", str(log), "-o", str(tmp_path / "out.txt")])
    assert info.value.code == 2 and ".png or .html" in capsys.readouterr().err


def test_timeline_renders_when_available(tmp_path):
    pytest.importorskip("pipecat_tandem.observe.timeline")
    log = tmp_path / "s.jsonl"
    events = [
        {"t": 0.0, "kind": "user_started", "job_id": None},
        {"t": 1.0, "kind": "user_stopped", "job_id": None},
        {"t": 1.2, "kind": "bot_started", "job_id": None},
        {"t": 2.0, "kind": "bot_stopped", "job_id": None},
    ]
    log.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    out = tmp_path / "out.html"
    assert cli.main(["timeline", str(log), "-o", str(out)]) == 0
    assert out.exists() and out.stat().st_size > 0


def test_run_serves_until_stopped_with_an_injected_factory(tmp_path, capsys):
    parser = cli.build_parser()
    args = parser.parse_args(["run", "--port", "0", "--record", str(tmp_path / "rec")])
    cli._check_run_args(parser, args)

    async def scenario() -> None:
        progress = cli.StartupProgress()
        task = asyncio.ensure_future(cli.serve(args, FakeSessionFactory(), progress))
        await asyncio.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)  # the handler installed by serve() stops it
        assert await asyncio.wait_for(task, 10) == 0

    asyncio.run(scenario())
    err = capsys.readouterr().err
    assert "listening on http://127.0.0.1:" in err and "loading fake models" in err
    assert "shutting down" in err


def test_progress_lines_are_timestamped():
    import io

    buf = io.StringIO()
    progress = cli.StartupProgress(buf)
    progress("loading interaction model")
    assert buf.getvalue().startswith("[tandem ") and "loading interaction model" in buf.getvalue()


def test_extra_commands_hook(monkeypatch):
    calls = []

    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--n", type=int, default=1)

    monkeypatch.setitem(cli.COMMANDS, "bench", (add, lambda a: calls.append(a.n) or 0))
    assert cli.main(["bench", "--n", "3"]) == 0 and calls == [3]


def test_help_lists_every_subcommand(capsys):
    # argparse lists a subcommand only when it has a help text: `bench` and `worker`
    # were missing from `tandem --help`.
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    listed = capsys.readouterr().out.split("options:")[0]
    for name in ("run", "timeline", "bench", "worker"):
        assert any(line.split()[:1] == [name] for line in listed.splitlines()), name


@pytest.mark.e2e
async def test_python_dash_m_exits_when_the_models_cannot_start(tmp_path):
    """The real entry point: a warm-up that fails ends the command with 1 and one line.

    (It used to keep serving 503 for as long as it ran.)
    """
    env = dict(os.environ, TANDEM_INTERACTION="openai:gpt-4.1-mini", OPENAI_API_KEY="")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipecat_tandem", "run", "--port", "0",
        stderr=subprocess.PIPE, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        _, err_bytes = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err_bytes = await proc.communicate()
        raise AssertionError(f"still running after 60 s: {err_bytes.decode()[-2000:]}") from None
    err = err_bytes.decode()
    lines = [line for line in err.splitlines() if line.startswith("tandem: cannot start:")]
    assert proc.returncode == 1, err[-2000:]
    assert len(lines) == 1 and "OPENAI_API_KEY" in lines[0], err[-2000:]
    assert "Traceback" not in err
