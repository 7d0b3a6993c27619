#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The runner bot the release evals talk to, as its own process on loopback.

``python -m pipecat_tandem.bot`` on the embedded default models, with the
scenarios' tools added as background tools (:data:`SERVICES`), greeting on
connect only when asked (see :func:`.run.expects_greeting`). The benchmark
(``benchmarks/bench_release_evals.py``) and the CI subset
(``tests/test_release_evals_ci.py``) start it the same way.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The scenarios' tools beside the bot's own (``TANDEM_BOT_SERVICES``).
SERVICES = "pipecat_tandem.bench.release_evals.tools:build"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_bot(
    log: Path,
    *,
    root: Path,
    greeting: bool = True,
    record: Path | None = None,
    ready_within_s: float = 600.0,
) -> tuple[subprocess.Popen[str], int]:
    """Start the bot; return its process and port once it listens.

    Args:
        log: Where the bot's output goes (a file: a pipe nobody reads would fill
            and block the bot's next write).
        root: The repository root (the bot's working directory).
        greeting: Whether the bot greets a client that connects.
        record: Where each call's JSONL event log goes, or ``None``.
        ready_within_s: How long the models may take to load.

    Raises:
        RuntimeError: The bot exited, or did not listen in time.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env["TANDEM_BOT_SERVICES"] = SERVICES
    if record is not None:
        env["TANDEM_RECORD_DIR"] = str(record)
    env["TANDEM_BOT_GREETING"] = "1" if greeting else "0"
    cmd = [sys.executable, "-m", "pipecat_tandem.bot", "--host", "127.0.0.1", "--port", str(port)]
    sink = log.open("w")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=sink, stderr=sink, text=True)
    sink.close()  # the child holds its own copy
    deadline = time.monotonic() + ready_within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the bot exited with {proc.returncode}; see {log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    stop_bot(proc)
    raise RuntimeError(f"the bot did not listen within {ready_within_s:.0f} s; see {log}")


def stop_bot(proc: subprocess.Popen[str]) -> None:
    """Stop the bot: politely, then not."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@contextmanager
def eval_bot(
    log: Path, *, root: Path, greeting: bool = True, record: Path | None = None
) -> Iterator[str]:
    """The bot for the block's length; yields its eval URL (``ws://127.0.0.1:PORT/ws``)."""
    proc, port = start_bot(log, root=root, greeting=greeting, record=record)
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        stop_bot(proc)
