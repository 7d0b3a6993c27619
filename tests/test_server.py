"""The tandem WebRTC server: signalling validation, limits, health, static page."""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from pipecat.frames.frames import TextFrame

from pipecat_tandem.clock import ManualClock
from pipecat_tandem.frames import BackgroundDeliveryFrame, BackgroundJobStateFrame, JobState
from pipecat_tandem.transports.client_events import MAX_TEXT_CHARS, ClientEventEncoder
from pipecat_tandem.transports.ice import is_loopback_host, parse_ice_servers
from pipecat_tandem.transports.offer import (
    MAX_BODY_BYTES,
    MAX_CANDIDATES,
    SignallingError,
    parse_offer,
    parse_patch,
)
from pipecat_tandem.transports.session import SessionInfo
from pipecat_tandem.transports.session_manager import SessionLimitError, SessionManager
from pipecat_tandem.transports.webrtc_server import TandemServer, static_dir
from tests.support.fake_services import FakeSessionFactory

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


#
# Pure validation
#


def _err(fn, body) -> SignallingError:
    with pytest.raises(SignallingError) as info:
        fn(body)
    return info.value


@pytest.mark.parametrize(
    "body, needle",
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "offer"}', "sdp"),
        (json.dumps({"sdp": "hello", "type": "offer"}).encode(), "v=0"),
        (json.dumps({"sdp": "v=0\r\ns=-\r\n", "type": "offer"}).encode(), "media"),
        (json.dumps({"sdp": SDP, "type": "answer"}).encode(), "'offer'"),
        (json.dumps({"sdp": SDP, "type": "offer", "restart_pc": "yes"}).encode(), "boolean"),
        (json.dumps({"sdp": SDP, "type": "offer", "pc_id": 5}).encode(), "pc_id"),
        (json.dumps({"sdp": SDP, "type": "offer", "pc_id": "x" * 500}).encode(), "pc_id"),
        (b'{"sdp": "' + b"v=0 m=" + b"a" * MAX_BODY_BYTES + b'", "type": "offer"}', "too large"),
    ],
)
def test_bad_offers_are_refused_with_a_message(body, needle):
    e = _err(parse_offer, body)
    assert e.status == 400
    assert needle in e.message


def test_good_offer_keeps_everything():
    body = {
        "sdp": SDP,
        "type": "offer",
        "pc_id": "pc-1",
        "restart_pc": True,
        "requestData": {"a": 1},
    }
    offer = parse_offer(json.dumps(body).encode())
    assert (offer.sdp, offer.pc_id, offer.restart_pc, offer.request_data) == (
        SDP,
        "pc-1",
        True,
        {"a": 1},
    )
    assert parse_offer(json.dumps({"sdp": SDP, "type": "offer"}).encode()).pc_id is None


CAND = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"


@pytest.mark.parametrize(
    "body, needle",
    [
        (b"", "empty"),
        (b'{"candidates": []}', "pc_id"),
        (b'{"pc_id": "a", "candidates": {}}', "list"),
        (b'{"pc_id": "a", "candidates": [1]}', "object"),
        (b'{"pc_id": "a", "candidates": [{"candidate": "garbage"}]}', "malformed"),
        (b'{"pc_id": "a", "candidates": [{"candidate": 5}]}', "string"),
        (
            json.dumps(
                {"pc_id": "a", "candidates": [{"candidate": CAND, "sdp_mline_index": "0"}]}
            ).encode(),
            "integer",
        ),
        (
            json.dumps(
                {"pc_id": "a", "candidates": [{"candidate": CAND}] * (MAX_CANDIDATES + 1)}
            ).encode(),
            "too many",
        ),
    ],
)
def test_bad_patches_are_refused(body, needle):
    e = _err(parse_patch, body)
    assert e.status == 400 and needle in e.message


def test_patch_parses_candidates_and_end_marker():
    body = {
        "pc_id": "a",
        "candidates": [
            {"candidate": CAND, "sdp_mid": "0", "sdp_mline_index": 0},
            {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0},
        ],
    }
    patch = parse_patch(json.dumps(body).encode())
    assert patch.candidates[0].candidate.startswith("1 1 udp")
    assert patch.candidates[1].candidate == "" and patch.candidates[1].sdp_mid == "0"


