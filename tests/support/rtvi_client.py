"""An RTVI client on pipecat's own client transport, for tests and benchmarks.

pipecat's eval harness connects to a runner bot's ``/ws`` route with
``EvalClientTransport`` (an ``RTVIClientTransport``: ``eval-connect``, then the
``client-ready``/``bot-ready`` handshake). This client runs that transport in a
pipeline of its own and keeps every RTVI message the bot sends, with the time it
arrived, so a test can wait for the ``tandem-job`` events, the server responses
and the bot's words.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import pipecat.processors.frameworks.rtvi.models as RTVI
from pipecat.evals.client_transport import EvalClientTransport
from pipecat.evals.serializer import EvalClientSerializer, EvalConnectionFlags
from pipecat.frames.frames import Frame, OutputTransportMessageUrgentFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.transports.websocket.client import WebsocketClientParams
from pipecat.workers.runner import WorkerRunner

Message = dict[str, Any]


class _Recording(EvalClientSerializer):
    """The harness's serializer, keeping each message it is handed."""

    def __init__(self, on_message: Callable[[Message], None]) -> None:
        super().__init__()
        self._on_message = on_message

    async def deserialize(self, data: str | bytes) -> Frame | None:
        try:
            message = json.loads(data)
        except (json.JSONDecodeError, TypeError):
            message = None
        if isinstance(message, dict):
            self._on_message(message)
        return await super().deserialize(data)


class RTVITestClient:
    """Connects to ``url`` as the eval harness does and records what the bot sends.

    Args:
        url: The bot's WebSocket route (``ws://127.0.0.1:PORT/ws``).
        skip_tts: Ask the bot for text mode (no speech), as the harness does for
            text scenarios.
    """

    def __init__(self, url: str, *, skip_tts: bool = True) -> None:
        self.messages: list[tuple[float, Message]] = []
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        params = WebsocketClientParams(serializer=_Recording(self._record))
        self.transport = EvalClientTransport(
            url, params, flags=EvalConnectionFlags(skip_tts=skip_tts)
        )
        self.ready = asyncio.Event()

        @self.transport.event_handler("on_bot_ready")
        async def _ready(transport: Any) -> None:
            self.ready.set()

        self._worker = PipelineWorker(
            Pipeline([self.transport.input(), self.transport.output()]),
            params=PipelineParams(),
            enable_rtvi=False,
            cancel_on_idle_timeout=False,
        )
        self._task: asyncio.Task[None] | None = None

    def _record(self, message: Message) -> None:
        self.messages.append((time.monotonic(), message))
        self._changed.set()

    async def start(self, timeout_s: float = 20.0) -> None:
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self._worker)
        self._task = asyncio.create_task(runner.run())
        await asyncio.wait_for(self.ready.wait(), timeout_s)

    async def stop(self) -> None:
        if self._task is None:
            return
        await self._worker.cancel()
        try:
            await asyncio.wait_for(self._task, 5.0)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()

    async def send_raw(self, message: Message) -> None:
        """Send any JSON object as it is (malformed ones included)."""
        await self._worker.queue_frame(OutputTransportMessageUrgentFrame(message=message))

    async def send(self, kind: str, data: Any = None) -> str:
        """Send an RTVI message; returns its id."""
        msg_id = f"t{next(self._ids)}"
        await self.send_raw({"label": RTVI.MESSAGE_LABEL, "type": kind, "id": msg_id, "data": data})
        return msg_id

    async def send_text(self, text: str) -> str:
        """A user turn as RTVI ``send-text`` (what the harness does in text mode)."""
        return await self.send("send-text", {"content": text, "options": {"run_immediately": True}})

    async def client_message(self, t: str, d: Any = None) -> str:
        """An RTVI ``client-message`` of type ``t``; returns its id."""
        return await self.send("client-message", {"t": t, "d": d})

    def job_events(self, job_id: str | None = None) -> list[Message]:
        """The ``tandem-job`` events received (of one job), in arrival order."""
        out = []
        for _, m in self.messages:
            data = m.get("data")
            if m.get("type") == "server-message" and isinstance(data, dict):
                if data.get("type") == "tandem-job" and job_id in (None, data.get("job_id")):
                    out.append(data)
        return out

    def reply_to(self, msg_id: str) -> Message | None:
        """The ``server-response`` or ``error-response`` to one message."""
        for _, m in self.messages:
            if m.get("id") == msg_id and m.get("type") in ("server-response", "error-response"):
                return m
        return None

    async def wait_for(
        self, predicate: Callable[[], Any], timeout_s: float = 10.0, what: str = ""
    ) -> Any:
        """Wait until ``predicate()`` is truthy; returns its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                kinds = [m.get("type") for _, m in self.messages][-20:]
                raise AssertionError(f"timed out waiting for {what or predicate}; last: {kinds}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass
