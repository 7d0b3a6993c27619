"""Admission that cannot be held hostage (issue 13): per-client offer limits, honest /healthz."""

from __future__ import annotations

import asyncio
import math

import aiohttp
import pytest

from pipecat_tandem.clock import ManualClock
from pipecat_tandem.transports.admission import (
    Admission,
    OfferAdmission,
    OfferLimits,
    client_key,
)
from pipecat_tandem.transports.webrtc_server import TandemServer
from tests.support.fake_services import FakeSessionFactory
from tests.test_server import offer_sdp, url

#
# The pure limiter, on a hand-moved clock
#


def test_offers_past_the_limit_are_refused_until_the_oldest_leaves_the_window():
    clock = ManualClock()
    admission = OfferAdmission(OfferLimits(max_offers=3, window_s=10.0), clock=clock)
    for _ in range(3):
        assert admission.admit("10.0.0.7").allowed
        clock.advance(1.0)
    refused = admission.admit("10.0.0.7")
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(7.0)  # first offer at 0 leaves at 10
    assert refused.retry_after_header == "7"
    assert "too many offers" in refused.reason and "at most 3" in refused.reason
    # Another client is not affected.
    assert admission.admit("10.0.0.8").allowed
    # Refused offers are not counted: the promised moment is honoured.
    clock.advance(6.9)
    assert not admission.admit("10.0.0.7").allowed
    clock.advance(0.2)
    assert admission.admit("10.0.0.7").allowed
    assert not admission.admit("10.0.0.7").allowed


def test_clients_whose_offers_never_connect_are_held_off():
    clock = ManualClock()
    admission = OfferAdmission(
        OfferLimits(max_offers=100, window_s=60.0, max_unconnected=2), clock=clock
    )
    for _ in range(2):
        assert admission.admit("a").allowed
        clock.advance(4.0)
        admission.never_connected("a")
    refused = admission.admit("a")
    assert not refused.allowed and "never connected" in refused.reason
    assert refused.retry_after_s == pytest.approx(60.0 - 4.0)  # the first strike, at 4 s
    assert admission.admit("b").allowed
    clock.advance(56.0)
    assert admission.admit("a").allowed


def test_memory_is_bounded_and_the_current_client_is_never_forgotten():
    clock = ManualClock()
    admission = OfferAdmission(OfferLimits(max_offers=1, max_clients=4), clock=clock)
    for i in range(100):
        assert admission.admit(f"10.0.0.{i}").allowed
        assert admission.tracked_clients <= 4
    assert not admission.admit("10.0.0.99").allowed  # the newest is still counted
    clock.advance(61.0)
    for i in range(10):
        assert admission.admit(f"10.0.1.{i}").allowed
    assert admission.tracked_clients <= 4


def test_client_keys():
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert client_key("2001:db8:0:1::1") != client_key("2001:db8::1")
    assert client_key("fe80::1%eth0") == "fe80::/64"
    assert client_key(None) == client_key("") == "unknown"
    assert client_key("x" * 500) == "x" * 64


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_offers": 0},
        {"max_offers": -1},
        {"max_offers": 1.5},
        {"max_offers": True},
        {"max_unconnected": 0},
        {"max_clients": 0},
        {"window_s": 0},
        {"window_s": -1.0},
        {"window_s": math.nan},
        {"window_s": math.inf},
        {"window_s": "60"},
    ],
)
def test_limits_that_admit_nothing_or_never_forget_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        OfferLimits(**kwargs)


def test_retry_after_is_whole_seconds_and_at_least_one():
    assert Admission(False, 0.01).retry_after_header == "1"
    assert Admission(False, 4.2).retry_after_header == "5"


#
# The real server
#


async def _post(http: aiohttp.ClientSession, srv: TandemServer, body: dict) -> tuple[int, dict]:
    async with http.post(url(srv, "/api/offer"), json=body) as r:
        return r.status, {**(await r.json()), "retry_after": r.headers.get("Retry-After")}


async def test_a_client_posting_too_fast_gets_429_with_retry_after(tmp_path):
    clock = ManualClock()
    srv = TandemServer(
        factory=FakeSessionFactory(),
        port=0,
        record_dir=tmp_path,
        offer_limits=OfferLimits(max_offers=3, window_s=30.0),
        clock=clock,
    )
    await srv.start()
    assert await srv.wait_warm()
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(3):  # garbage counts too: each still costs the server
                status, _ = await _post(http, srv, {"sdp": "nope", "type": "offer"})
                assert status == 400
            clock.advance(10.0)
            status, body = await _post(http, srv, {"sdp": "nope", "type": "offer"})
            assert status == 429, body
            assert "too many offers" in body["error"] and body["retry_after"] == "20"
            clock.advance(20.0)
            status, _ = await _post(http, srv, {"sdp": "nope", "type": "offer"})
            assert status == 400
    finally:
        await srv.stop()


