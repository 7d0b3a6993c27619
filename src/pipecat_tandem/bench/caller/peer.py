"""An aiortc client for the tandem server that behaves like the client page.

Mic is transceiver 0, camera (optional) transceiver 1, plus the ``tandem`` data
channel. Every decoded frame of the bot's audio is kept with its arrival time in
:attr:`CallerPeer.recording`, and RTP arrivals in :attr:`PeerStats.rtp` for pacing.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.sdp import SessionDescription

from pipecat_tandem.bench.caller.recording import LOUD_RMS, BotRecording


@dataclass
class PeerStats:
    """What the peer observed."""

    offer_posted: float = 0.0
    answered: float = 0.0
    connected: float = 0.0
    rtp: list[tuple[float, int]] = field(default_factory=list)  # (arrival, rtp timestamp)
    audio_frames: int = 0
    loud_frames: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    renegotiations: int = 0


#: Video codecs a caller can insist on (what browsers send and aiortc has).
VIDEO_CODECS = ("VP8", "H264")


class CallerPeer:
    """One call to a tandem server over real WebRTC on loopback (no STUN).

    Args:
        base_url: The server.
        audio: The microphone track.
        video: The camera track (None: an audio-only call).
        keepalive: Keep the data channel's pings going.
        video_codec: Offer only this camera codec (``VP8`` or ``H264``, with its
            retransmissions), as a browser that prefers it would; None offers
            aiortc's list (VP8 first, which the server picks).
    """

    __test__ = False  # not a pytest class

    def __init__(
        self,
        base_url: str,
        audio: MediaStreamTrack,
        video: MediaStreamTrack | None = None,
        *,
        keepalive: bool = True,
        video_codec: str | None = None,
    ):
        if video_codec is not None and video_codec not in VIDEO_CODECS:
            raise ValueError(
                f"video_codec must be one of {VIDEO_CODECS} or None, got {video_codec!r}"
            )
        self.base_url = base_url.rstrip("/")
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.stats = PeerStats()
        self.recording = BotRecording()
        self.pc_id: str | None = None
        self._keepalive = keepalive
        self._tasks: list[asyncio.Future[Any]] = []
        self._connected = asyncio.Event()
        self.pc.addTrack(audio)
        if video is not None:
            self.pc.addTrack(video)
            if video_codec is not None:
                self._prefer(video, video_codec)
        self.channel = self.pc.createDataChannel("tandem")
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _prefer(self, video: MediaStreamTrack, codec: str) -> None:
        wanted = f"video/{codec}".lower()
        # RTX is kept: a browser offers it with each codec, and the server may use it.
        codecs = [
            c
            for c in RTCRtpSender.getCapabilities("video").codecs
            if c.mimeType.lower() in (wanted, "video/rtx")
        ]
        for t in self.pc.getTransceivers():
            if t.sender.track is video:
                t.setCodecPreferences(codecs)

    @property
    def video_codec(self) -> str | None:
        """The camera codec the server answered with (``VP8``, ``H264``), once answered."""
        desc = self.pc.remoteDescription
        if desc is None:
            return None
        for media in SessionDescription.parse(desc.sdp).media:
            if media.kind == "video":  # the first codec answered is the one in use
                names = [c.name.upper() for c in media.rtp.codecs if c.name.lower() != "rtx"]
                return names[0] if names else None
        return None

    async def _on_state(self) -> None:
        if self.pc.connectionState == "connected" and not self._connected.is_set():
            self.stats.connected = time.monotonic()
            self._connected.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            return
        for t in self.pc.getTransceivers():
            if t.receiver.track is track:
                receiver = t.receiver
                original = receiver._handle_rtp_packet

                async def hook(packet: Any, arrival_time_ms: int, _orig: Any = original) -> None:
                    self.stats.rtp.append((time.monotonic(), packet.timestamp))
                    await _orig(packet, arrival_time_ms=arrival_time_ms)

                # aiortc has no public hook for RTP arrivals; pacing needs them.
                receiver._handle_rtp_packet = hook  # type: ignore[method-assign]
        self._tasks.append(asyncio.ensure_future(self._drain(track)))

    async def _drain(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):
                    continue
                arrived = time.monotonic()
                channels = len(frame.layout.channels)
                data = frame.to_ndarray().reshape(-1, channels)[:, 0]
                self.stats.audio_frames += 1
                self.recording.add(arrived, data.astype(np.int16))
                if np.sqrt(np.mean(data.astype(np.float32) ** 2)) > LOUD_RMS:
                    self.stats.loud_frames += 1
        except Exception:
            return

    def _on_message(self, message: Any) -> None:
        try:
            data = json.loads(message)
        except (TypeError, ValueError):
            return
        if not isinstance(data, dict):
            return
        data.setdefault("_arrived", time.monotonic())
        self.stats.messages.append(data)
        inner = data.get("message")
        if data.get("type") == "signalling" and isinstance(inner, dict):
            if inner.get("type") == "renegotiate":
                self._tasks.append(asyncio.ensure_future(self._renegotiate()))

    async def _post(self, pc_id: str | None) -> None:
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        body = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        if pc_id:
            body["pc_id"] = pc_id
        async with aiohttp.ClientSession() as http:
            self.stats.offer_posted = self.stats.offer_posted or time.monotonic()
            async with http.post(f"{self.base_url}/api/offer", json=body) as r:
                if r.status != 200:
                    raise RuntimeError(f"offer refused: {r.status} {await r.text()}")
                answer = await r.json()
        self.stats.answered = self.stats.answered or time.monotonic()
        self.pc_id = answer["pc_id"]
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))

    async def _renegotiate(self) -> None:
        self.stats.renegotiations += 1
        try:
            await self._post(self.pc_id)
        except Exception:
            return

    async def connect(self, connect_timeout_s: float = 10.0) -> float:
        """Offer, answer, wait for ``connected``; returns offer→connected seconds."""
        started = time.monotonic()
        await self._post(None)
        await asyncio.wait_for(self._connected.wait(), connect_timeout_s)
        if self._keepalive:
            self._tasks.append(asyncio.ensure_future(self._ping()))
        return self.stats.connected - started

    async def _ping(self) -> None:
        while True:
            if self.channel.readyState == "open":
                self.channel.send(f"ping: {time.time()}")
            await asyncio.sleep(1.0)

    def stop_keepalive(self) -> None:
        """Stop the data-channel pings (and any other background work of the peer)."""
        for t in self._tasks:
            t.cancel()

    async def close(self) -> None:
        """Hang up."""
        for t in self._tasks:
            t.cancel()
        await self.pc.close()

    def tandem_messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The server's ``tandem`` data-channel messages, optionally of one ``type``."""
        return [
            m
            for m in self.stats.messages
            if m.get("label") == "tandem" and (kind is None or m.get("type") == kind)
        ]
