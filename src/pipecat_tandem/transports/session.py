#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What the servers need from an application: a session factory.

The WebRTC server and the LiveKit helper never build pipelines themselves. They
hand each new call's transport to a :class:`SessionFactory`, which returns the
``PipelineWorker`` to run. Tests inject a factory built on fake services; the
``tandem`` command uses :class:`~pipecat_tandem.transports.tandem_session.TandemSessionFactory`,
which wires the presets and ``build_tandem_pipeline``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pipecat.pipeline.worker import PipelineWorker
from pipecat.transports.base_transport import BaseTransport

from pipecat_tandem.clock import MonotonicClock, SessionClock

#: Reports one human-readable start-up step ("loading interaction model...").
ProgressFn = Callable[[str], None]

_session_numbers = itertools.count(1)


@dataclass
class SessionInfo:
    """Everything a factory may want to know about a new session.

    Parameters:
        session_id: Unique id (also the event log's file stem).
        transport_kind: ``"webrtc"`` or ``"livekit"``.
        clock: The session clock every timestamp of the session comes from.
        record_path: Where to write the session's JSONL event log, or ``None``.
        request_data: Opaque data the client sent with its offer.
    """

    session_id: str
    transport_kind: str = "webrtc"
    clock: SessionClock = field(default_factory=MonotonicClock)
    record_path: Path | None = None
    request_data: Any = None

    @classmethod
    def new(
        cls,
        *,
        transport_kind: str,
        record_dir: Path | None = None,
        request_data: Any = None,
        prefix: str = "session",
    ) -> SessionInfo:
        """Create a session with a fresh id and, when recording, its log path.

        Args:
            transport_kind: ``"webrtc"`` or ``"livekit"``.
            record_dir: Directory for event logs (created if missing), or ``None``.
            request_data: Opaque client data.
            prefix: Id prefix.

        Returns:
            The new session info.
        """
        import time

        stamp = time.strftime("%Y%m%d-%H%M%S")
        session_id = f"{prefix}-{stamp}-{next(_session_numbers):04d}"
        record_path = None
        if record_dir is not None:
            record_dir.mkdir(parents=True, exist_ok=True)
            record_path = record_dir / f"{session_id}.jsonl"
        return cls(
            session_id=session_id,
            transport_kind=transport_kind,
            record_path=record_path,
            request_data=request_data,
        )


class SessionRefusedError(Exception):
    """Raised by a factory that cannot take a call now (the server answers 503)."""


@runtime_checkable
class SessionFactory(Protocol):
    """Builds one pipeline worker per call.

    ``warm`` runs once, before the first session is accepted (the server answers
    ``/healthz`` with 503 until it returns). ``create_worker`` runs for every
    call; it must not block the event loop for long (heavy, shared state
    belongs in ``warm``).
    """

    async def warm(self, progress: ProgressFn) -> dict[str, Any]:
        """Load and warm the models; report each long step through ``progress``.

        Returns:
            A JSON-serializable description of the loaded models (for ``/healthz``).
        """
        ...

    async def create_worker(self, transport: BaseTransport, session: SessionInfo) -> PipelineWorker:
        """Build the pipeline worker for one session on ``transport``."""
        ...
