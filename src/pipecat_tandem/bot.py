#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The tandem as a pipecat runner bot.

::

    python -m pipecat_tandem.bot                 # every transport pipecat's runner offers
    python -m pipecat_tandem.bot -t webrtc       # SmallWebRTC only (also daily, livekit, twilio...)

:func:`bot` is what pipecat's development runner (``pipecat.runner.run``)
calls for each session: it makes the session's transport with
``pipecat.runner.utils.create_transport`` and runs the same per-call pipeline
``tandem run`` runs (:class:`~pipecat_tandem.transports.tandem_session.TandemSessionFactory`:
presets + ``build_tandem_pipeline``), on the embedded offline models unless
``TANDEM_INTERACTION``/``TANDEM_BACKGROUND`` name others. The runner's
``/ws`` route serves pipecat's eval harness; job events reach RTVI clients as
``tandem-job`` server messages (``docs/rtvi-jobs.md``).

Environment (read once, checked before the server starts):

* ``TANDEM_INTERACTION``, ``TANDEM_BACKGROUND``: model specs (see
  :mod:`~pipecat_tandem.pipelines.presets`); default ``local``.
* ``TANDEM_RECORD_DIR``: write each session's JSONL event log there.
* ``TANDEM_PERCEPTION``: ``0`` turns micro-turn ingest and fusion off.
* ``TANDEM_BOT_SERVICES``: ``package.module:function`` returning the session's
  ``TandemServices`` for the two specs (as ``presets.build_services`` does), for
  services of your own (or fakes in tests) in the same pipeline.
* ``TANDEM_BOT_GREETING``: ``1`` (or an instruction of your own) and the bot speaks
  first when a client connects, as pipecat's example bots do; off by default.

Nothing is downloaded and no STUN server is used unless the runner is given
one (``--ice-servers``); on a loopback ``--host`` the bot offers only
``127.0.0.1`` as its ICE candidate. A start-up that cannot work (a bad model
spec, a missing key or extra, an unwritable record folder, models that will
not load) exits with status 1 and one line on stderr naming the fix.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

from loguru import logger

from pipecat_tandem.bot_settings import BotSettings, listen_problem, preflight

__all__ = ["BotSettings", "bot", "main", "preflight", "transport_params"]

#: How long a new session waits for the previous one to hand the models back.
BUSY_WAIT_S = 10.0


def transport_params() -> dict[str, Callable[[], Any]]:
    """Parameters per transport for ``create_transport`` (built only when used).

    Audio in and out everywhere; the camera (5 fps, enough for the cues) on
    WebRTC, Daily and LiveKit; the eval harness's RTVI WebSocket with pipecat's
    eval serializer (its default).
    """

    def webrtc() -> Any:
        from pipecat.transports.base_transport import TransportParams, VideoInSourceParams

        return TransportParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            video_in_enabled=True,
            video_in_sources={"camera": VideoInSourceParams(framerate=5)},
        )

    def daily() -> Any:
        from pipecat.transports.daily.transport import DailyParams

        return DailyParams(audio_in_enabled=True, audio_out_enabled=True, video_in_enabled=True)

    def livekit() -> Any:
        from pipecat.transports.livekit.transport import LiveKitParams

        return LiveKitParams(audio_in_enabled=True, audio_out_enabled=True, video_in_enabled=True)

    def websocket() -> Any:
        from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams

        return FastAPIWebsocketParams(audio_in_enabled=True, audio_out_enabled=True)

    def evals() -> Any:
        from pipecat.evals.transport import EvalTransportParams

        return EvalTransportParams(audio_in_enabled=True, audio_out_enabled=True)

    return {
        "webrtc": webrtc,
        "daily": daily,
        "livekit": livekit,
        "websocket": websocket,
        "twilio": websocket,
        "telnyx": websocket,
        "plivo": websocket,
        "exotel": websocket,
        "eval": evals,
    }


class _Models:
    """The process's one session factory, warmed once, shared by every session."""

    def __init__(self) -> None:
        self.settings: BotSettings | None = None
        self._factory: Any = None
        self._lock = asyncio.Lock()

    async def factory(self) -> Any:
        # One warm-up: the first caller makes it, the others wait for it; a
        # failed one is tried again by the next session.
        async with self._lock:
            if self._factory is None:
                self._factory = await self._make()
        return self._factory

    async def _make(self) -> Any:
        from pipecat_tandem.transports.tandem_session import TandemSessionFactory

        settings = self.settings or BotSettings.from_env()
        factory = TandemSessionFactory(
            interaction=settings.interaction,
            background=settings.background,
            perception=settings.perception,
            build_services=settings.services_builder(),
        )
        await factory.warm(lambda step: logger.info(f"tandem: {step}"))
        return factory


_models = _Models()


