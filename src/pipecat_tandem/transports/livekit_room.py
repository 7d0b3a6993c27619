#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Join a LiveKit room as one participant running the tandem pipeline.

The bot connects with a token given to it, or mints a short-lived,
least-privilege one from an API key and secret: it may join only the named
room, publish and subscribe media and publish data, for ``ttl`` (10 minutes by
default; LiveKit only checks expiry at join time). It hears and sees the other
participants through pipecat's ``LiveKitTransport`` and streams the tandem
split (jobs, deliveries, transcripts) to them as data messages.

Example::

    config = LiveKitRoomConfig.from_sources(url="wss://lk.example", room="demo",
                                            api_key="...", api_secret="...")
    await run_livekit_session(config, factory=my_factory)
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger
from pipecat.transports.base_transport import VideoInSourceParams
from pipecat.transports.livekit.transport import LiveKitParams, LiveKitTransport
from pipecat.workers.runner import WorkerRunner

from pipecat_tandem.transports.client_event_observer import ClientEventObserver, send_through
from pipecat_tandem.transports.session import ProgressFn, SessionFactory, SessionInfo

_SCHEMES = ("ws://", "wss://", "http://", "https://")
_MAX_NAME = 128
DEFAULT_TOKEN_TTL = datetime.timedelta(minutes=10)


def mint_token(
    api_key: str,
    api_secret: str,
    *,
    room: str,
    identity: str = "tandem-bot",
    ttl: datetime.timedelta = DEFAULT_TOKEN_TTL,
) -> str:
    """Mint a least-privilege access token for one room.

    Args:
        api_key: LiveKit API key.
        api_secret: LiveKit API secret.
        room: The only room the token admits to.
        identity: The bot's participant identity.
        ttl: Token lifetime (short: it only needs to outlive the join).

    Returns:
        The signed JWT.

    Raises:
        ValueError: On empty credentials, room or identity, or a non-positive ttl.
    """
    from livekit import api

    if not api_key or not api_secret:
        raise ValueError("minting a token needs both an API key and an API secret")
    if not room or not identity:
        raise ValueError("minting a token needs a room and an identity")
    if ttl.total_seconds() <= 0:
        raise ValueError("token ttl must be positive")
    grants = api.VideoGrants(
        room_join=True,
        room=room,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
    )
    return (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_name(identity)
        .with_grants(grants)
        .with_ttl(ttl)
        .to_jwt()
    )


@dataclass(frozen=True)
class LiveKitRoomConfig:
    """Where and as whom the bot joins.

    Parameters:
        url: LiveKit server URL (``ws://``/``wss://``).
        room: Room name.
        token: A ready access token, or ``None`` to mint one.
        api_key: API key (used only when ``token`` is ``None``).
        api_secret: API secret (used only when ``token`` is ``None``).
        identity: The bot's participant identity.
        ttl: Lifetime of a minted token.
    """

    url: str
    room: str
    token: str | None = None
    api_key: str | None = None
    api_secret: str | None = None
    identity: str = "tandem-bot"
    ttl: datetime.timedelta = DEFAULT_TOKEN_TTL

    @classmethod
    def from_sources(
        cls,
        *,
        url: str | None,
        room: str | None,
        token: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        identity: str = "tandem-bot",
        env: Mapping[str, str] | None = None,
    ) -> LiveKitRoomConfig:
        """Combine flags with ``LIVEKIT_*`` environment variables (flags win).

        Raises:
            ValueError: If the URL, room or credentials are missing or malformed.
        """
        env = env or {}
        url = (url or env.get("LIVEKIT_URL") or "").strip()
        token = token or env.get("LIVEKIT_TOKEN") or None
        api_key = api_key or env.get("LIVEKIT_API_KEY") or None
        api_secret = api_secret or env.get("LIVEKIT_API_SECRET") or None
        room = (room or "").strip()
        if not url:
            raise ValueError("LiveKit needs a server URL (--livekit-url or $LIVEKIT_URL)")
        if not url.lower().startswith(_SCHEMES):
            raise ValueError(f"LiveKit URL must start with ws:// or wss://, got {url!r}")
        if not room or len(room) > _MAX_NAME or not room.isprintable():
            raise ValueError("LiveKit needs a printable room name of at most 128 characters")
        if not identity or len(identity) > _MAX_NAME:
            raise ValueError("the bot identity must be 1..128 characters")
        if not token and not (api_key and api_secret):
            if api_key or api_secret:
                raise ValueError("minting a LiveKit token needs both an API key and a secret")
            raise ValueError(
                "LiveKit needs a token (--token/$LIVEKIT_TOKEN) or an API key and secret "
                "(--api-key/--api-secret, $LIVEKIT_API_KEY/$LIVEKIT_API_SECRET)"
            )
        return cls(
            url=url,
            room=room,
            token=token,
            api_key=api_key,
            api_secret=api_secret,
            identity=identity,
        )

    def access_token(self) -> str:
        """The given token, or a freshly minted one."""
        if self.token:
            return self.token
        assert self.api_key and self.api_secret
        return mint_token(
            self.api_key, self.api_secret, room=self.room, identity=self.identity, ttl=self.ttl
        )