def test_ice_servers_and_loopback():
    assert parse_ice_servers([]) == []
    servers = parse_ice_servers(["stun:stun.example.org:3478", "turn:t.example|u|p"])
    assert servers[1].username == "u" and servers[1].credential == "p"
    for bad in ["", "http://x", "turn:x|only-user", "stun:x|a|b|c"]:
        with pytest.raises(ValueError):
            parse_ice_servers([bad])
    assert is_loopback_host("127.0.0.1") and is_loopback_host("localhost")
    assert is_loopback_host("::1") and is_loopback_host("[::1]")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("192.168.1.2")


def test_encoder_sends_each_frame_once_and_clips_text():
    clock = ManualClock()
    enc = ClientEventEncoder(clock=clock)
    frame = BackgroundJobStateFrame(job_id="j1", state=JobState.RUNNING, task="t" * 5000)
    msg = enc.encode(frame)
    assert msg is not None and msg["type"] == "job_state" and msg["state"] == "running"
    assert len(msg["task"]) == MAX_TEXT_CHARS
    assert enc.encode(frame) is None  # the same frame seen at the next hop
    d = BackgroundDeliveryFrame(job_ids=["j1"], kind="delivered", text="x")
    assert enc.encode(d)["job_ids"] == ["j1"]
    assert enc.encode(TextFrame(text="not shown")) is None


def test_session_manager_limits():
    with pytest.raises(ValueError):
        SessionManager(max_sessions=0)
    m = SessionManager(max_sessions=2)
    m.reserve()
    m.reserve()
    with pytest.raises(SessionLimitError, match="limit"):
        m.reserve()
    m.release_reservation()
    m.reserve()
    assert m.active == 2


def test_session_info_record_path(tmp_path):
    info = SessionInfo.new(transport_kind="webrtc", record_dir=tmp_path / "rec")
    assert info.record_path is not None and info.record_path.parent.is_dir()
    assert info.record_path.name == f"{info.session_id}.jsonl"
    other = SessionInfo.new(transport_kind="webrtc")
    assert other.session_id != info.session_id and other.record_path is None


def test_static_page_has_no_external_references():
    files = list(static_dir().iterdir())
    assert {f.name for f in files} >= {"index.html", "app.js", "style.css"}
    for f in files:
        text = f.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), f.name
        assert "@import" not in text and "url(http" not in text


#
# HTTP against the real server
#


@pytest.fixture
async def server(tmp_path):
    factory = FakeSessionFactory()
    srv = TandemServer(factory=factory, port=0, max_sessions=1, record_dir=tmp_path)
    srv.factory = factory  # for the tests
    await srv.start()
    assert await srv.wait_warm()
    yield srv
    await srv.stop()


def url(srv, path):
    return f"http://127.0.0.1:{srv.port}{path}"


