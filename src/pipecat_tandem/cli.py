#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The ``tandem`` command.

``tandem run``
    Serve the offline client page and the SmallWebRTC offer endpoint on
    ``127.0.0.1:7860`` (or join a LiveKit room with ``--livekit-url``/``--room``),
    running the tandem pipeline on the embedded default models unless
    ``--interaction``/``--background`` (or ``TANDEM_INTERACTION``/
    ``TANDEM_BACKGROUND``) choose others.
``tandem timeline SESSION.jsonl -o out.png|out.html``
    Draw a recorded session (``--record DIR``) as a timeline.

Other commands (``tandem bench``) register themselves in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: Extra subcommands: name → (add its arguments to a subparser, run it → exit code).
COMMANDS: dict[
    str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {}


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {port}")
    return port


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _spec(value: str) -> str:
    value = value.strip()
    if not value or any(c.isspace() for c in value):
        raise argparse.ArgumentTypeError(f"bad model spec {value!r} (e.g. local, openai:MODEL)")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tandem`` command."""
    parser = argparse.ArgumentParser(
        prog="tandem",
        description="Interaction + background models in one call (pipecat plugin).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="serve the WebRTC client page (or join a LiveKit room)")
    run.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    run.add_argument("--port", type=_port, default=7860, help="TCP port (default 7860)")
    run.add_argument(
        "--interaction",
        type=_spec,
        default=None,
        help="interaction model spec (default: $TANDEM_INTERACTION or the embedded model)",
    )
    run.add_argument(
        "--background",
        type=_spec,
        default=None,
        help="background model spec (default: $TANDEM_BACKGROUND or the embedded model)",
    )
    run.add_argument("--record", type=Path, metavar="DIR", help="write session event logs here")
    run.add_argument(
        "--max-sessions", type=_positive_int, default=4, help="concurrent calls (default 4)"
    )
    run.add_argument(
        "--no-perception",
        dest="perception",
        action="store_false",
        help="no micro-turn ingest or encoder-free fusion (no visual cues, no counting)",
    )
    run.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="STUN/TURN server (repeatable; URL or URL|USER|CREDENTIAL); none by default",
    )
    lk = run.add_argument_group("LiveKit (join a room instead of serving WebRTC)")
    lk.add_argument("--livekit-url", default=None, help="server URL (or $LIVEKIT_URL)")
    lk.add_argument("--room", default=None, help="room name")
    lk.add_argument("--token", default=None, help="access token (or $LIVEKIT_TOKEN)")
    lk.add_argument("--api-key", default=None, help="API key to mint a token ($LIVEKIT_API_KEY)")
    lk.add_argument("--api-secret", default=None, help="API secret ($LIVEKIT_API_SECRET)")
    lk.add_argument("--identity", default="tandem-bot", help="the bot's participant identity")

    timeline = sub.add_parser("timeline", help="draw a recorded session as a timeline")
    timeline.add_argument("session", type=Path, help="a session .jsonl event log")
    timeline.add_argument(
        "-o", "--output", type=Path, required=True, help="out.png or out.html (by extension)"
    )

    for name, (add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name))
    return parser


class StartupProgress:
    """Prints long start-up steps with the time since start (to stderr)."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream or sys.stderr
        self._start = time.monotonic()

    def __call__(self, message: str) -> None:
        """Report one step."""
        elapsed = time.monotonic() - self._start
        print(f"[tandem {elapsed:6.1f}s] {message}", file=self._stream, flush=True)


def _check_run_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from pipecat_tandem.transports.ice import parse_ice_servers

    try:
        args.ice_servers = parse_ice_servers(args.ice_server)
    except ValueError as e:
        parser.error(f"--ice-server: {e}")
    if args.record is not None and args.record.exists() and not args.record.is_dir():
        parser.error(f"--record: {args.record} exists and is not a directory")
    url = args.livekit_url or os.environ.get("LIVEKIT_URL")
    if args.livekit_url is not None and not args.livekit_url.strip():
        parser.error("--livekit-url: empty URL")
    if args.room is not None and not args.room.strip():
        parser.error("--room: empty room name")
    if args.livekit_url and not args.room:
        parser.error("--livekit-url needs --room")
    if args.room and not url:
        parser.error("--room needs --livekit-url (or $LIVEKIT_URL)")
    args.livekit = bool(args.room)
    if args.livekit:
        from pipecat_tandem.transports.livekit_room import LiveKitRoomConfig

        try:
            args.livekit_config = LiveKitRoomConfig.from_sources(
                url=url,
                room=args.room,
                token=args.token,
                api_key=args.api_key,
                api_secret=args.api_secret,
                identity=args.identity,
                env=os.environ,
            )
        except ValueError as e:
            parser.error(str(e))


async def serve(args: argparse.Namespace, factory: Any, progress: StartupProgress) -> int:
    """Run the WebRTC server (or the LiveKit participant) until interrupted.

    Args:
        args: Parsed and checked ``run`` arguments.
        factory: The session factory.
        progress: Where start-up steps are reported.

    Returns:
        The exit code.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    if args.livekit:
        from pipecat_tandem.transports.livekit_room import run_livekit_session

        session = asyncio.ensure_future(
            run_livekit_session(
                args.livekit_config, factory=factory, record_dir=args.record, progress=progress
            )
        )
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({session, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not session.done():
            session.cancel()
        try:
            await session
        except asyncio.CancelledError:
            pass
        return 0

    from pipecat_tandem.transports.webrtc_server import TandemServer

    server = TandemServer(
        factory=factory,
        host=args.host,
        port=args.port,
        ice_servers=args.ice_servers,
        max_sessions=args.max_sessions,
        record_dir=args.record,
        progress=progress,
    )
    try:
        await server.start()
    except OSError as e:
        progress(f"cannot listen on {args.host}:{args.port}: {e}")
        return 1
    progress(f"listening on http://{args.host}:{server.port}/ (Ctrl-C to stop)")
    try:
        await stop.wait()
    finally:
        progress("shutting down")
        await server.stop()
    return 0


def run_command(
    args: argparse.Namespace, parser: argparse.ArgumentParser, factory: Any = None
) -> int:
    """Check ``run`` arguments, then serve (``factory`` overrides the presets)."""
    _check_run_args(parser, args)
    progress = StartupProgress()
    if factory is None:
        from pipecat_tandem.transports.tandem_session import TandemSessionFactory

        factory = TandemSessionFactory(
            interaction=args.interaction,
            background=args.background,
            perception=getattr(args, "perception", True),
        )
    return asyncio.run(serve(args, factory, progress))


def timeline_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Render a recorded session to PNG or HTML."""
    suffix = args.output.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        parser.error(f"-o/--output must end in .png or .html, got {args.output.name!r}")
    if not args.session.is_file():
        parser.error(f"no such session log: {args.session}")
    from pipecat_tandem.observe.timeline import load_events, render_timeline

    events = load_events(args.session)
    if isinstance(events, tuple):  # some loaders also return a malformed-line count
        events = events[0]
    if not events:
        print(f"tandem: {args.session} holds no events", file=sys.stderr)
        return 1
    render_timeline(events, args.output)
    print(f"wrote {args.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tandem`` console script.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        The exit code (argument errors exit with 2 via ``SystemExit``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_command(args, parser)
    if args.command == "timeline":
        return timeline_command(args, parser)
    _, handler = COMMANDS[args.command]
    return handler(args)


def _register_bench() -> None:
    # `tandem bench` lives in pipecat_tandem.bench (imports pipecat only when it runs).
    from pipecat_tandem.bench.cli import add_bench_arguments, run_bench

    COMMANDS.setdefault("bench", (add_bench_arguments, run_bench))


_register_bench()
