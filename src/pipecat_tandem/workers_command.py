#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""``tandem run --workers N``: how many processes, and running the parent.

How many by default: one per usable core when the models are out of process
(cloud specs, ``--factory``), but **one** with the embedded models: each
worker process would load its own copy of every model (a 0.5B and a 1.5B
llama.cpp model, Whisper, the TTS: ~1.6 GB and both cores per process), so N
workers would be N copies fighting for the same two cores. ``--workers N``
still does it when asked (with enough memory and cores); ``docs/deploy.md``
has the measurements.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from pipecat_tandem.transports.worker_pool import parse_workers

#: Hidden ``run`` flags a worker process gets from its parent.
WORKER_FLAGS = ("--worker-index", "--worker-socket")


def workers_arg(value: str) -> int:
    """``--workers`` for argparse (a clear message for 0, -1, abc, 100000)."""
    try:
        return parse_workers(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def usable_cores() -> int:
    """Cores this process may run on (its affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def uses_embedded_models(args: argparse.Namespace, env: Any = None) -> bool:
    """Whether the call's models would be loaded into each process.

    True when the interaction spec, or the background spec without
    ``--redis``, is ``local`` (the default); a ``--factory`` is the user's own.
    """
    if getattr(args, "factory", None):
        return False
    env = os.environ if env is None else env
    interaction = args.interaction or env.get("TANDEM_INTERACTION", "") or "local"
    background = args.background or env.get("TANDEM_BACKGROUND", "") or "local"
    kinds = [interaction.strip().split(":", 1)[0].lower()]
    if not getattr(args, "redis", None):
        kinds.append(background.strip().split(":", 1)[0].lower())
    return "local" in kinds


def worker_argv(argv: Sequence[str]) -> list[str]:
    """The parent's ``run`` arguments without ``--workers`` (and the command name).

    Args:
        argv: The full command line after the program name (``run ...``).
    """
    args = list(argv)
    if "run" in args:
        args = args[args.index("run") + 1 :]
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--workers" or a in WORKER_FLAGS:
            skip = True
            continue
        if a.startswith("--workers=") or any(a.startswith(f + "=") for f in WORKER_FLAGS):
            continue
        out.append(a)
    return out


def apply_log_level(env: Any = None, default: str | None = None) -> str | None:
    """Log at ``$TANDEM_LOG_LEVEL`` (or ``default``) on stderr; a bad level is one line.

    pipecat logs at DEBUG by default, a line per frame event in places: a
    worker process serving several calls pays for that formatting on its one
    event loop, so workers log at INFO unless told otherwise.

    Returns:
        ``None``, or why the level is unusable.
    """
    env = os.environ if env is None else env
    level = env.get("TANDEM_LOG_LEVEL", "").strip().upper() or default
    if not level:
        return None
    from loguru import logger

    try:
        logger.level(level)
    except (ValueError, TypeError) as e:
        return f"$TANDEM_LOG_LEVEL: {e}"
    logger.remove()
    logger.add(sys.stderr, level=level)
    return None


def resolve_workers(args: argparse.Namespace, haproxy: str | None) -> tuple[int, str | None]:
    """How many worker processes, and a note for the user (or an error).

    Returns:
        ``(n, note)``; ``n == 0`` means it cannot start and ``note`` is the
        one line saying why.
    """
    from pipecat_tandem.transports.haproxy import HAPROXY_INSTALL

    explicit = args.workers
    if getattr(args, "livekit", False):
        if explicit is not None and explicit > 1:
            return 0, "--workers serves WebRTC calls; a LiveKit room (--room) is one call"
        return 1, None
    # Port 0 asks the system for any free port: one process can bind it, but
    # haproxy, which listens for the workers, cannot.
    any_port = getattr(args, "port", None) == 0
    if explicit is None:
        if uses_embedded_models(args) or any_port:
            return 1, None
        n = usable_cores()
        if n > 1 and haproxy is None:
            return 1, f"one worker process: haproxy is not installed ({HAPROXY_INSTALL})"
        return n, None
    if explicit > 1 and any_port:
        return 0, f"--workers {explicit} needs a fixed --port (haproxy cannot listen on port 0)"
    if explicit > 1 and haproxy is None:
        return 0, f"--workers {explicit} needs haproxy in front of the workers: {HAPROXY_INSTALL}"
    return explicit, None


async def supervise(
    args: argparse.Namespace, argv: Sequence[str], haproxy: str, progress: Any
) -> int:
    """Run the parent of ``args.workers`` worker processes until interrupted.

    Returns:
        0 after a clean stop; 1 if it could not start (one line on stderr) or
        a worker failed before it was ever ready (the worker said why).
    """
    from pipecat_tandem.cli import stop_on_signals
    from pipecat_tandem.transports.supervisor import Supervisor

    stop = stop_on_signals()
    sup = Supervisor(
        workers=args.workers,
        worker_argv=worker_argv(argv),
        host=args.host,
        port=args.port,
        haproxy=haproxy,
        progress=progress,
    )
    problem = await sup.start()
    if problem is not None:
        await sup.stop()
        from pipecat_tandem.cli import CANNOT_START

        print(f"{CANNOT_START} {problem}", file=sys.stderr, flush=True)
        return 1
    progress(
        f"listening on http://{args.host}:{args.port}/ with {args.workers} worker processes "
        "(Ctrl-C to stop)"
    )
    waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(sup.failed.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        progress("shutting down")
        await sup.stop()
    return 1 if sup.failed.is_set() and not stop.is_set() else 0
