#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The ``tandem run`` WebRTC server (aiohttp + pipecat SmallWebRTC).

Routes:

* ``GET /`` and ``GET /static/...``: the offline client page (no external
  scripts, fonts or CDNs; a Content-Security-Policy forbids them).
* ``POST /api/offer``: an SDP offer in pipecat's SmallWebRTC protocol, answered
  with ``{"sdp", "type": "answer", "pc_id"}``; with a known ``pc_id`` it
  renegotiates that connection.
* ``PATCH /api/offer``: trickled ICE candidates for a known ``pc_id``.
* ``GET /healthz``: 503 with a reason until the models are warm, then 200
  (alive and warm); ``can_take_call`` says whether a new call would be
  accepted right now (with a ``reason`` when not), ``calls``/``max_calls``
  how many are running. ``GET /healthz?call`` answers 503 whenever a new call
  would be refused (what a load balancer's check of "send calls here" wants).
* ``GET /metrics``: Prometheus text (calls, jobs by state, event-loop lag,
  outbound audio pacing, model queue depth; see
  :mod:`~pipecat_tandem.transports.server_stats`).

Each client address may post a limited number of offers per minute, and only
a few that never connect (:mod:`~pipecat_tandem.transports.admission`); past
that it gets 429 with ``Retry-After``.

pipecat's ``SmallWebRTCRequestHandler`` would do the offer bookkeeping, but it
imports FastAPI (not a dependency here) and creates the peer connection before
the application may refuse the call; the server therefore drives
``SmallWebRTCConnection`` itself, with the same protocol, and checks the
session limit first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from loguru import logger
from pipecat.transports.base_transport import TransportParams, VideoInSourceParams
from pipecat.transports.smallwebrtc.connection import IceServer, SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

from pipecat_tandem.clock import SessionClock
from pipecat_tandem.observe.prometheus import CONTENT_TYPE, render
from pipecat_tandem.thread_pools import (
    install_default_executor,
    limit_blas_threads,
    limit_opencv_threads,
)
from pipecat_tandem.transports.admission import OfferAdmission, OfferLimits, client_key
from pipecat_tandem.transports.client_event_observer import ClientEventObserver, send_through
from pipecat_tandem.transports.ice import (
    candidate_target_problem,
    is_loopback_host,
    media_mids,
    restrict_host_candidates,
)
from pipecat_tandem.transports.offer import (
    MAX_BODY_BYTES,
    SignallingError,
    describe_error,
    parse_offer,
    parse_patch,
)
from pipecat_tandem.transports.server_stats import (
    LoopLagMonitor,
    install_pacing_probe,
    output_frame_ms,
    server_families,
)
from pipecat_tandem.transports.session import (
    ProgressFn,
    SessionFactory,
    SessionInfo,
    SessionRefusedError,
)
from pipecat_tandem.transports.session_manager import Session, SessionLimitError, SessionManager

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def default_transport_params() -> TransportParams:
    """Microphone and camera in (camera at 5 fps is plenty for cues), audio out."""
    return TransportParams(
        audio_in_enabled=True,
        audio_out_enabled=True,
        video_in_enabled=True,
        video_in_sources={"camera": VideoInSourceParams(framerate=5)},
    )


async def check_offer_applies(sdp: str) -> None:
    """Apply an SDP offer to a throw-away peer connection and answer it.

    aiortc validates an offer only when it is applied; this finds out whether a
    live connection could take ``sdp`` without touching that connection. No
    candidates are gathered and nothing is sent. aiortc accepts an offer
    without a DTLS fingerprint (the handshake would fail later), so that is
    checked here too.

    Raises:
        ValueError: If a media section has no DTLS fingerprint.
        Exception: Whatever aiortc raises for an offer it cannot use.
    """
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.rtcconfiguration import RTCBundlePolicy
    from aiortc.sdp import SessionDescription

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.createAnswer()
    finally:
        await pc.close()
    for i, media in enumerate(SessionDescription.parse(sdp).media):
        if media.port != 0 and (media.dtls is None or not media.dtls.fingerprints):
            raise ValueError(
                f"media section {i} ({media.kind}) has no DTLS fingerprint ('a=fingerprint' line)"
            )


class _TaggedConnection(SmallWebRTCConnection):
    """A SmallWebRTC connection whose ``pc_id`` starts with a worker tag.

    pipecat builds the ``pc_id`` from the object's name; with the tag in front,
    a proxy in front of several worker processes (``tandem run --workers``)
    sends each PATCH and renegotiation to the process holding the call by
    looking at the ``pc_id`` alone.
    """

    def __init__(self, tag: str, **kwargs: Any) -> None:
        self._tag = tag
        super().__init__(**kwargs)

    @property
    def name(self) -> str:
        """The tagged name (``w1.SmallWebRTCConnection#3``)."""
        return f"{self._tag}.{super().name}"


def static_dir() -> Path:
    """The directory of the packaged client page."""
    return Path(str(resources.files("pipecat_tandem.transports") / "static"))


#: A session whose client has not connected this long after its answer yields
#: the models to a new caller (see ``TandemServer._evict_unconnected``).
CONNECT_GRACE_S = 3.0
#: Per-client offer limits of a server unless told otherwise.
DEFAULT_OFFER_LIMITS = OfferLimits()


class TandemServer:
    """Serves the client page and runs one tandem pipeline per WebRTC call.

    Args:
        factory: Builds each session's pipeline worker (and warms the models).
        host: Bind address. On loopback, host ICE candidates are restricted to
            ``127.0.0.1`` so no media ever leaves the machine.
        port: TCP port (``0`` picks a free one; see :attr:`port` after start).
        ice_servers: STUN/TURN servers; empty by default (host candidates only).
        max_sessions: Most concurrent calls; more get a 503.
        record_dir: Write each session's JSONL event log here.
        transport_params: SmallWebRTC transport parameters per session.
        liveness_timeout_s: End a connected session whose client stops answering.
        connect_timeout_s: End a session whose client has not connected by then.
        progress: Reports start-up steps (defaults to the log).
        offer_limits: Per-client limits on offers (``None``: no limit, e.g.
            behind a proxy that limits already).
        clock: Time base of the offer limits (monotonic by default).
        unix_path: Listen on this Unix socket instead of ``host:port`` (a
            worker behind ``tandem run --workers``; ``host`` still decides
            the ICE candidates).
        worker: This process's label in ``/metrics`` and its ``pc_id`` tag
            (``w<label>.``) when ``unix_path`` is set.
    """

    def __init__(
        self,
        *,
        factory: SessionFactory,
        host: str = "127.0.0.1",
        port: int = 7860,
        ice_servers: list[IceServer] | None = None,
        max_sessions: int = 4,
        record_dir: Path | None = None,
        transport_params: TransportParams | None = None,
        liveness_timeout_s: float = 6.0,
        connect_timeout_s: float = 10.0,
        progress: ProgressFn | None = None,
        offer_limits: OfferLimits | None = DEFAULT_OFFER_LIMITS,
        clock: SessionClock | None = None,
        unix_path: Path | None = None,
        worker: str = "0",
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self._factory = factory
        self.host = host
        self.port = port
        self._ice_servers = list(ice_servers or [])
        self._record_dir = record_dir
        self._transport_params = transport_params or default_transport_params()
        self._progress: ProgressFn = progress or (lambda msg: logger.info(msg))
        self.sessions = SessionManager(
            max_sessions=max_sessions,
            liveness_timeout_s=liveness_timeout_s,
            connect_timeout_s=connect_timeout_s,
        )
        self._by_pc_id: dict[str, Session] = {}
        self.admission = (
            OfferAdmission(offer_limits, clock=clock) if offer_limits is not None else None
        )
        self._warm_state = "starting"
        self._warm_detail = "models not loaded yet"
        self._models: dict[str, Any] = {}
        self._warm_task: asyncio.Task[None] | None = None
        self._housekeeping: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._started_at = time.monotonic()
        self._unix_path = unix_path
        self.worker = worker
        self._pc_tag = f"w{worker}" if unix_path is not None else ""
        self.loop_lag = LoopLagMonitor()
        self.calls_started = 0
        self.calls_ended = 0

    @property
    def warm_state(self) -> str:
        """``starting``, ``warming``, ``ready`` or ``failed``."""
        return self._warm_state

    #
    # Lifecycle
    #

    def make_app(self) -> web.Application:
        """The aiohttp application (routes only; :meth:`start` also warms models)."""
        app = web.Application(client_max_size=MAX_BODY_BYTES * 4)
        app.router.add_get("/", self._index)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/api/offer", self._offer)
        app.router.add_patch("/api/offer", self._patch)
        app.router.add_static("/static", static_dir(), show_index=False)
        app.on_response_prepare.append(self._security_headers)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def start(self) -> None:
        """Bind the port, start warming the models in the background, return."""
        if is_loopback_host(self.host):
            restrict_host_candidates(["127.0.0.1"])
        install_pacing_probe(frame_ms=output_frame_ms(worker=self._unix_path is not None))
        self.loop_lag.start()
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site: web.BaseSite
        if self._unix_path is not None:
            site = web.UnixSite(self._runner, str(self._unix_path))
        else:
            site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets and self._unix_path is None:
            self.port = sockets[0].getsockname()[1]
        self._warm_task = asyncio.create_task(self._warm(), name="tandem-warm")
        logger.info(f"tandem: serving on {site.name}")

    async def wait_warm(self) -> bool:
        """Wait for warm-up; True if the models are ready."""
        if self._warm_task is not None:
            await asyncio.shield(self._warm_task)
        return self._warm_state == "ready"

    async def stop(self) -> None:
        """End every session and close the listener."""
        if self._warm_task is not None and not self._warm_task.done():
            self._warm_task.cancel()
        await self.sessions.shutdown()
        await self.loop_lag.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.sessions.shutdown()

    async def _warm(self) -> None:
        self._warm_state = "warming"
        self._warm_detail = "loading models"

        def report(message: str) -> None:
            self._warm_detail = message
            self._progress(message)

        try:
            started = time.monotonic()
            # Before anything runs in them: the pools' threads are all there
            # before the first call, so the count an operator sees stays flat.
            limit_opencv_threads()
            limit_blas_threads()
            await install_default_executor(asyncio.get_running_loop())
            self._models = dict(await self._factory.warm(report) or {})
            self._warm_state = "ready"
            self._warm_detail = f"ready in {time.monotonic() - started:.1f}s"
            self._progress(
                f"models ready ({self._warm_detail}); open http://{self.host}:{self.port}/"
            )
        except asyncio.CancelledError:
            self._warm_state = "failed"
            self._warm_detail = "warm-up cancelled"
            raise
        except Exception as e:
            logger.exception(f"tandem: warm-up failed: {e}")
            self._warm_state = "failed"
            self._warm_detail = f"warm-up failed: {e}"

    #
    # HTTP handlers
    #

    @staticmethod
    async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(static_dir() / "index.html")

    def refusal_reason(self) -> str | None:
        """Why a new call would be refused right now, or ``None`` if it would be taken.

        Mirrors :meth:`_offer`: a slot must be free and the factory not busy,
        unless a session whose client never connected would be evicted for it.
        """
        if self._warm_state != "ready":
            return self._warm_detail
        evictable = bool(self._unconnected_sessions())
        if self.sessions.active >= self.sessions.max_sessions and not evictable:
            return f"server is at its session limit ({self.sessions.max_sessions})"
        # A factory may serve fewer calls than the session limit (the embedded models do).
        busy = getattr(self._factory, "busy", False)
        if isinstance(busy, bool) and busy and not evictable:
            return "the models are serving all the calls they can"
        return None

    async def _healthz(self, request: web.Request) -> web.Response:
        # 200 means alive and warm (what readiness probes and start-up scripts
        # wait for); whether a call would be taken *now* is in the body.
        reason = self.refusal_reason()
        ready = self._warm_state == "ready"
        body: dict[str, Any] = {
            "status": self._warm_state,
            "ready": ready,
            "can_take_call": reason is None,
            "calls": self.sessions.active,
            "max_calls": self.sessions.max_sessions,
            "sessions": self.sessions.active,
            "max_sessions": self.sessions.max_sessions,
            "uptime_s": round(time.monotonic() - self._started_at, 1),
        }
        capacity = getattr(self._factory, "capacity", None)
        if isinstance(capacity, int):
            # Calls the loaded models serve at once (the embedded ones: one per core).
            body["model_calls"] = capacity
        if reason is not None:
            body["reason"] = reason
        if not ready:
            return web.json_response(body, status=503)
        body["models"] = self._models
        if "call" in request.query and reason is not None:
            return web.json_response(body, status=503, headers={"Retry-After": "5"})
        return web.json_response(body)

    async def _metrics(self, request: web.Request) -> web.Response:
        # Query strings are ignored: the page is the same for every scraper.
        text = render(server_families(self, self.worker, self.loop_lag.window))
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    @staticmethod
    def _error(status: int, message: str, retry_after: str | None = None) -> web.Response:
        # A busy or warming server says when to come back (RFC 9110 §10.2.3):
        # a slot frees within the connect timeout at worst.
        if retry_after is None and status == 503:
            retry_after = "5"
        headers = {"Retry-After": retry_after} if retry_after is not None else None
        return web.json_response({"error": message}, status=status, headers=headers)

    async def _read_body(self, request: web.Request) -> bytes:
        # Read at most one byte past the limit: enough to tell "too large" without
        # buffering whatever a misbehaving client streams at us.
        return await request.content.read(MAX_BODY_BYTES + 1)

    def _caller_address(self, request: web.Request) -> str | None:
        # Behind the workers' haproxy (a Unix socket) the socket peer is the
        # proxy; the caller is the last X-Forwarded-For hop, which haproxy
        # appends itself, so a caller cannot forge it.
        if self._unix_path is not None:
            forwarded = request.headers.get("X-Forwarded-For", "")
            return forwarded.rsplit(",", 1)[-1].strip() or None
        return request.remote

    async def _offer(self, request: web.Request) -> web.Response:
        client = client_key(self._caller_address(request))
        # Counted before the body is even read: a flood costs no parsing.
        if self.admission is not None:
            admission = self.admission.admit(client)
            if not admission.allowed:
                return self._error(429, admission.reason, admission.retry_after_header)
        try:
            offer = parse_offer(await self._read_body(request))
        except SignallingError as e:
            return self._error(e.status, e.message)
        existing = self._by_pc_id.get(offer.pc_id) if offer.pc_id else None
        if existing is not None and not existing.ended.is_set():
            return await self._renegotiate(existing, offer.sdp, offer.restart_pc)
        if self._warm_state != "ready":
            return self._error(503, f"not ready: {self._warm_detail}")
        for attempt in range(2):
            try:
                self.sessions.reserve()
            except SessionLimitError as e:
                # Every slot taken, maybe by offers that never connected.
                if attempt == 0 and await self._evict_unconnected():
                    continue
                return self._error(503, str(e))
            try:
                return await self._new_session(offer.sdp, offer.request_data, client)
            except SignallingError as e:
                return self._error(e.status, e.message)
            except SessionRefusedError as e:
                if attempt == 0 and await self._evict_unconnected():
                    continue
                return self._error(503, str(e))
            except Exception as e:
                logger.exception(f"tandem: could not start a session: {e}")
                return self._error(500, f"could not start a session: {e}")
        return self._error(503, "the models are serving all the calls they can; try again later")

    async def _evict_unconnected(self) -> bool:
        """End sessions whose client never connected, so a new caller gets the models.

        A real client connects within a second or two of its answer; one that
        has not after :data:`CONNECT_GRACE_S` has most likely gone (or never
        meant to connect), and must not hold one-call-at-a-time models against
        a caller who is here, nor lock the service by re-posting offers.

        Returns:
            Whether any session was ended (and its services released).
        """
        stale = self._unconnected_sessions()
        for s in stale:
            await self.sessions.end(s, "client never connected")
        for s in stale:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(s.ended.wait(), 5.0)
        return bool(stale)

    def _unconnected_sessions(self) -> list[Session]:
        """Sessions whose client has not connected :data:`CONNECT_GRACE_S` after the answer."""
        return [
            s
            for s in self.sessions.sessions()
            if s.connection is not None
            and hasattr(s.connection, "is_connected")
            and not s.connection.is_connected()
            and s.info.clock.now() >= CONNECT_GRACE_S
        ]

    async def _new_session(self, sdp: str, request_data: Any, client: str) -> web.Response:
        connection: SmallWebRTCConnection
        if self._pc_tag:
            connection = _TaggedConnection(self._pc_tag, ice_servers=self._ice_servers or None)
        else:
            connection = SmallWebRTCConnection(ice_servers=self._ice_servers or None)
        started = False
        try:
            try:
                await connection.initialize(sdp=sdp, type="offer")
            except Exception as e:
                raise SignallingError(400, f"unusable SDP offer: {describe_error(e)}") from None
            answer = connection.get_answer()
            if answer is None:
                raise SignallingError(400, "the offer produced no SDP answer")
            info = SessionInfo.new(
                transport_kind="webrtc", record_dir=self._record_dir, request_data=request_data
            )
            transport = SmallWebRTCTransport(
                webrtc_connection=connection, params=self._transport_params
            )
            worker = await self._factory.create_worker(transport, info)
            worker.add_observer(
                ClientEventObserver(send=send_through(transport.output()), clock=info.clock)
            )
            session = Session(info=info, connection=connection, worker=worker, client=client)
            self._watch_connection(session, transport)
            self.sessions.start(session)
            started = True
            self.calls_started += 1
            pc_id = answer["pc_id"]
            self._by_pc_id[pc_id] = session
            forget = asyncio.create_task(self._forget(pc_id, session))
            self._housekeeping.add(forget)
            forget.add_done_callback(self._housekeeping.discard)
            logger.info(f"tandem: session {info.session_id} started (pc_id={pc_id})")
            return web.json_response(answer)
        finally:
            if not started:
                self.sessions.release_reservation()
                try:
                    await connection.disconnect()
                except Exception as e:
                    logger.debug(f"tandem: closing a refused connection failed: {e}")

    async def _forget(self, pc_id: str, session: Session) -> None:
        await session.ended.wait()
        self.calls_ended += 1
        if self._by_pc_id.get(pc_id) is session:
            del self._by_pc_id[pc_id]
        if self.admission is not None and not session.connected:
            self.admission.never_connected(session.client)

    def _watch_connection(self, session: Session, transport: SmallWebRTCTransport) -> None:
        @transport.event_handler("on_client_disconnected")
        async def _on_disconnected(transport: Any, client: Any) -> None:
            await self.sessions.end(session, "client disconnected")

        connection = session.connection

        @connection.event_handler("connected")
        async def _on_connected(connection: Any) -> None:
            session.connected = True

        for state in ("closed", "failed"):

            @connection.event_handler(state)
            async def _on_state(connection: Any, state: str = state) -> None:
                await self.sessions.end(session, f"connection {state}")

    async def _renegotiate(self, session: Session, sdp: str, restart: bool) -> web.Response:
        if restart:
            # pipecat closes the old peer connection before it looks at the new
            # offer, so an offer it cannot use would end the call: try the offer
            # on a throw-away peer connection first and leave the call alone.
            try:
                await check_offer_applies(sdp)
            except Exception as e:
                return self._error(
                    400, f"renegotiation failed: {describe_error(e)} (the call goes on unchanged)"
                )
        try:
            await session.connection.renegotiate(sdp=sdp, type="offer", restart_pc=restart)
        except Exception as e:
            if not restart:
                return self._error(400, f"renegotiation failed: {describe_error(e)}")
            # The old peer connection is gone already; end the call cleanly.
            logger.warning(f"tandem: restart of session {session.info.session_id} failed: {e}")
            await self.sessions.end(session, "peer connection restart failed")
            return self._error(
                400, f"renegotiation failed after the restart began: {describe_error(e)}"
            )
        answer = session.connection.get_answer()
        if answer is None:
            return self._error(400, "renegotiation produced no SDP answer")
        self._by_pc_id[answer["pc_id"]] = session
        return web.json_response(answer)

    async def _patch(self, request: web.Request) -> web.Response:
        from aiortc.sdp import candidate_from_sdp

        try:
            patch = parse_patch(await self._read_body(request))
        except SignallingError as e:
            return self._error(e.status, e.message)
        session = self._by_pc_id.get(patch.pc_id)
        if session is None or session.ended.is_set():
            return self._error(404, f"unknown peer connection {patch.pc_id!r}")
        remote = session.connection.pc.remoteDescription
        mids = media_mids(remote.sdp) if remote is not None else []
        for i, c in enumerate(patch.candidates):
            if remote is not None and (c.sdp_mid is not None or c.sdp_mline_index is not None):
                problem = candidate_target_problem(c.sdp_mid, c.sdp_mline_index, mids)
                if problem:
                    return self._error(400, f"candidate {i}: {problem}")
        for i, c in enumerate(patch.candidates):
            candidate = None
            if c.candidate:
                try:
                    candidate = candidate_from_sdp(c.candidate)
                except (ValueError, IndexError, AssertionError) as e:
                    return self._error(400, f"candidate {i}: cannot parse: {e}")
                candidate.sdpMid = c.sdp_mid
                candidate.sdpMLineIndex = c.sdp_mline_index
            try:
                await session.connection.add_ice_candidate(candidate)
            except Exception as e:
                return self._error(400, f"candidate {i}: rejected: {describe_error(e)}")
        return web.json_response({"status": "success"})
