#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What one server process measures about itself, for ``/metrics``.

* **Event-loop lag**: a ticker asks to wake every 100 ms and records how late
  it woke. Every call's media of a process shares its one loop, so this is the
  first number to rise when a process holds too many calls.
* **Outbound audio pacing**: pipecat's WebRTC output track hands aiortc one
  10 ms frame at a time, sleeping until each frame's due time; how late each
  frame leaves that sleep is what a caller hears as jitter. The probe wraps
  the track class's ``recv`` once per process (pipecat has no hook for it).

Both keep a window of recent samples (:class:`LatenessWindow`, pure) so the
p99 reported is "lately", not since the process began.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from typing import Any

from pipecat_tandem.observe.metrics import percentile


class LatenessWindow:
    """The last ``size`` lateness samples (seconds) and their running total.

    Args:
        size: How many recent samples the percentiles are computed over.
    """

    def __init__(self, size: int = 3000) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self._samples: deque[float] = deque(maxlen=size)
        self.count = 0
        self.total_s = 0.0

    def add(self, late_s: float) -> None:
        """Record one sample (negative lateness counts as on time)."""
        late_s = max(0.0, late_s)
        self._samples.append(late_s)
        self.count += 1
        self.total_s += late_s

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0..1) of the recent samples, 0 with none."""
        value = percentile(list(self._samples), 100.0 * q)
        return 0.0 if value is None else value

    def max(self) -> float:
        """The largest recent sample (0 with none)."""
        return max(self._samples, default=0.0)


class LoopLagMonitor:
    """Measures how late this event loop runs a timer.

    Args:
        interval_s: How often it wakes.
        window: Where samples go (a fresh window by default).
    """

    def __init__(self, interval_s: float = 0.1, window: LatenessWindow | None = None) -> None:
        self.interval_s = interval_s
        self.window = window or LatenessWindow(size=100)  # the last 10 s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start ticking on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._tick(), name="tandem-loop-lag"
            )

    async def stop(self) -> None:
        """Stop ticking."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _tick(self) -> None:
        while True:
            due = time.monotonic() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.window.add(time.monotonic() - due)


#: Outbound audio frames of every call in this process.
OUTBOUND_PACING = LatenessWindow(size=6000)


#: Overrides the outbound audio frame length (``10`` or ``20`` ms).
FRAME_MS_ENV = "TANDEM_OUTPUT_FRAME_MS"


def output_frame_ms(worker: bool, env: Any = None) -> int:
    """How long each outbound audio frame is: 20 ms in a worker process, else 10 ms.

    pipecat's track hands aiortc one 10 ms frame per event-loop round trip (a
    sleep, then the encoder), though aiortc's Opus encoder packs 20 ms per packet
    anyway. With several calls per process on a busy machine that chain fell
    behind before the loop looked saturated: ``--workers 2`` at load ~3.5, 6
    calls were 792 ms late at p99 with 10 ms frames and 31 ms with 20 ms
    (docs/benchmarks.md). A single process keeps pipecat's 10 ms unless told;
    ``$TANDEM_OUTPUT_FRAME_MS`` (10 or 20) decides in either.
    """
    import os

    value = (os.environ if env is None else env).get(FRAME_MS_ENV, "").strip()
    if value in ("10", "20"):
        return int(value)
    return 20 if worker else 10


def install_pacing_probe(window: LatenessWindow = OUTBOUND_PACING, frame_ms: int = 10) -> bool:
    """Time every outbound audio frame of pipecat's WebRTC track (once per process).

    Args:
        window: Where the lateness samples go.
        frame_ms: 10 (pipecat's own ``recv``) or 20 (two of its chunks per frame).

    Returns:
        Whether the probe is in place (False if pipecat's track is not the
        expected shape; the pacing metric then stays empty).
    """
    from pipecat.transports.smallwebrtc import transport as smallwebrtc

    track_cls: Any = getattr(smallwebrtc, "RawAudioTrack", None)
    if track_cls is None or not hasattr(track_cls, "recv"):
        return False
    if getattr(track_cls.recv, "_tandem_probe", False):
        return True
    original = _recv_20ms if frame_ms == 20 else track_cls.recv

    @functools.wraps(original)
    async def recv(self: Any) -> Any:
        # The frame's due time, as the track computes it before it sleeps.
        timestamp = getattr(self, "_timestamp", 0)
        due = self._start + timestamp / self._sample_rate if timestamp > 0 else None
        frame = await original(self)
        if due is not None:
            window.add(time.time() - due)
        return frame

    recv._tandem_probe = True  # type: ignore[attr-defined]
    track_cls.recv = recv
    return True