async def offer_sdp() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio")
    pc.addTransceiver("video")
    pc.createDataChannel("tandem")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_healthz_index_and_headers(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(url(server, "/healthz")) as r:
            assert r.status == 200
            body = await r.json()
            assert body["status"] == "ready" and body["max_sessions"] == 1
        async with http.get(url(server, "/")) as r:
            assert r.status == 200
            assert "default-src 'self'" in r.headers["Content-Security-Policy"]
            assert "/static/app.js" in await r.text()
        async with http.get(url(server, "/static/app.js")) as r:
            assert r.status == 200
        async with http.get(url(server, "/static/../cli.py")) as r:
            assert r.status in (403, 404)


async def test_bad_requests_get_400_and_404(server):
    async with aiohttp.ClientSession() as http:
        for body in [b"", b"{", b"[]", json.dumps({"sdp": SDP, "type": "answer"}).encode()]:
            async with http.post(url(server, "/api/offer"), data=body) as r:
                assert r.status == 400
                assert (await r.json())["error"]
        big = b"x" * (MAX_BODY_BYTES * 3)
        async with http.post(url(server, "/api/offer"), data=big) as r:
            assert r.status == 400 and "too large" in (await r.json())["error"]
        # Looks like SDP but aiortc cannot use it: refused, no session leaks.
        bad_sdp = {"sdp": "v=0\r\nm=audio nonsense\r\n", "type": "offer"}
        async with http.post(url(server, "/api/offer"), json=bad_sdp) as r:
            assert r.status == 400 and "SDP" in (await r.json())["error"]
        patch = {"pc_id": "nope", "candidates": []}
        async with http.patch(url(server, "/api/offer"), json=patch) as r:
            assert r.status == 404 and "unknown" in (await r.json())["error"]
        async with http.patch(url(server, "/api/offer"), data=b"{]") as r:
            assert r.status == 400
    assert server.sessions.active == 0


async def test_session_limit_and_patch_for_known_connection(server):
    pc1, sdp1 = await offer_sdp()
    pc2, sdp2 = await offer_sdp()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                url(server, "/api/offer"), json={"sdp": sdp1, "type": "offer"}
            ) as r:
                assert r.status == 200
                answer = await r.json()
                assert answer["type"] == "answer" and answer["pc_id"]
                # Loopback server: host candidates are 127.0.0.1 only.
                cands = [x for x in answer["sdp"].splitlines() if x.startswith("a=candidate")]
                assert cands and all(" 127.0.0.1 " in c for c in cands)
            async with http.post(
                url(server, "/api/offer"), json={"sdp": sdp2, "type": "offer"}
            ) as r:
                assert r.status == 503 and "limit" in (await r.json())["error"]
            patch = {
                "pc_id": answer["pc_id"],
                "candidates": [{"candidate": CAND, "sdp_mid": "0", "sdp_mline_index": 0}],
            }
            async with http.patch(url(server, "/api/offer"), json=patch) as r:
                assert r.status == 200
            async with http.get(url(server, "/healthz")) as r:
                assert (await r.json())["sessions"] == 1
    finally:
        await pc1.close()
        await pc2.close()
    await server.stop()
    assert server.sessions.active == 0
    assert server.factory.finished  # the pipeline was torn down


async def test_not_ready_until_warm_then_failed_warmup_is_reported():
    factory = FakeSessionFactory()
    factory.warm_gate = asyncio.Event()
    srv = TandemServer(factory=factory, port=0)
    await srv.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url(srv, "/healthz")) as r:
                assert r.status == 503
                assert "loading fake models" in (await r.json())["reason"]
            async with http.post(url(srv, "/api/offer"), json={"sdp": SDP, "type": "offer"}) as r:
                assert r.status == 503 and "not ready" in (await r.json())["error"]
            factory.warm_gate.set()
            assert await srv.wait_warm()
            async with http.get(url(srv, "/healthz")) as r:
                assert r.status == 200 and (await r.json())["models"]["interaction"] == "fake"
    finally:
        await srv.stop()

    broken = FakeSessionFactory(warm_error=RuntimeError("weights missing"))
    srv = TandemServer(factory=broken, port=0)
    await srv.start()
    try:
        assert not await srv.wait_warm()
        async with aiohttp.ClientSession() as http:
            async with http.get(url(srv, "/healthz")) as r:
                assert r.status == 503 and "weights missing" in (await r.json())["reason"]
    finally:
        await srv.stop()


async def test_factory_failure_is_500_and_frees_the_slot(tmp_path):
    class Broken(FakeSessionFactory):
        async def create_worker(self, transport, session):
            raise RuntimeError("boom")

    srv = TandemServer(factory=Broken(), port=0, max_sessions=1)
    await srv.start()
    await srv.wait_warm()
    pc, sdp = await offer_sdp()
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(2):  # the slot is free again after the failure
                async with http.post(
                    url(srv, "/api/offer"), json={"sdp": sdp, "type": "offer"}
                ) as r:
                    assert r.status == 500 and "boom" in (await r.json())["error"]
    finally:
        await pc.close()
        await srv.stop()
    assert srv.sessions.active == 0


def test_server_rejects_bad_port():
    with pytest.raises(ValueError):
        TandemServer(factory=FakeSessionFactory(), port=70000)