async def bot(runner_args: Any) -> None:
    """Run one tandem session for pipecat's runner.

    Args:
        runner_args: The runner's session arguments (``SmallWebRTCRunnerArguments``,
            ``WebSocketRunnerArguments``, ``DailyRunnerArguments``, ...).

    Raises:
        TypeError: ``runner_args`` is not a pipecat ``RunnerArguments``.
    """
    from pipecat.runner.types import RunnerArguments
    from pipecat.runner.utils import create_transport
    from pipecat.workers.runner import WorkerRunner

    from pipecat_tandem.transports.session import SessionInfo

    if not isinstance(runner_args, RunnerArguments):
        raise TypeError(
            "bot() takes pipecat's RunnerArguments (run it with `python -m pipecat_tandem.bot`), "
            f"got {type(runner_args).__name__}"
        )
    _offer_loopback_only(runner_args)
    factory = await _models.factory()
    transport = await create_transport(runner_args, transport_params())
    kind = getattr(runner_args, "transport_type", None) or _kind(runner_args)
    settings = _models.settings or BotSettings()
    info = SessionInfo.new(transport_kind=kind, record_dir=settings.record_dir, prefix="bot")
    try:
        worker = await _claim(factory, transport, info)
    except Exception:
        await _close(runner_args)  # a peer connection would wait out its own timeout
        raise
    if worker is None:
        logger.warning(f"tandem: session {info.session_id} refused: the models serve another call")
        await _close(runner_args)
        return

    @transport.event_handler("on_client_disconnected")
    async def _on_disconnected(transport: Any, client: Any) -> None:
        await worker.cancel()

    if settings.greeting:
        greeting = settings.greeting

        @transport.event_handler("on_client_connected")
        async def _on_connected(transport: Any, client: Any) -> None:
            from pipecat.frames.frames import LLMMessagesAppendFrame

            # The interaction model answers the instruction, so the greeting is an
            # ordinary reply (LLM text and speech) and stays in the context.
            message: Any = {"role": "system", "content": greeting}
            await worker.queue_frame(LLMMessagesAppendFrame(messages=[message], run_llm=True))

    runner = WorkerRunner(handle_sigint=runner_args.handle_sigint)
    await runner.add_workers(worker)
    logger.info(f"tandem: session {info.session_id} ({kind}) started")
    await runner.run()
    logger.info(f"tandem: session {info.session_id} ended")


async def _claim(factory: Any, transport: Any, info: Any, timeout_s: float = BUSY_WAIT_S) -> Any:
    """The session's worker, once the previous session has released the models.

    The embedded models serve one call at a time; a harness that connects again
    right after hanging up meets the last call still tearing down, so the new
    session waits for it (bounded) instead of being refused at once.

    Returns:
        The worker, or ``None`` if the models stayed busy for ``timeout_s``.
    """
    from pipecat_tandem.transports.tandem_session import SessionBusyError

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            return await factory.create_worker(transport, info)
        except SessionBusyError:
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.05)


async def _close(runner_args: Any) -> None:
    connection = getattr(runner_args, "webrtc_connection", None)
    if connection is not None:
        try:
            await connection.disconnect()
        except Exception as e:
            logger.debug(f"tandem: closing a refused connection failed: {e}")


def _kind(runner_args: Any) -> str:
    name = type(runner_args).__name__.removesuffix("RunnerArguments").lower()
    return {"smallwebrtc": "webrtc"}.get(name, name or "runner")


def _offer_loopback_only(runner_args: Any) -> None:
    """On a loopback ``--host``, offer only 127.0.0.1: media never leaves the machine."""
    host = getattr(getattr(runner_args, "cli_args", None), "host", None)
    if not isinstance(host, str) or getattr(runner_args, "webrtc_connection", None) is None:
        return
    from pipecat_tandem.transports.ice import is_loopback_host, restrict_host_candidates

    if is_loopback_host(host):
        restrict_host_candidates(["127.0.0.1"])


def main() -> None:
    """Check the settings, warm the models as the server starts, then run pipecat's runner.

    Command-line arguments are pipecat's runner's (``-t``, ``--host``, ``--port``...).
    """
    from pipecat_tandem.cli import CANNOT_START, startup_failure

    try:
        _models.settings = preflight()
        problem = listen_problem(sys.argv[1:])
        if problem is not None:
            raise ValueError(problem)
    except Exception as e:
        print(f"{CANNOT_START} {startup_failure(e)}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    from pipecat.runner import run

    async def _warm_at_start() -> None:
        try:
            await _models.factory()
        except Exception as e:
            print(f"{CANNOT_START} {startup_failure(e)}", file=sys.stderr, flush=True)
            os._exit(1)  # uvicorn would print a traceback and exit 3

    # Models load before the server accepts anything: a session never meets cold models.
    run.app.router.on_startup.append(_warm_at_start)
    run.main()


if __name__ == "__main__":
    main()