async def test_offers_that_never_connect_cannot_lock_the_service(tmp_path):
    """One client re-posting offers it never connects is held off; the server stays free."""
    srv = TandemServer(
        factory=FakeSessionFactory(vad=False),
        port=0,
        record_dir=tmp_path,
        max_sessions=1,
        connect_timeout_s=1.0,
        offer_limits=OfferLimits(max_offers=100, window_s=60.0, max_unconnected=2),
    )
    await srv.start()
    assert await srv.wait_warm()
    pcs = []
    try:
        async with aiohttp.ClientSession() as http:
            for n in range(1, 3):
                pc, sdp = await offer_sdp()  # the answer is never applied
                pcs.append(pc)
                status, _ = await _post(http, srv, {"sdp": sdp, "type": "offer"})
                assert status == 200
                # The connect timeout ends it and counts it against the client.
                for _ in range(100):
                    if len(srv.sessions.ended_sessions) == n:
                        break
                    await asyncio.sleep(0.05)
                assert srv.sessions.ended_sessions[-1].end_reason == "client never connected"
                await asyncio.sleep(0.05)
            pc, sdp = await offer_sdp()
            pcs.append(pc)
            status, body = await _post(http, srv, {"sdp": sdp, "type": "offer"})
            assert status == 429 and "never connected" in body["error"], body
            assert int(body["retry_after"]) > 50
            assert srv.sessions.active == 0  # nothing is held for it
            async with http.get(url(srv, "/healthz")) as r:
                assert r.status == 200 and (await r.json())["can_take_call"] is True
    finally:
        for pc in pcs:
            await pc.close()
        await srv.stop()


class _OneCallFactory(FakeSessionFactory):
    """A factory that, like the embedded models, serves one call at a time."""

    busy = False


async def test_healthz_says_whether_a_call_can_be_taken_now(tmp_path):
    factory = _OneCallFactory()
    srv = TandemServer(factory=factory, port=0, record_dir=tmp_path, max_sessions=1)
    await srv.start()
    assert await srv.wait_warm()
    pc, sdp = await offer_sdp()
    try:
        async with aiohttp.ClientSession() as http:

            async def health() -> tuple[int, dict]:
                async with http.get(url(srv, "/healthz")) as r:
                    return r.status, await r.json()

            status, body = await health()
            assert status == 200
            assert body["ready"] is True and body["can_take_call"] is True
            assert (body["calls"], body["max_calls"]) == (0, 1) and "reason" not in body
            status, _ = await _post(http, srv, {"sdp": sdp, "type": "offer"})
            assert status == 200
            status, body = await health()
            # Alive and warm (200), but a second call would be refused now.
            assert status == 200 and body["ready"] is True
            assert body["can_take_call"] is False and body["calls"] == 1
            assert "session limit (1)" in body["reason"]
        # The models' own one-call limit is reported too.
        srv.sessions.max_sessions = 2
        factory.busy = True
        assert srv.refusal_reason() == "the models are serving all the calls they can"
        factory.busy = False
        assert srv.refusal_reason() is None
    finally:
        await pc.close()
        await srv.stop()


async def test_healthz_before_warm_is_503_and_not_ready():
    factory = FakeSessionFactory()
    factory.warm_gate = asyncio.Event()
    srv = TandemServer(factory=factory, port=0)
    await srv.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url(srv, "/healthz")) as r:
                body = await r.json()
                assert r.status == 503 and body["ready"] is False
                assert body["can_take_call"] is False and "loading" in body["reason"]
    finally:
        factory.warm_gate.set()
        await srv.stop()


async def test_a_full_server_gives_a_never_connected_slot_to_a_new_caller(tmp_path):
    """Every slot held by an offer that never connected: the next caller still gets in."""
    from pipecat_tandem.transports.webrtc_server import CONNECT_GRACE_S

    srv = TandemServer(factory=FakeSessionFactory(vad=False), port=0, max_sessions=1)
    await srv.start()
    assert await srv.wait_warm()
    pc1, sdp1 = await offer_sdp()  # its answer is never applied
    pc2, sdp2 = await offer_sdp()
    try:
        async with aiohttp.ClientSession() as http:
            assert (await _post(http, srv, {"sdp": sdp1, "type": "offer"}))[0] == 200
            status, body = await _post(http, srv, {"sdp": sdp2, "type": "offer"})
            assert status == 503 and "limit" in body["error"]  # within the grace period
            await asyncio.sleep(CONNECT_GRACE_S + 0.2)
            async with http.get(url(srv, "/healthz")) as r:
                assert (await r.json())["can_take_call"] is True
            status, body = await _post(http, srv, {"sdp": sdp2, "type": "offer"})
            assert status == 200, body
            assert srv.sessions.ended_sessions[-1].end_reason == "client never connected"
    finally:
        await pc1.close()
        await pc2.close()
        await srv.stop()
