#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""pipecat's ``RedisBus``, made to survive Redis going away.

pipecat 1.14's ``RedisBus`` reads its channel in one task; when the connection
drops (Redis restarted, a network blip longer than the client's retries) that
task ends with an exception and the process never hears the channel again:
a worker would miss every cancel and follow-up, a call every result. Measured
here: a 2 s restart of redis-server killed both readers for good.

:class:`ResilientRedisBus` keeps pipecat's bus (publishing, serializer, the
per-subscriber priority queues) and only replaces the reader: on a dropped
connection it logs one line, waits, subscribes again and carries on. What was
published while it was away is gone (pub/sub keeps nothing), which is why the
jobs themselves travel on a Redis stream and every job has a deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any

from loguru import logger
from pipecat.bus.network.redis import RedisBus


class ResilientRedisBus(RedisBus):
    """A ``RedisBus`` whose reader re-subscribes after a lost connection.

    Args:
        retry_s: Pause between attempts to subscribe again.
        **kwargs: ``RedisBus`` arguments (``redis``, ``channel``, ``serializer``).
    """

    def __init__(self, *, retry_s: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._retry_s = retry_s
        #: How many times the reader lost its connection and subscribed again.
        self.reconnects = 0

    async def _reader_loop(self) -> None:
        while True:
            try:
                await super()._reader_loop()
                return  # the subscription ended normally (unsubscribed)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                logger.warning(f"{self}: lost {self._channel} ({e}); subscribing again")
            await self._resubscribe()

    async def _resubscribe(self) -> None:
        old = self._pubsub
        self._pubsub = None
        if old is not None:
            try:
                await old.aclose()
            except Exception:
                pass  # a dead connection may not close cleanly
        while self._pubsub is None:
            await asyncio.sleep(self._retry_s)
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
            except Exception:
                await pubsub.aclose()
                continue
            self._pubsub = pubsub
            self.reconnects += 1
            logger.info(f"{self}: subscribed to {self._channel} again")