async def _recv_20ms(self: Any) -> Any:
    """Like pipecat's ``RawAudioTrack.recv``, handing out 20 ms (two of its 10 ms chunks) per call.

    Same schedule, silence and completion futures as pipecat's: a chunk's
    future resolves when the chunk leaves, so "the bot stopped speaking" moves
    by at most 10 ms.
    """
    import fractions

    import numpy as np
    from av import AudioFrame

    if self._timestamp > 0:
        wait = self._start + (self._timestamp / self._sample_rate) - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
    parts = []
    for i in range(2):
        if not self._chunk_queue and not self._auto_silence and i == 0:
            # pipecat's own recv polls like this; its queue has no event to wait on.
            while not self._chunk_queue:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        if self._chunk_queue:
            chunk, future = self._chunk_queue.popleft()
            if future and not future.done():
                future.set_result(True)
        else:
            chunk = bytes(self._bytes_per_10ms)
        parts.append(chunk)
    samples = np.frombuffer(b"".join(parts), dtype=np.int16)
    frame = AudioFrame.from_ndarray(samples[None, :], layout="mono")
    frame.sample_rate = self._sample_rate
    frame.pts = self._timestamp
    frame.time_base = fractions.Fraction(1, self._sample_rate)
    self._timestamp += 2 * self._samples_per_10ms
    return frame


def server_families(server: Any, worker: str, loop_lag: LatenessWindow) -> list[Any]:
    """The Prometheus families of one server process.

    Args:
        server: The :class:`~pipecat_tandem.transports.webrtc_server.TandemServer`.
        worker: This process's label (``"0"`` for a single process).
        loop_lag: The process's event-loop lag window.

    Returns:
        :class:`~pipecat_tandem.observe.prometheus.Family` objects.
    """
    from pipecat_tandem.background.jobs import process_job_counts
    from pipecat_tandem.models.local_server import model_queue_depth
    from pipecat_tandem.observe.prometheus import Family

    w = {"worker": worker}
    sessions = server.sessions
    calls = Family("tandem_calls", "gauge", "Calls running or being set up.")
    calls.add(sessions.active, **w)
    connected = Family("tandem_calls_connected", "gauge", "Calls whose client is connected.")
    connected.add(sum(1 for s in sessions.sessions() if s.connected), **w)
    limit = Family("tandem_calls_max", "gauge", "Most concurrent calls this process takes.")
    limit.add(sessions.max_sessions, **w)
    can_take = Family(
        "tandem_can_take_call", "gauge", "1 if a new call would be accepted now, else 0."
    )
    can_take.add(1 if server.refusal_reason() is None else 0, **w)
    ready = Family("tandem_ready", "gauge", "1 once the models are warm.")
    ready.add(1 if server.warm_state == "ready" else 0, **w)
    started = Family("tandem_calls_started_total", "counter", "Calls accepted since start.")
    started.add(server.calls_started, **w)
    ended = Family("tandem_calls_ended_total", "counter", "Calls ended since start.")
    ended.add(server.calls_ended, **w)

    current, ended_jobs = process_job_counts()
    jobs = Family("tandem_jobs", "gauge", "Background jobs of the live calls, by state.")
    for state in ("queued", "running", "done", "failed", "cancelled", "stale"):
        jobs.add(current.get(state, 0), state=state, **w)
    jobs_ended = Family(
        "tandem_jobs_ended_total",
        "counter",
        "Background jobs that reached a final state, by state.",
    )
    for state in ("done", "failed", "cancelled", "stale"):
        jobs_ended.add(ended_jobs.get(state, 0), state=state, **w)

    lag = Family("tandem_event_loop_lag_seconds", "summary", "How late the event loop runs.")
    pacing = Family(
        "tandem_outbound_audio_lateness_seconds",
        "summary",
        "How late each outbound 10 ms audio frame leaves for the network (recent window).",
    )
    for fam, window in ((lag, loop_lag), (pacing, OUTBOUND_PACING)):
        for q in (0.5, 0.99):
            fam.add(window.quantile(q), quantile=str(q), **w)
        fam.add(window.total_s, "_sum", **w)
        fam.add(window.count, "_count", **w)
    lag_max = Family("tandem_event_loop_lag_max_seconds", "gauge", "Worst recent loop lag.")
    lag_max.add(loop_lag.max(), **w)

    depth = Family(
        "tandem_model_queue_depth",
        "gauge",
        "Requests waiting for or running on each embedded model (none for cloud models).",
    )
    for model, n in sorted(model_queue_depth().items()):
        depth.add(n, model=model, **w)
    if not depth.samples:
        depth.add(0, model="none", **w)
    return [
        calls,
        connected,
        limit,
        can_take,
        ready,
        started,
        ended,
        jobs,
        jobs_ended,
        lag,
        lag_max,
        pacing,
        depth,
    ]
