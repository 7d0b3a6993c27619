#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""ClientEventObserver: stream the split (jobs, deliveries, transcripts) to the client.

An observer rather than a processor: the plugin's frames travel in both
directions from several places in the pipeline, and an observer sees every
push without changing where anything goes. Messages leave through the
transport as ``OutputTransportMessageUrgentFrame``s (a WebRTC data channel
message, or LiveKit data), so the observer knows nothing about the transport.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from pipecat.frames.frames import OutputTransportMessageUrgentFrame
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameProcessor

from pipecat_tandem.clock import SessionClock
from pipecat_tandem.transports.client_events import ClientEventEncoder

#: Sends one JSON-serializable message to the client.
SendFn = Callable[[dict[str, Any]], Awaitable[None]]
#: Turns one encoded client event into the messages actually sent (e.g. RTVI ones).
TranslateFn = Callable[[dict[str, Any]], list[dict[str, Any]]]


def send_through(output: FrameProcessor) -> SendFn:
    """A :data:`SendFn` that queues messages into a transport's output processor.

    Args:
        output: ``transport.output()``.

    Returns:
        The send function.
    """

    async def _send(message: dict[str, Any]) -> None:
        await output.queue_frame(OutputTransportMessageUrgentFrame(message=message))

    return _send


class ClientEventObserver(BaseObserver):
    """Forwards plugin frames, transcripts and speaking state to the client as JSON.

    Args:
        send: Delivers one message (see :func:`send_through`).
        clock: The session clock stamped on each message.
        include_cues: Whether to forward perception cues.
        translate: Rewrites each encoded event into the messages to send
            (default: the event itself); e.g. the RTVI job schema's
            :class:`~pipecat_tandem.transports.rtvi_job_schema.JobEventTranslator`.
        **kwargs: Passed to ``BaseObserver``.
    """

    def __init__(
        self,
        *,
        send: SendFn,
        clock: SessionClock,
        include_cues: bool = True,
        translate: TranslateFn | None = None,
        **kwargs: Any,
    ) -> None:
        # Each frame is encoded once, at its first push: told about every later hop
        # too, the observer woke for every audio frame at every processor (~850
        # times a second in a call) only to skip it (docs/benchmarks.md).
        kwargs.setdefault("observe_every_push", False)
        super().__init__(**kwargs)
        self._send = send
        self._translate = translate
        self._encoder = ClientEventEncoder(clock=clock, include_cues=include_cues)
        self.sent = 0

    async def on_push_frame(self, data: FramePushed) -> None:
        """Encode the pushed frame (once) and send it."""
        message = self._encoder.encode(data.frame)
        if message is None:
            return
        messages = [message] if self._translate is None else self._translate(message)
        for out in messages:
            try:
                await self._send(out)
                self.sent += 1
            except Exception as e:  # a dead client must not break the pipeline
                logger.debug(f"{self}: could not send client event: {e}")
