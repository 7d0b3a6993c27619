#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""RTVIJobBridge: the tandem's jobs on pipecat's RTVI protocol, both ways.

Out: every job lifecycle frame becomes a ``tandem-job`` event
(:mod:`~pipecat_tandem.transports.rtvi_job_schema`) inside an RTVI
``server-message``, sent by a
:class:`~pipecat_tandem.transports.client_event_observer.ClientEventObserver`
(the same encoder the project's page is fed by, so a job frame means the same
thing to both).

In: a client's ``client-message`` of type ``tandem-cancel-job`` (or pipecat's
own ``ui-cancel-job-group``) reaches the bridge through the ``RTVIProcessor``'s
``on_client_message``/``on_ui_message`` events, the way pipecat apps handle
client messages. It is validated, carried out by the delegation processor
(the one place jobs are cancelled) and answered with an RTVI
``server-response``, or an ``error-response`` that says what was wrong. A bad
message never reaches the pipeline and never ends the call.
"""

from __future__ import annotations

from typing import Any, Protocol

import pipecat.processors.frameworks.rtvi.models as RTVI
from loguru import logger
from pipecat.frames.frames import OutputTransportMessageUrgentFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.processors.frameworks.rtvi import RTVIProcessor

from pipecat_tandem.clock import SessionClock
from pipecat_tandem.errors import JobStateError, UnknownJobError
from pipecat_tandem.transports.client_event_observer import ClientEventObserver, SendFn
from pipecat_tandem.transports.rtvi_job_schema import (
    SCHEMA_VERSION,
    JobCommandError,
    JobEventTranslator,
    is_job_command,
    parse_job_command,
)

#: pipecat's own cancel request (its UI-worker protocol), served as ``tandem-cancel-job``.
UI_CANCEL_TYPE = "ui-cancel-job-group"


class JobCanceller(Protocol):
    """What the bridge needs of the delegation processor."""

    async def cancel(self, job_id: str, *, reason: str = "cancelled") -> None:
        """Cancel a job (raises ``UnknownJobError``/``JobStateError``)."""
        ...


def rtvi_send_through(output: FrameProcessor) -> SendFn:
    """A send function wrapping each event in an RTVI ``server-message``.

    Args:
        output: ``transport.output()``; the message goes out as an urgent
            transport message (WebRTC data channel, WebSocket, LiveKit data).

    Returns:
        The send function.
    """

    async def _send(event: dict[str, Any]) -> None:
        message = RTVI.ServerMessage(data=event).model_dump()
        await output.queue_frame(OutputTransportMessageUrgentFrame(message=message))

    return _send


class RTVIJobBridge:
    """Sends job events to RTVI clients and carries out their job commands.

    Args:
        delegation: Cancels jobs (the session's ``DelegationProcessor``).
        clock: The session clock stamped on each event.

    Example::

        bridge = RTVIJobBridge(delegation=tandem.delegation, clock=clock)
        bridge.attach(worker, transport.output())
    """

    def __init__(self, *, delegation: JobCanceller, clock: SessionClock) -> None:
        self._delegation = delegation
        self._clock = clock
        self.commands = 0
        self.refused = 0

    def observer(self, send: SendFn) -> ClientEventObserver:
        """An observer sending every job event through ``send`` (one per session)."""
        return ClientEventObserver(
            send=send,
            clock=self._clock,
            include_cues=False,
            translate=JobEventTranslator().translate,
        )

    def attach(self, worker: PipelineWorker, output: FrameProcessor) -> None:
        """Wire the bridge into a worker built with RTVI (pipecat's default).

        Args:
            worker: The session's pipeline worker.
            output: The transport's output processor.

        Raises:
            ValueError: The worker has no RTVI processor (``enable_rtvi=False``).
        """
        try:
            rtvi = worker.rtvi
        except Exception as e:
            raise ValueError(f"RTVIJobBridge needs a worker with RTVI enabled ({e})") from None
        worker.add_observer(self.observer(rtvi_send_through(output)))
        rtvi.add_event_handler("on_client_message", self.on_client_message)
        rtvi.add_event_handler("on_ui_message", self.on_ui_message)

    async def on_client_message(self, rtvi: RTVIProcessor, message: RTVI.ClientMessage) -> None:
        """Serve a ``tandem-*`` client message; leave any other type to the app."""
        if not is_job_command(message.type):
            return
        await self._serve(rtvi, message, message.type, message.data)

    async def on_ui_message(self, rtvi: RTVIProcessor, message: Any) -> None:
        """Serve pipecat's ``ui-cancel-job-group`` as a job cancellation."""
        if getattr(message, "type", None) != UI_CANCEL_TYPE:
            return
        data = message.data.model_dump(exclude_none=True)
        request = RTVI.ClientMessage(msg_id=message.id, type=UI_CANCEL_TYPE, data=data)
        await self._serve(rtvi, request, "tandem-cancel-job", data)

    async def handle(self, kind: object, data: object) -> dict[str, Any]:
        """Validate and carry out one command.

        Args:
            kind: The message type (``tandem-cancel-job``).
            data: Its payload.

        Returns:
            The response payload.

        Raises:
            JobCommandError: With the sentence to send back.
        """
        command = parse_job_command(kind, data)
        reason = command.reason or "cancelled by the client"
        try:
            await self._delegation.cancel(command.job_id, reason=reason)
        except (UnknownJobError, JobStateError) as e:
            raise JobCommandError(f"{command.kind}: {e}") from None
        return {
            "type": command.kind,
            "version": SCHEMA_VERSION,
            "job_id": command.job_id,
            "status": "cancelled",
        }

    async def _serve(
        self, rtvi: RTVIProcessor, request: RTVI.ClientMessage, kind: object, data: object
    ) -> None:
        self.commands += 1
        try:
            response = await self.handle(kind, data)
        except JobCommandError as e:
            self.refused += 1
            logger.info(f"RTVI job command refused: {e}")
            await self._reply(rtvi.send_error_response(request, str(e)))
            return
        except Exception as e:  # a fault here must not reach the pipeline
            self.refused += 1
            logger.exception(f"RTVI job command failed: {e}")
            await self._reply(rtvi.send_error_response(request, f"{kind}: internal error ({e})"))
            return
        await self._reply(rtvi.send_server_response(request, response))

    @staticmethod
    async def _reply(coro: Any) -> None:
        try:
            await coro
        except Exception as e:  # the client may be gone
            logger.debug(f"RTVI job command: could not answer the client: {e}")
