#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Running sessions: admission limit, one runner per call, clean teardown.

Each accepted call gets its own ``WorkerRunner`` (as pipecat's dev runner does),
so one session's failure or cancellation never touches another. A session
ends, and every resource it holds (pipeline worker with its background jobs,
peer connection, slot) is released, when any of these happens:

* the client closes the connection or ICE fails (aiortc events);
* the client stops answering (no data-channel keep-alive and no media for
  ``liveness_timeout_s``): a browser tab that was killed never says goodbye;
* the pipeline ends by itself, or the server shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import os
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from pipecat.pipeline.worker import PipelineWorker
from pipecat.workers.runner import WorkerRunner

from pipecat_tandem.transports.session import SessionInfo


class SessionLimitError(Exception):
    """No free session slot."""


@dataclass
class Session:
    """One live call.

    Parameters:
        info: The session's identity, clock and record path.
        connection: The peer connection (``SmallWebRTCConnection``) or ``None``.
        worker: The pipeline worker.
        runner: The runner driving it.
        task: The asyncio task running the runner.
        ended: Set once everything is torn down.
        end_reason: Why the session ended.
        client: Who asked for it (the admission key of the offer's sender).
        connected: Whether its client ever connected (ICE and DTLS done).
        started: Set once the pipeline's ``StartFrame`` has passed every processor.
    """

    info: SessionInfo
    connection: Any = None
    worker: PipelineWorker | None = None
    runner: WorkerRunner | None = None
    task: asyncio.Task[None] | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""
    client: str = ""
    connected: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)


