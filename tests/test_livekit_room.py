"""LiveKit: token minting, config validation, and the bot in a room.

No LiveKit server can be installed here, so the room test replaces only
``livekit.rtc.Room`` with a fake that raises the real room's events; all media is
real ``livekit.rtc`` (the native FFI audio path): a user's ``AudioSource`` track
goes into pipecat's ``LiveKitTransport`` and the bot's published track is read
back with ``rtc.AudioStream``. A real-server test runs when ``LIVEKIT_URL`` is set.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from types import SimpleNamespace
from typing import Any

import jwt
import numpy as np
import pytest
from livekit import rtc

from pipecat_tandem.transports import livekit_room
from pipecat_tandem.transports.livekit_room import (
    LiveKitRoomConfig,
    mint_token,
    run_livekit_session,
)
from tests.support.fake_services import FakeSessionFactory
from tests.support.media import speech_pcm


def test_minted_token_is_least_privilege_and_short_lived():
    token = mint_token("key", "secret-secret-secret-secret-secret", room="demo", identity="bot")
    claims = jwt.decode(token, "secret-secret-secret-secret-secret", algorithms=["HS256"])
    video = claims["video"]
    assert video["room"] == "demo" and video["roomJoin"] is True
    assert video["canPublish"] and video["canSubscribe"] and video["canPublishData"]
    assert not video.get("roomAdmin") and not video.get("roomCreate") and not video.get("roomList")
    assert claims["sub"] == "bot"
    assert 0 < claims["exp"] - time.time() <= 10 * 60 + 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key": "", "secret": "s", "room": "r"},
        {"key": "k", "secret": "s", "room": ""},
        {"key": "k", "secret": "s", "room": "r", "ttl": datetime.timedelta(0)},
    ],
)
def test_mint_token_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        mint_token(
            kwargs["key"],
            kwargs["secret"],
            room=kwargs["room"],
            ttl=kwargs.get("ttl", datetime.timedelta(minutes=1)),
        )


def test_config_from_flags_and_environment():
    env = {
        "LIVEKIT_URL": "ws://127.0.0.1:7880",
        "LIVEKIT_API_KEY": "k",
        "LIVEKIT_API_SECRET": "s" * 32,
    }
    cfg = LiveKitRoomConfig.from_sources(url=None, room="demo", env=env)
    assert cfg.url == "ws://127.0.0.1:7880" and cfg.token is None
    assert jwt.decode(cfg.access_token(), "s" * 32, algorithms=["HS256"])["video"]["room"] == "demo"
    given = LiveKitRoomConfig.from_sources(url="wss://x", room="r", token="tok", env=env)
    assert given.access_token() == "tok"
    for bad in [
        {"url": None, "room": "r", "token": "t"},
        {"url": "http//x", "room": "r", "token": "t"},
        {"url": "wss://x", "room": "", "token": "t"},
        {"url": "wss://x", "room": "r" * 200, "token": "t"},
        {"url": "wss://x", "room": "r"},
        {"url": "wss://x", "room": "r", "api_key": "k"},
    ]:
        with pytest.raises(ValueError):
            LiveKitRoomConfig.from_sources(env={}, **bad)


#
# The bot in a (fake) room with real livekit.rtc media
#


class FakeLocalParticipant:
    def __init__(self, identity: str):
        self.identity = identity
        self.published: list[Any] = []
        self.data: list[bytes] = []

    async def publish_track(self, track: Any, options: Any = None) -> Any:
        self.published.append(track)
        return SimpleNamespace(sid=f"TR_{len(self.published)}", track=track)

    async def publish_data(self, payload: Any, **kwargs: Any) -> None:
        self.data.append(payload if isinstance(payload, bytes) else str(payload).encode())

    async def set_metadata(self, metadata: str) -> None:
        pass

    async def publish_dtmf(self, **kwargs: Any) -> None:
        pass


class FakeRoom(rtc.EventEmitter):
    instances: list[FakeRoom] = []

    def __init__(self, loop: Any = None):
        super().__init__()
        self.local_participant = FakeLocalParticipant("tandem-bot")
        self.remote_participants: dict[str, Any] = {}
        self.connected_with: tuple[str, str] | None = None
        FakeRoom.instances.append(self)

    async def connect(self, url: str, token: str, options: Any = None) -> None:
        self.connected_with = (url, token)

    async def disconnect(self) -> None:
        self.emit("disconnected", "CLIENT_INITIATED")

    def isconnected(self) -> bool:
        return self.connected_with is not None


@pytest.mark.e2e
async def test_bot_joins_hears_and_answers_in_a_room(monkeypatch, tmp_path):
    FakeRoom.instances.clear()
    monkeypatch.setattr(rtc, "Room", FakeRoom)
    config = LiveKitRoomConfig.from_sources(
        url="ws://127.0.0.1:7880", room="demo", api_key="devkey", api_secret="s" * 32
    )
    factory = FakeSessionFactory(reply="Hello room.")
    session = asyncio.ensure_future(
        run_livekit_session(config, factory=factory, record_dir=tmp_path)
    )
    for _ in range(100):
        if FakeRoom.instances and FakeRoom.instances[0].local_participant.published:
            break
        await asyncio.sleep(0.05)
    room = FakeRoom.instances[0]
    url, token = room.connected_with
    assert url == "ws://127.0.0.1:7880" and jwt.decode(token, "s" * 32, algorithms=["HS256"])

    # A user joins and publishes a real microphone track.
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("user-mic", source)
    user = SimpleNamespace(
        identity="alice", sid="PA_alice", name="alice", metadata="", attributes={},
        track_publications={},
    )  # fmt: skip
    publication = SimpleNamespace(
        sid="TR_alice", kind=rtc.TrackKind.KIND_AUDIO, source=rtc.TrackSource.SOURCE_MICROPHONE,
        track=track,
    )  # fmt: skip
    room.remote_participants["alice"] = user
    room.emit("participant_connected", user)
    room.emit("track_subscribed", track, publication, user)

    bot_track = room.local_participant.published[0]
    loud = 0

    async def listen() -> None:
        nonlocal loud
        async for ev in rtc.AudioStream.from_track(
            track=bot_track, sample_rate=48000, num_channels=1
        ):
            data = np.frombuffer(bytes(ev.frame.data), dtype=np.int16).astype(np.float32)
            if data.size and np.sqrt(np.mean(data**2)) > 500:
                loud += 1

    listener = asyncio.ensure_future(listen())
    pcm = np.frombuffer(speech_pcm("Hello bot, are you there?", sample_rate=48000), dtype=np.int16)
    for i in range(0, len(pcm) - 480, 480):  # 10 ms frames in real time
        frame = rtc.AudioFrame(pcm[i : i + 480].tobytes(), 48000, 1, 480)
        await source.capture_frame(frame)
    for _ in range(100):
        if loud > 10:
            break
        await asyncio.sleep(0.1)
    assert loud > 10, "the bot's answer never came back through the room"
    # The tandem live view went out as room data.
    assert any(
        b'"label": "tandem"' in d or b'"label":"tandem"' in d for d in room.local_participant.data
    )

    # The last participant leaves: the session ends and everything is released.
    del room.remote_participants["alice"]
    room.emit("participant_disconnected", user)
    info = await asyncio.wait_for(session, 15)
    listener.cancel()
    assert factory.finished == [info.session_id]
    kinds = [line for line in info.record_path.read_text().splitlines()]
    assert any('"user_started"' in k for k in kinds) and any('"bot_started"' in k for k in kinds)


@pytest.mark.livekit_server
@pytest.mark.skipif(not os.environ.get("LIVEKIT_URL"), reason="LIVEKIT_URL not set")
async def test_joins_a_real_livekit_server(tmp_path):
    config = LiveKitRoomConfig.from_sources(
        url=None, room=f"tandem-test-{int(time.time())}", env=os.environ
    )
    factory = FakeSessionFactory()
    session = asyncio.ensure_future(
        run_livekit_session(config, factory=factory, end_when_alone=True)
    )
    await asyncio.sleep(5)
    assert not session.done() or session.exception() is None
    session.cancel()
    await asyncio.gather(session, return_exceptions=True)


def test_module_exports():
    assert livekit_room.DEFAULT_TOKEN_TTL <= datetime.timedelta(minutes=15)
