#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The parent of ``tandem run --workers N``: worker processes behind haproxy.

The parent starts N ``tandem run`` worker processes, each with its own event
loop, serving on its own Unix socket; starts haproxy (Debian's package, see
:mod:`~pipecat_tandem.transports.haproxy` for why) on the public address; and
serves the one ``/healthz`` and ``/metrics`` on a socket of its own, summing
and merging what it polls from the workers once a second.

A worker that dies is reported (``worker 1 (pid 123) killed by SIGKILL,
ending its 2 call(s)``): its calls end with it, since their media and state
lived in that process, while the other workers' calls go on. It is started
again after a short backoff, so the machine's capacity comes back. A worker
that dies before it was ever ready is a start-up failure (bad models, bad
flags): the parent stops everything and exits 1; the worker has printed the
one line saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from pipecat_tandem.observe.prometheus import CONTENT_TYPE, merge_pages, render
from pipecat_tandem.transports.haproxy import ProxyPlan, routable_workers
from pipecat_tandem.transports.worker_pool import (
    WorkerState,
    describe_exit,
    pool_families,
    pool_health,
    restart_delay,
)

ProgressFn = Callable[[str], None]


def _die_with_parent() -> None:
    """In a child before exec: SIGTERM it when the parent dies (Linux ``PR_SET_PDEATHSIG``).

    A parent killed with SIGKILL cannot stop its workers and haproxy; without
    this they would serve on, orphaned, holding the port.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux/glibc: the parent's own stop() is all there is


def port_problem(host: str, port: int) -> str | None:
    """Why haproxy could not listen on ``host:port`` (checked before it starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            return f"cannot listen on {host}:{port}: {e.strerror or e}"
    return None


class Supervisor:
    """Runs the worker processes and haproxy; serves the summed health and metrics.

    Args:
        workers: How many worker processes.
        worker_argv: The ``tandem run`` arguments each worker gets (the
            parent's own, without ``--workers``); the worker flags are added.
        host: Public bind address.
        port: Public TCP port.
        haproxy: The haproxy binary.
        progress: Reports start-up and worker events.
        poll_s: How often the workers' health is polled.
    """

    def __init__(
        self,
        *,
        workers: int,
        worker_argv: Sequence[str],
        host: str,
        port: int,
        haproxy: str,
        progress: ProgressFn,
        poll_s: float = 1.0,
    ) -> None:
        self.workers = [WorkerState(i) for i in range(workers)]
        self._argv = list(worker_argv)
        self.host = host
        self.port = port
        self._haproxy_bin = haproxy
        self._progress = progress
        self._poll_s = poll_s
        self._dir = Path(tempfile.mkdtemp(prefix="tandem-workers-"))
        self.plan = ProxyPlan(
            host=host,
            port=port,
            worker_sockets=tuple(self._dir / f"w{i}.sock" for i in range(workers)),
            parent_socket=self._dir / "parent.sock",
            stats_socket=self._dir / "haproxy.sock",
        )
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._haproxy: asyncio.subprocess.Process | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stopping = False
        #: Set when a worker fails before it was ever ready (start-up failure).
        self.failed = asyncio.Event()

    #
    # Lifecycle
    #

    async def start(self) -> str | None:
        """Start the parent's endpoint, the workers and haproxy.

        Returns:
            ``None``, or one line saying why it cannot serve.
        """
        problem = port_problem(self.host, self.port)
        if problem:
            return problem
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(self.plan.parent_socket)).start()
        for w in self.workers:
            await self._spawn(w)
        config = self._dir / "haproxy.cfg"
        config.write_text(self.plan.config())
        # Its log (workers going up and down) goes to a file: a pipe nobody
        # reads would fill up over days and stall it.
        log = self._dir / "haproxy.log"
        with log.open("wb") as out:
            self._haproxy = await asyncio.create_subprocess_exec(
                self._haproxy_bin,
                "-db",
                "-f",
                str(config),
                stdout=out,
                stderr=out,
                preexec_fn=_die_with_parent,
            )
        try:
            await asyncio.wait_for(self._haproxy.wait(), 0.5)
        except TimeoutError:
            pass  # still running: it took the port
        else:
            err = log.read_text(errors="replace").splitlines()
            lines = [ln for ln in err if "ALERT" in ln] or err or [""]
            return f"haproxy did not start: {lines[-1].strip()}"
        self._keep(self._poll_forever())
        self._keep(self._watch_haproxy())
        return None

    async def stop(self) -> None:
        """Stop the workers (they end their calls), haproxy, and the endpoint."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        procs = list(self._procs.values())
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        # One deadline for all of them: a worker still loading models (a native
        # load no signal interrupts) must not hold the others' stop too.
        if procs:
            await asyncio.wait([asyncio.ensure_future(p.wait()) for p in procs], timeout=10.0)
            for p in procs:
                if p.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        p.kill()
                    await p.wait()
        if self._haproxy is not None and self._haproxy.returncode is None:
            self._haproxy.terminate()
            await self._haproxy.wait()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _keep(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spawn(self, w: WorkerState) -> None:
        sock = self.plan.worker_sockets[w.index]
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        argv = [
            *self._argv,
            "--workers",
            "1",
            "--worker-index",
            str(w.index),
            "--worker-socket",
            str(sock),
        ]
        env = {**os.environ, "TANDEM_WORKER": str(w.index)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pipecat_tandem",
            "run",
            *argv,
            env=env,
            preexec_fn=_die_with_parent,
        )
        self._procs[w.index] = proc
        w.pid = proc.pid
        self._keep(self._watch(w, proc))

    async def _watch(self, w: WorkerState, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self._stopping:
            return
        line = w.exited(code)
        if not w.ever_ready:
            self._progress(f"{line} before it was ready; stopping")
            self.failed.set()
            return
        delay = restart_delay(w.restarts)
        self._progress(f"{line}; the other workers go on; restarting it in {delay:g}s")
        await asyncio.sleep(delay)
        if self._stopping:
            return
        w.restarts += 1
        await self._spawn(w)

    async def _watch_haproxy(self) -> None:
        assert self._haproxy is not None
        code = await self._haproxy.wait()
        if not self._stopping:
            # Without it nothing reaches the workers: a stop an operator must see.
            self._progress(f"haproxy {describe_exit(code)}; stopping")
            self.failed.set()

    #
    # Polling and the parent's endpoints
    #

    async def _get(self, index: int, path: str) -> tuple[int | None, str]:
        sock = self.plan.worker_sockets[index]
        timeout = aiohttp.ClientTimeout(total=2.0)
        try:
            async with aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(sock)), timeout=timeout
            ) as http:
                async with http.get(f"http://worker{path}") as r:
                    return r.status, await r.text()
        except (TimeoutError, aiohttp.ClientError, OSError):
            return None, ""

    async def poll(self) -> None:
        """Read every worker's ``/healthz`` once."""

        async def one(w: WorkerState) -> None:
            if w.pid is None:
                return
            status, text = await self._get(w.index, "/healthz")
            body: dict[str, Any] | None = None
            if status is not None:
                try:
                    body = json.loads(text)
                except ValueError:
                    body = {}
            was_ready = w.ready
            w.saw(status, body)
            if w.ready and not was_ready:
                self._progress(f"worker {w.index} (pid {w.pid}) ready")

        await asyncio.gather(*(one(w) for w in self.workers))
        # A worker counts as taking calls only once haproxy routes to it too:
        # its checks run every 0.5 s, so "ready" could run ahead of the proxy.
        routed = routable_workers(await self._haproxy_stat())
        for w in self.workers:
            w.routed = routed.get(w.index, False)

    async def _haproxy_stat(self) -> str:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.plan.stats_socket)), 1.0
            )
        except (OSError, TimeoutError):
            return ""
        try:
            writer.write(b"show stat\n")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 2.0)
        except (OSError, TimeoutError):
            data = b""
        finally:
            writer.close()
        return data.decode(errors="replace")

    async def _poll_forever(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self._poll_s)

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until every worker is warm (True) or one failed / time ran out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline and not self.failed.is_set():
            if all(w.ready for w in self.workers):
                return True
            await asyncio.sleep(0.2)
        return False

    async def _healthz(self, request: web.Request) -> web.Response:
        # Fresh, not the last poll: a caller deciding to call wants "now".
        await self.poll()
        status, body = pool_health(self.workers)
        headers = {"Retry-After": "5"} if status == 503 else None
        return web.json_response(body, status=status, headers=headers)

    async def _metrics(self, request: web.Request) -> web.Response:
        pages = await asyncio.gather(*(self._get(w.index, "/metrics") for w in self.workers))
        texts = [render(pool_families(self.workers))]
        texts += [text for status, text in pages if status == 200]
        body = merge_pages(texts)
        return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})