def default_livekit_params() -> LiveKitParams:
    """Hear and see the other participants; speak into the room."""
    return LiveKitParams(
        audio_in_enabled=True,
        audio_out_enabled=True,
        video_in_enabled=True,
        video_in_sources={"camera": VideoInSourceParams(framerate=5)},
    )


def create_livekit_transport(
    config: LiveKitRoomConfig, params: LiveKitParams | None = None
) -> LiveKitTransport:
    """A pipecat ``LiveKitTransport`` for ``config`` (mints the token if needed)."""
    return LiveKitTransport(
        url=config.url,
        token=config.access_token(),
        room_name=config.room,
        params=params or default_livekit_params(),
    )


async def run_livekit_session(
    config: LiveKitRoomConfig,
    *,
    factory: SessionFactory,
    record_dir: Path | None = None,
    progress: ProgressFn | None = None,
    params: LiveKitParams | None = None,
    end_when_alone: bool = True,
) -> SessionInfo:
    """Warm the models, join the room and run the tandem pipeline until it ends.

    Args:
        config: Room and credentials.
        factory: Builds the session's pipeline worker.
        record_dir: Write the session's event log here.
        progress: Reports start-up steps.
        params: Transport parameters (default: :func:`default_livekit_params`).
        end_when_alone: End the session when the last other participant leaves.

    Returns:
        The session's info (id, record path).
    """
    report: ProgressFn = progress or (lambda msg: logger.info(msg))
    models = await factory.warm(report)
    report(f"models ready ({models}); joining room {config.room!r} at {config.url}")
    transport = create_livekit_transport(config, params)
    info = SessionInfo.new(transport_kind="livekit", record_dir=record_dir, prefix="livekit")
    worker = await factory.create_worker(transport, info)
    worker.add_observer(
        ClientEventObserver(send=send_through(transport.output()), clock=info.clock)
    )
    runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    participants: set[str] = set()

    @transport.event_handler("on_participant_connected")
    async def _joined(transport: Any, participant_id: str) -> None:
        participants.add(participant_id)
        report(f"participant {participant_id} joined")

    @transport.event_handler("on_participant_disconnected")
    async def _left(transport: Any, participant_id: str) -> None:
        participants.discard(participant_id)
        report(f"participant {participant_id} left")
        if end_when_alone and not participants:
            await runner.cancel("last participant left")

    @transport.event_handler("on_disconnected")
    async def _disconnected(transport: Any) -> None:
        await runner.cancel("disconnected from the room")

    await runner.add_workers(worker)
    try:
        await runner.run()
    except asyncio.CancelledError:
        await runner.cancel("cancelled")
        raise
    report(f"left room {config.room!r}")
    return info
