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
from pipecat_tandem.transports.ice import (
    candidate_target_problem,
    is_loopback_host,
    media_mids,
    parse_ice_servers,
)
from pipecat_tandem.transports.offer import (
    MAX_BODY_BYTES,
    MAX_CANDIDATES,
    MAX_JSON_DEPTH,
    SignallingError,
    candidate_problem,
    describe_error,
    json_depth,
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


def _offer(sdp: str) -> bytes:
    return json.dumps({"sdp": sdp, "type": "offer"}).encode()


@pytest.mark.parametrize(
    "body, needle",
    [
        (_offer("v=0\r\nm=\r\n"), "SDP media line 1 ('m=') is empty: expected 'm=<media>"),
        (_offer("v=0\r\nm= \r\n"), "is empty"),
        (_offer(SDP + "m=video\r\n"), "SDP media line 2 ('m=video') is malformed"),
        (_offer("v=0\r\nm=audio 9 udp/tls 111\r\n"), "is malformed"),
        (_offer("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF x\r\n"), "payload type 'x' is not"),
        (_offer("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 256\r\n"), "from 0 to 255"),
        (_offer("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 72\r\n"), "reserved"),
        (_offer("v=0\r\na=x:m=audio\r\n"), "no media section"),
        (b"[" * 30000 + b"]" * 30000, "nested too deeply"),
        (b'{"sdp": ' + b"[" * 30000 + b"]" * 30000 + b"}", "nested too deeply"),
        (
            json.dumps({"sdp": SDP, "type": "offer", "request_data": [[[[[[]]]]]] * 1}).encode()[
                :-1
            ]
            + b', "deep": '
            + b"[" * (MAX_JSON_DEPTH + 1)
            + b"]" * (MAX_JSON_DEPTH + 1)
            + b"}",
            f"({MAX_JSON_DEPTH + 2} > {MAX_JSON_DEPTH} levels)",
        ),
    ],
)
def test_malformed_sdp_and_deep_json_get_a_message_that_says_what_is_wrong(body, needle):
    e = _err(parse_offer, body)
    assert e.status == 400 and needle in e.message, e.message


def test_media_lines_aiortc_accepts_pass_and_depth_is_counted_without_recursion():
    parse_offer(_offer(SDP + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"))
    assert json_depth(1) == 0 and json_depth([]) == 1 and json_depth({"a": [{}]}) == 3
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep) == 100_001


def test_describe_error_is_never_empty():
    assert describe_error(ValueError("bad ufrag")) == "bad ufrag"
    from aiortc.sdp import SessionDescription

    try:  # aiortc's parser fails with a bare assert
        SessionDescription.parse("v=0\r\nm=\r\n")
    except AssertionError as e:
        text = describe_error(e)
    assert text.startswith("AssertionError `assert m` failed in parse (sdp.py:"), text
    assert describe_error(KeyError()) == "KeyError (no details)"


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


def _patch(candidate: str, **extra) -> bytes:
    return json.dumps({"pc_id": "a", "candidates": [{"candidate": candidate, **extra}]}).encode()


@pytest.mark.parametrize(
    "body, needle",
    [
        (_patch("1 1 udp 2130706431 127.0.0.1 99999 typ host"), "port '99999' is not a port"),
        (_patch("1 1 udp 2130706431 127.0.0.1 0 typ host"), "port '0'"),
        (_patch("1 1 udp 2130706431 999.1.1.1 5000 typ host"), "'999.1.1.1' is not an IP"),
        (_patch("1 1 udp 2130706431 evil.example 5000 typ host"), "mDNS"),
        (_patch("1 1 udp -5 127.0.0.1 5000 typ host"), "priority '-5'"),
        (_patch("1 1 udp 2130706431 127.0.0.1 5000 host x"), "expected 'typ'"),
        (_patch("1 1 udp 2130706431 127.0.0.1 5000 typ bogus"), "type 'bogus'"),
        (_patch("1 0 udp 2130706431 127.0.0.1 5000 typ host"), "component '0'"),
        (_patch("1 1 sctp 2130706431 127.0.0.1 5000 typ host"), "transport 'sctp'"),
        (_patch("1 1 udp 1 127.0.0.1 5000 typ srflx raddr 1.2.3.999 rport 1"), "related address"),
        (_patch("1 1 udp 1 127.0.0.1 5000 typ srflx raddr 0.0.0.0 rport 70000"), "related port"),
        (_patch("1 1 tcp 1 127.0.0.1 9 typ host tcptype sideways"), "tcptype"),
        (_patch(CAND, sdp_mline_index=-1), "non-negative"),
    ],
)
def test_nonsense_candidates_are_refused_with_the_field_named(body, needle):
    e = _err(parse_patch, body)
    assert e.status == 400 and e.message.startswith("candidate 0: ") and needle in e.message


def test_plausible_candidates_pass():
    for text in [
        "1 1 udp 2130706431 127.0.0.1 5000 typ host",
        "842163049 1 udp 1677729535 203.0.113.7 61665 typ srflx raddr 0.0.0.0 rport 0 "
        "generation 0 ufrag sK4z network-cost 999",
        "2 1 tcp 1518280447 ::1 9 typ host tcptype active",
        "3 1 udp 2122260223 0d2a6e4c-2b0e-4c1e-9d3e-1a2b3c4d5e6f.local 54321 typ host",
        "4 1 UDP 41885439 198.51.100.2 3478 typ relay raddr 203.0.113.7 rport 61665",
        "5 1 udp 1 127.0.0.1 5000 typ prflx",
    ]:
        assert candidate_problem(text) is None, text


def test_candidate_must_name_a_media_section_of_the_offer():
    mids = media_mids(
        "v=0\r\nm=audio 9 X 111\r\na=mid:0\r\nm=video 9 X 96\r\na=mid:1\r\n"
        "m=application 9 X webrtc-datachannel\r\n"
    )
    assert mids == ["0", "1", None]
    assert candidate_target_problem("0", 0, mids) is None
    assert candidate_target_problem("1", None, mids) is None
    assert candidate_target_problem(None, 2, mids) is None
    assert "out of range (the offer has 3" in candidate_target_problem(None, 99, mids)
    assert "sdp_mid 'zzz' is not a media section" in candidate_target_problem("zzz", None, mids)
    assert "disagree" in candidate_target_problem("0", 1, mids)
    assert "needs" in candidate_target_problem(None, None, mids)


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
        # Probe rows 8 and 10: an empty media line, JSON nested 30000 deep.
        for body, needle in [
            (_offer("v=0\r\nm=\r\n"), "media line 1 ('m=') is empty"),
            (_offer(SDP), "ICE username fragment"),
            (b"[" * 30000 + b"]" * 30000, "nested too deeply"),
        ]:
            async with http.post(url(server, "/api/offer"), data=body) as r:
                assert r.status == 400 and needle in (await r.json())["error"]
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
            # Probe row 18: candidates that name no media section of the offer.
            for where, needle in [
                ({"sdp_mid": "zzz"}, "sdp_mid 'zzz' is not a media section"),
                ({"sdp_mline_index": 99}, "sdp_mline_index 99 is out of range"),
                ({"sdp_mid": "0", "sdp_mline_index": 1}, "disagree"),
            ]:
                bad = {"pc_id": answer["pc_id"], "candidates": [{"candidate": CAND, **where}]}
                async with http.patch(url(server, "/api/offer"), json=bad) as r:
                    assert r.status == 400 and needle in (await r.json())["error"]
            bad = {
                "pc_id": answer["pc_id"],
                "candidates": [{"candidate": CAND.replace("5000", "99999"), "sdp_mid": "0"}],
            }
            async with http.patch(url(server, "/api/offer"), json=bad) as r:
                assert r.status == 400 and "'99999' is not a port" in (await r.json())["error"]
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
                assert r.status == 503 and "loading" in (await r.json())["reason"]
            # The factory's own progress line replaces the server's once the
            # warm-up task reaches it (a loaded machine may answer first).
            await asyncio.wait_for(factory.warming.wait(), 10)
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
