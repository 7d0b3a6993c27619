#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""``tandem worker``: a process that runs background jobs for ``tandem run --redis``.

``tandem worker --redis URL [--concurrency N] [--background SPEC] [--deployment NAME]``
joins the deployment's job queue on Redis and runs jobs on the background model
of ``SPEC`` (the same specs as ``tandem run --background``; default
``$TANDEM_BACKGROUND`` or the embedded 1.5B) with the built-in tools. Start as
many as you like, on any machine that reaches the Redis server: they share the
jobs, and the jobs of one that dies are run again on another.

Bad input ends the command with one line: a malformed URL or concurrency exits
with code 2 (argparse), an unreachable Redis or a model that will not load with
code 1 (``tandem: cannot start: ...``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

#: Environment variable naming the deployment (default ``tandem``).
DEPLOYMENT_ENV = "TANDEM_DEPLOYMENT"


def redis_url(value: str) -> str:
    """Argparse type: a Redis URL (checked, not connected)."""
    from pipecat_tandem.background.remote.deployment import check_redis_url

    try:
        return check_redis_url(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def deployment_name(value: str) -> str:
    """Argparse type: a deployment name."""
    from pipecat_tandem.background.remote.deployment import RedisDeployment

    try:
        return RedisDeployment("redis://localhost", value).name
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _concurrency(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if not 1 <= n <= 64:
        raise argparse.ArgumentTypeError(f"must be in 1..64, got {n}")
    return n


def _seconds(value: str) -> float:
    try:
        s = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0.05 <= s <= 600:
        raise argparse.ArgumentTypeError(f"must be in 0.05..600 seconds, got {s:g}")
    return s


def add_deployment_arguments(parser: Any, *, required: bool) -> None:
    """``--redis URL`` and ``--deployment NAME`` (shared by ``run`` and ``worker``)."""
    parser.add_argument(
        "--redis",
        type=redis_url,
        required=required,
        metavar="URL",
        help="Redis server of the background workers (redis://HOST:PORT[/DB])"
        + ("" if required else "; jobs then run on `tandem worker` processes"),
    )
    parser.add_argument(
        "--deployment",
        type=deployment_name,
        default=None,
        metavar="NAME",
        help=f"keeps deployments sharing a Redis apart (default ${DEPLOYMENT_ENV} or 'tandem')",
    )


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``tandem worker`` options."""
    parser.description = "Run background jobs for `tandem run --redis URL`."
    add_deployment_arguments(parser, required=True)
    parser.add_argument(
        "--concurrency", type=_concurrency, default=1, metavar="N", help="jobs at once (default 1)"
    )
    parser.add_argument(
        "--background",
        default=None,
        metavar="SPEC",
        help="background model spec (default: $TANDEM_BACKGROUND or the embedded 1.5B)",
    )
    parser.add_argument(
        "--documents", type=Path, metavar="DIR", help="a folder of notes the model can search"
    )
    parser.add_argument("--name", default=None, help="this worker's unique name (default random)")
    parser.add_argument(
        "--dead-after",
        type=_seconds,
        default=3.0,
        metavar="S",
        help="a worker silent this long is dead; its jobs run again elsewhere (default 3)",
    )


def deployment_of(args: argparse.Namespace) -> Any:
    """The :class:`RedisDeployment` the parsed ``--redis``/``--deployment`` name."""
    from pipecat_tandem.background.remote.deployment import RedisDeployment

    name = args.deployment or os.environ.get(DEPLOYMENT_ENV) or "tandem"
    return RedisDeployment(args.redis, deployment_name(name))


async def check_reachable(deployment: Any) -> str | None:
    """Why Redis cannot be used (one line), or ``None`` when it answers."""
    from redis.asyncio import Redis

    client = Redis.from_url(deployment.url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
    except Exception as e:
        return f"cannot reach Redis at {deployment.safe_url}: {e}"
    finally:
        await client.aclose()
    return None


def _background_worker(spec: str | None, documents: Path | None) -> tuple[Any, Any]:
    """The job doer for ``spec`` and its warm-up (only the background model is loaded)."""
    from pipecat_tandem.background.agent import BackgroundAgent
    from pipecat_tandem.background.tools import default_tools
    from pipecat_tandem.pipelines import presets

    b_spec = presets.parse_model_spec(spec or os.environ.get(presets.BACKGROUND_ENV) or "local")
    warm = None
    if b_spec.is_local:
        from pipecat_tandem.models.local_stack import LocalStack
        from pipecat_tandem.models.weights import QWEN_15B

        stack = LocalStack(
            interaction_model=None, background_model=presets._local_model(b_spec, QWEN_15B)
        )
        factory: Any = stack.background_llm
        warm = stack.warm
    else:
        factory = presets.cloud_llm_factory(b_spec, presets.BACKGROUND_PROMPT)
    agent = BackgroundAgent(llm_factory=factory, tools=default_tools(documents_dir=documents))
    return agent, warm


async def _serve(args: argparse.Namespace) -> int:
    from pipecat.utils.asyncio.task_manager import TaskManager
    from redis.asyncio import Redis

    from pipecat_tandem.background.remote.redis_worker import RedisJobWorker
    from pipecat_tandem.cli import CANNOT_START, StartupProgress, startup_failure

    progress = StartupProgress()
    level = os.environ.get("TANDEM_LOG_LEVEL", "").strip().upper() or "INFO"
    try:
        deployment = deployment_of(args)
        from loguru import logger as _logger

        _logger.level(level)
    except (ValueError, TypeError, argparse.ArgumentTypeError) as e:
        name = "TANDEM_LOG_LEVEL" if "level" in str(e).lower() else DEPLOYMENT_ENV
        print(f"{CANNOT_START} ${name}: {e}", file=sys.stderr, flush=True)
        return 1
    problem = await check_reachable(deployment)
    if problem is None and args.documents is not None and not args.documents.is_dir():
        problem = f"--documents {args.documents} is not a folder"
    if problem is None:
        try:
            progress(f"loading the background model ({args.background or 'default'})")
            agent, warm = await asyncio.to_thread(
                _background_worker, args.background, args.documents
            )
            if warm is not None:
                await warm()
        except Exception as e:
            problem = startup_failure(e)
    if problem is not None:
        print(f"{CANNOT_START} {problem}", file=sys.stderr, flush=True)
        return 1
    # A line per job event at most: pipecat logs each job's pipeline at DEBUG.
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=level)
    worker = RedisJobWorker(
        agent,
        redis=Redis.from_url(deployment.url),
        deployment=deployment,
        concurrency=args.concurrency,
        name=args.name,
        heartbeat_s=min(1.0, args.dead_after / 3),
        dead_after_s=args.dead_after,
    )
    from pipecat_tandem.cli import stop_on_signals

    stop = stop_on_signals()
    await worker.start(TaskManager())
    progress(
        f"worker {worker.name} serving deployment {deployment.name!r} on {deployment.safe_url} "
        f"({args.concurrency} job(s) at once; Ctrl-C to stop)"
    )
    await stop.wait()
    progress("stopping (running jobs go back to the queue)")
    await worker.stop()
    return 0


def run_worker(args: argparse.Namespace) -> int:
    """Entry point of ``tandem worker``; returns the exit code."""
    return asyncio.run(_serve(args))