class SessionManager:
    """Admits, runs and tears down sessions.

    Args:
        max_sessions: Most concurrent sessions (reservations included).
        liveness_timeout_s: How long a connected client may be unresponsive
            before its session is ended.
        liveness_poll_s: How often liveness is checked.
        connect_timeout_s: How long an accepted offer may take to connect
            (ICE and DTLS) before its session is ended and its slot freed.
            pipecat's own limit is 60 s; one offer whose client never applied
            the answer held the embedded models (one call at a time) for all
            of it, so every other caller got 503.
    """

    def __init__(
        self,
        *,
        max_sessions: int = 4,
        liveness_timeout_s: float = 6.0,
        liveness_poll_s: float = 1.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        if liveness_timeout_s <= 0 or liveness_poll_s <= 0 or connect_timeout_s <= 0:
            raise ValueError("liveness and connect timeouts and poll interval must be positive")
        self._connect_timeout = connect_timeout_s
        self.max_sessions = max_sessions
        self._liveness_timeout = liveness_timeout_s
        self._liveness_poll = liveness_poll_s
        self._reserved = 0
        self._sessions: dict[str, Session] = {}
        self.ended_sessions: list[Session] = []
        limit_malloc_arenas()

    @property
    def active(self) -> int:
        """Sessions running or being set up."""
        return self._reserved + len(self._sessions)

    def sessions(self) -> list[Session]:
        """The running sessions."""
        return list(self._sessions.values())

    def reserve(self) -> None:
        """Claim a slot before the (slow) set-up of a new session.

        Raises:
            SessionLimitError: If every slot is taken.
        """
        if self.active >= self.max_sessions:
            raise SessionLimitError(
                f"server is at its session limit ({self.max_sessions}); try again later"
            )
        self._reserved += 1

    def release_reservation(self) -> None:
        """Give back a slot whose session never started."""
        self._reserved = max(0, self._reserved - 1)

    def start(self, session: Session) -> None:
        """Start a set-up session (consumes the reservation).

        Args:
            session: A session with ``worker`` set.
        """
        if session.worker is None:
            raise ValueError("session has no worker")
        self.release_reservation()
        self._sessions[session.info.session_id] = session

        @session.worker.event_handler("on_pipeline_started")
        async def _started(worker: Any, frame: Any) -> None:
            session.started.set()

        session.runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        session.task = asyncio.create_task(
            self._run(session), name=f"tandem-session-{session.info.session_id}"
        )

    async def _run(self, session: Session) -> None:
        assert session.runner is not None and session.worker is not None
        watchdog = asyncio.create_task(self._watch_liveness(session))
        try:
            await session.runner.add_workers(session.worker)
            await session.runner.run()
        except Exception as e:  # one broken session must not take the server down
            logger.exception(f"session {session.info.session_id} crashed: {e}")
            session.end_reason = session.end_reason or f"crashed: {e}"
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            await self._teardown(session)

    async def _watch_liveness(self, session: Session) -> None:
        connection = session.connection
        if connection is None or not hasattr(connection, "is_connected"):
            return
        seen_connected = False
        silent_for = 0.0
        connecting_for = 0.0
        while True:
            await asyncio.sleep(self._liveness_poll)
            if connection.is_connected():
                seen_connected = session.connected = True
                silent_for = 0.0
                continue
            if not seen_connected:
                connecting_for += self._liveness_poll
                if connecting_for >= self._connect_timeout:
                    logger.info(f"session {session.info.session_id}: client never connected")
                    await self.end(session, "client never connected")
                    return
                continue
            silent_for += self._liveness_poll
            if silent_for >= self._liveness_timeout:
                logger.info(f"session {session.info.session_id}: client unresponsive, ending")
                await self.end(session, "client unresponsive")
                return

    async def end(self, session: Session, reason: str) -> None:
        """Cancel a session's pipeline (its background jobs with it); idempotent.

        Args:
            session: The session.
            reason: Why (kept in ``end_reason`` and logged).
        """
        if not session.end_reason:
            session.end_reason = reason
        if session.runner is not None:
            await self._until_started(session)
            await session.runner.cancel(reason)
        elif session.task is None:
            await self._teardown(session)

    async def _until_started(self, session: Session, timeout_s: float = 5.0) -> None:
        """Wait (bounded) for a starting pipeline to finish starting.

        A pipeline cancelled while its ``StartFrame`` is still on the way
        leaves tasks behind: a service that sees the ``StartFrame`` after the
        cancel went by starts its task (an STT's segment handler, say) and
        nothing ever stops it, holding the whole call. A session ended right
        after its answer (an offer whose client vanished) did exactly that,
        once per call.
        """
        task = session.task
        if session.started.is_set() or task is None or task.done():
            return
        if task is asyncio.current_task():
            return
        started = asyncio.ensure_future(session.started.wait())
        try:
            await asyncio.wait(
                {started, task}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            started.cancel()

    async def _teardown(self, session: Session) -> None:
        if session.ended.is_set():
            return
        if session.connection is not None:
            try:
                await session.connection.disconnect()
            except Exception as e:
                logger.debug(f"session {session.info.session_id}: disconnect failed: {e}")
        # Ended sessions are kept (the last 64) for their info and end reason
        # only: the connection's event handlers reach the transport and with it
        # the whole pipeline, which must be freed with the call.
        session.connection = None
        session.worker = None
        session.runner = None
        session.task = None
        # Counted as active until it is among the ended ones: whoever sees the
        # count drop finds the session there with its end reason.
        self.ended_sessions.append(session)
        del self.ended_sessions[:-64]
        self._sessions.pop(session.info.session_id, None)
        session.ended.set()
        logger.info(
            f"session {session.info.session_id} ended ({session.end_reason or 'pipeline finished'})"
        )
        # A call's pipeline is a web of reference cycles (processors link both
        # ways, handlers close over them) holding native resources: onnx
        # sessions and their threads, codec contexts. Python's cyclic collector
        # reaches the oldest generation rarely, so without this a server grew
        # by tens of MB and threads per call (measured: benchmarks/bench_soak.py).
        await asyncio.to_thread(_collect_and_trim)

    async def shutdown(self, timeout_s: float = 5.0) -> None:
        """End every session and wait for them.

        Args:
            timeout_s: Upper bound on the wait.
        """
        sessions = self.sessions()
        for s in sessions:
            await self.end(s, "server shutting down")
        tasks = [s.task for s in sessions if s.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for t in pending:
                t.cancel()


def _collect_and_trim() -> None:
    """Collect a call's cycles, then hand the freed heap back to the OS.

    glibc keeps freed memory in its arenas for reuse; after a call most of it is
    free, yet the server's RSS stayed ~190 MB above its first call for good. An
    operator watching RSS sees a leak, so the free pages are returned (a no-op
    on other C libraries).
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


#: glibc's ``mallopt`` parameter number for the most heap arenas (``M_ARENA_MAX``).
_M_ARENA_MAX = -8
#: Heap arenas a server keeps. glibc's default is 8 per core: each call's threads
#: (transport, codecs, VAD, speech models) claimed arenas that never shrank: over
#: 40 calls RSS rose 128 MB above the first call and kept climbing (1.6 MB a call);
#: with 2 it rose 35 MB and stayed flat, replies no slower (benchmarks/bench_soak.py).
SERVER_MALLOC_ARENAS = 2


@functools.cache
def limit_malloc_arenas(arenas: int = SERVER_MALLOC_ARENAS) -> bool:
    """Cap glibc's heap arenas for the rest of the process, once.

    Arenas made before the call are kept; new threads share the capped ones.
    An operator's ``MALLOC_ARENA_MAX`` stands, and other C libraries are left alone.

    Returns:
        Whether the cap was set.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))


@functools.cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
