"""Renegotiation of a live call: a refused offer leaves the call as it was.

A real aiortc peer on loopback against the real server (fake STT/LLM/TTS).
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from pipecat_tandem.transports.webrtc_server import TandemServer
from tests.support.fake_services import FakeSessionFactory
from tests.support.media import TestPeer, speech_pcm

pytestmark = pytest.mark.e2e

NO_ICE_SDP = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
)


async def wait_for(predicate, timeout_s: float, step_s: float = 0.1) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step_s)
    return predicate()


async def offer_without_fingerprint() -> str:
    """A real aiortc offer with its DTLS fingerprint removed (aiortc refuses it late)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio")
        pc.addTransceiver("video")
        pc.createDataChannel("tandem")
        await pc.setLocalDescription(await pc.createOffer())
        lines = pc.localDescription.sdp.splitlines()
    finally:
        await pc.close()
    return "\r\n".join(x for x in lines if not x.startswith("a=fingerprint")) + "\r\n"


async def test_refused_restart_offer_leaves_the_call_connected_and_talking(tmp_path):
    factory = FakeSessionFactory(reply="Hello, I hear you.")
    srv = TandemServer(factory=factory, port=0, record_dir=tmp_path)
    await srv.start()
    assert await srv.wait_warm()
    base = f"http://127.0.0.1:{srv.port}"
    peer = TestPeer(base, pcm=speech_pcm("Hello bot, can you hear me?"))
    try:
        await peer.connect()
        (session,) = srv.sessions.sessions()
        live_pc = session.connection.pc
        bad_offers = {
            "no ICE credentials": NO_ICE_SDP,
            "no DTLS fingerprint": await offer_without_fingerprint(),
            "empty media line": "v=0\r\nm=\r\n",
        }
        async with aiohttp.ClientSession() as http:
            for case, sdp in bad_offers.items():
                body = {"sdp": sdp, "type": "offer", "pc_id": peer.pc_id, "restart_pc": True}
                async with http.post(f"{base}/api/offer", json=body) as r:
                    error = (await r.json())["error"]
                    assert r.status == 400, (case, error)
                # Every refusal says what is wrong (never a bare prefix).
                assert error.split(":", 1)[-1].strip(), (case, error)
        # The call is untouched: same peer connection, still connected, session running.
        assert session.connection.pc is live_pc
        assert live_pc.connectionState == "connected"
        assert peer.pc.connectionState == "connected"
        assert not session.ended.is_set() and srv.sessions.active == 1
        # Media still flows both ways: the peer's speech reaches the bot, which answers.
        answered = await wait_for(
            lambda: peer.stats.loud_frames > 10 and peer.tandem_messages("bot_text"), 15
        )
        assert answered, (peer.stats.loud_frames, peer.tandem_messages())
        assert peer.pc.connectionState == "connected" and not session.ended.is_set()
    finally:
        await peer.close()
        await srv.stop()


async def test_refused_plain_renegotiation_names_the_problem(tmp_path):
    srv = TandemServer(factory=FakeSessionFactory(), port=0, record_dir=tmp_path)
    await srv.start()
    assert await srv.wait_warm()
    base = f"http://127.0.0.1:{srv.port}"
    peer = TestPeer(base, pcm=b"", video=False)
    try:
        await peer.connect()
        (session,) = srv.sessions.sessions()
        async with aiohttp.ClientSession() as http:
            for sdp, needle in [
                ("v=0\r\nm=\r\n", "media line 1 ('m=') is empty"),
                ("v=0\r\nm=audio nonsense\r\n", "is malformed"),
                ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 300\r\n", "payload type '300'"),
                (NO_ICE_SDP, "ICE username fragment"),
            ]:
                body = {"sdp": sdp, "type": "offer", "pc_id": peer.pc_id}
                async with http.post(f"{base}/api/offer", json=body) as r:
                    assert r.status == 400
                    assert needle in (await r.json())["error"]
        assert not session.ended.is_set()
        assert peer.pc.connectionState == "connected"
    finally:
        await peer.close()
        await srv.stop()
