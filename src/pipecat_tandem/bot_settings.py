#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The runner bot's settings and start-up checks (no I/O beyond a probe bind).

:class:`BotSettings` reads the environment ``python -m pipecat_tandem.bot``
is configured by; :func:`preflight` and :func:`listen_problem` find what would
make a start-up fail before the models load, each as one sentence naming the
fix (:mod:`pipecat_tandem.bot` prints it as ``tandem: cannot start: ...`` and
exits 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipecat_tandem.pipelines.presets import BACKGROUND_ENV, INTERACTION_ENV, parse_model_spec

RECORD_ENV = "TANDEM_RECORD_DIR"
PERCEPTION_ENV = "TANDEM_PERCEPTION"
SERVICES_ENV = "TANDEM_BOT_SERVICES"
GREETING_ENV = "TANDEM_BOT_GREETING"
#: What the interaction model is asked to do on connect when the greeting is on ("1").
DEFAULT_GREETING = "Greet the user in one short sentence and offer to help."
_FLAGS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False}
_FLAGS.update({"no": False, "off": False, "": True})


@dataclass(frozen=True)
class BotSettings:
    """The bot's configuration, from the environment (checked, no I/O).

    Parameters:
        interaction: Interaction model spec (``None``: the embedded default).
        background: Background model spec (``None``: the embedded default).
        record_dir: Folder for session event logs, or ``None``.
        perception: Run micro-turn ingest and encoder-free fusion.
        services: Import path (``module:function``) of a services builder, or ``None``.
        greeting: The instruction the interaction model answers when a client
            connects (the bot speaks first, as pipecat's example bots do), or ``None``.
    """

    interaction: str | None = None
    background: str | None = None
    record_dir: Path | None = None
    perception: bool = True
    services: str | None = None
    greeting: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BotSettings:
        """Read and check the settings.

        Args:
            env: The environment (default ``os.environ``).

        Raises:
            ValueError: One sentence naming the variable and the fix.
        """
        environ = os.environ if env is None else env
        specs: dict[str, str | None] = {}
        for name in (INTERACTION_ENV, BACKGROUND_ENV):
            value = environ.get(name)
            if value is None or not value.strip():
                specs[name] = None
                continue
            try:
                parse_model_spec(value, env=environ)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
            specs[name] = value.strip()
        record = environ.get(RECORD_ENV, "").strip()
        flag = environ.get(PERCEPTION_ENV, "").strip().lower()
        if flag not in _FLAGS:
            raise ValueError(f"{PERCEPTION_ENV} must be 1 or 0, got {flag[:20]!r}")
        services = environ.get(SERVICES_ENV, "").strip() or None
        if services is not None:
            module, sep, attr = services.partition(":")
            if (
                not sep
                or len(services) > 200
                or not all(p.isidentifier() for p in module.split("."))
                or not all(p.isidentifier() for p in attr.split("."))
            ):
                raise ValueError(
                    f"{SERVICES_ENV} must be an import path like package.module:function, "
                    f"got {services[:60]!r}"
                )
        greeting = environ.get(GREETING_ENV, "").strip()
        if greeting.lower() in _FLAGS:
            greeting = DEFAULT_GREETING if _FLAGS[greeting.lower()] and greeting else ""
        return cls(
            greeting=greeting[:500] or None,
            interaction=specs[INTERACTION_ENV],
            background=specs[BACKGROUND_ENV],
            record_dir=Path(record) if record else None,
            perception=_FLAGS[flag],
            services=services,
        )

    def services_builder(self) -> Callable[..., Any] | None:
        """Import the services builder named by :attr:`services` (``None`` if unset).

        Raises:
            ValueError: It cannot be imported or is not callable.
        """
        if self.services is None:
            return None
        import importlib

        module, _, attr = self.services.partition(":")
        try:
            target: Any = importlib.import_module(module)
            for part in attr.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"{SERVICES_ENV}={self.services}: cannot import it ({e})") from None
        if not callable(target):
            raise ValueError(f"{SERVICES_ENV}={self.services} is not callable")
        return target


def preflight(env: Mapping[str, str] | None = None) -> BotSettings:
    """Check what can be checked before the server starts.

    Raises:
        ValueError: A bad setting, an unwritable record folder, a services builder
            that cannot be imported, or pipecat's runner (``fastapi``/``uvicorn``)
            not installed.
    """
    settings = BotSettings.from_env(env)
    if settings.record_dir is not None:
        from pipecat_tandem.cli import record_dir_problem

        problem = record_dir_problem(settings.record_dir)
        if problem is not None:
            raise ValueError(problem.replace("--record", RECORD_ENV, 1))
    settings.services_builder()
    try:
        import pipecat.runner.run  # noqa: F401  (fastapi, uvicorn: the runner's own needs)
    except ModuleNotFoundError as e:
        raise ValueError(
            f"pipecat's development runner is not installed (no module named {e.name!r}): "
            "pip install 'pipecat-ai[runner,websocket]'"
        ) from None
    return settings


def listen_problem(argv: list[str]) -> str | None:
    """Why the runner could not listen where ``argv`` asks (``None`` if it can).

    Reads the runner's ``--host``/``--port`` (its defaults: ``localhost``, 7860)
    and binds them once, so a taken or impossible port is reported before the
    models load, in one line, instead of by uvicorn after the warm-up.
    """
    import argparse
    import socket

    if {"-h", "--help", "-d", "--direct"} & set(argv):
        return None  # help, or a direct Daily connection: nothing listens
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", default="7860")
    known, _ = parser.parse_known_args(argv)
    try:
        port = int(known.port)
    except ValueError:
        return f"--port must be a number, got {str(known.port)[:20]!r}"
    if not 0 <= port <= 65535:
        return f"--port must be in 0..65535, got {port}"
    try:
        infos = socket.getaddrinfo(known.host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        return f"--host {str(known.host)[:60]!r} does not resolve ({e})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            return (
                f"cannot listen on {known.host}:{port} ({e.strerror or e}); "
                "stop what holds it or pass another --port"
            )
    return None
