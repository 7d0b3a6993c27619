"""Starting ``tandem run`` in its own process for a suite run, and stopping it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Poll ``/healthz`` until it answers 200; fail at once if the server exits."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"tandem run exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(base + "/healthz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.3)
    raise RuntimeError(f"tandem run was not ready within {timeout_s:.0f} s")


@contextlib.asynccontextmanager
async def tandem_run(
    args: list[str] | None = None, log: Path | None = None, ready_timeout_s: float = 300.0
) -> AsyncIterator[str]:
    """Run ``tandem run`` on a free loopback port; yields its base URL.

    Args:
        args: Extra ``tandem run`` arguments (e.g. ``["--documents", DIR]``).
        log: Where its output goes (default: discarded).
        ready_timeout_s: How long model loading may take.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "pipecat_tandem", "run", "--port", str(port), *(args or [])]
    # Opening a log and forking are quick and happen once, before the call starts.
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115, ASYNC230
    proc = subprocess.Popen(  # noqa: ASYNC220
        cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ)
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base, proc, ready_timeout_s)
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if log and not isinstance(out, int):
            out.close()
