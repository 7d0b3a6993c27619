"""A real Debian ``redis-server`` for tests: loopback, a free port, no persistence.

``scripts/setup`` installs it (``scripts/install-system-deps.sh``); a machine
without it fails the tests that need it, with a message naming the fix, rather
than skipping them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class RedisServer:
    """A running test server."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(port: int | None = None) -> Iterator[RedisServer]:
    """Start ``redis-server`` in the foreground on 127.0.0.1; kill it at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed: run `bash scripts/setup` "
            "(it installs Debian's redis-server through scripts/install-system-deps.sh)"
        )
    port = port or _free_port()
    workdir = tempfile.mkdtemp(prefix="tandem-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--daemonize", "no", "--dir", workdir, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10.0
        while not _answers_ping(port):
            if process.poll() is not None:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"redis-server exited at start ({process.returncode}): {err}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer PING on port {port} within 10 s")
            time.sleep(0.02)
        yield RedisServer(port, process)
    finally:
        process.kill()
        process.wait(timeout=5)
        shutil.rmtree(workdir, ignore_errors=True)
