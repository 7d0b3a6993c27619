#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Tap the fused encoder-free stream (``tandem.fused/2``) to feed your own model.

Perception in a tandem call is two processors right after the transport input:
``MicroTurnIngestProcessor`` cuts microphone and camera into aligned 200 ms
micro-turns on one session clock, and ``EncoderFreeFusionProcessor`` turns each into
a ``FusedMicroTurnFrame``: dMel audio codes ``(20, 80) uint8`` and one hMLP patch
embedding array ``(rows * cols, 192) float32`` per camera image (format:
``docs/fused-format.md``). A model of your own (e.g. an interaction model on a GPU
consuming audio and video tokens directly) is one more processor after them::

    transport.input() -> MicroTurnIngestProcessor -> EncoderFreeFusionProcessor
      -> FusedStreamTap(your_model) -> STT -> ... (the rest of the tandem pipeline)

Here the media come from a synthetic microphone (a voice-like warble, 20 ms frames)
and camera (640x480 at 5 fps, a bright square moving across a dark room), and the
model is a small numpy stand-in (:class:`StandInModel`): a per-channel dMel embedding
lookup and a linear projection of the patch embeddings make one token matrix per
micro-turn, pooled into one output vector. The example runs anywhere::

    python examples/fused_stream.py                 # 3 s in real time
    python examples/fused_stream.py --seconds 10
    python examples/fused_stream.py --replay        # stamped media, as fast as it goes

``--replay`` is how recorded media (e.g. to build training inputs) go through the
same processors: every frame carries its session time and the clock follows the
media, so the output is the same on every run. The tap checks the format (version,
shapes, dtypes, one frame per micro-turn, indices and times increasing), rejects a
format major it does not know, times the model per micro-turn, and the script exits
non-zero on a format problem or when the model cannot keep up with 200 ms micro-turns.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from loguru import logger
from pipecat.frames.frames import EndFrame, Frame, InputAudioRawFrame, InputImageRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner
from threadpoolctl import ThreadpoolController

from pipecat_tandem.clock import ManualClock, MonotonicClock, SessionClock
from pipecat_tandem.frames import FusedMicroTurnFrame
from pipecat_tandem.processors.encoder_free_fusion_processor import EncoderFreeFusionProcessor
from pipecat_tandem.processors.micro_turn_ingest_processor import MicroTurnIngestProcessor

RATE = 16000
FPS = 5
SIZE = (640, 480)
STEP = 0.02  # one microphone frame, as WebRTC transports deliver them
FORMAT = "tandem.fused"
SUPPORTED_MAJOR = 2


def format_major(version: str) -> int:
    """The major number of a ``tandem.fused/<major>`` version string.

    Raises:
        ValueError: ``version`` is not a ``tandem.fused`` version.
    """
    name, sep, major = version.partition("/")
    if name != FORMAT or not sep or not major.isdigit():
        raise ValueError(f"not a {FORMAT} version: {version!r}")
    return int(major)


class StandInModel:
    """What a GPU interaction model does with a fused micro-turn, in numpy.

    Audio tokens: each of the ``n_mels`` dMel channels has its own table of
    ``n_levels`` embeddings, and a hop's token is the sum over channels (the
    "bag of embeddings" of the dMel paper), ``(n_hops, dim)``. Video tokens: every
    patch embedding through one linear projection, ``(rows * cols, dim)`` per image.
    A learned type embedding marks each kind, the tokens are concatenated, mean-pooled
    and read by a linear head with ``tanh``: one ``(dim,)`` vector per micro-turn.
    Weights are seeded-random: this checks the plumbing and the cost, not meaning.
    """

    def __init__(
        self, *, n_mels: int = 80, n_levels: int = 16, patch_dim: int = 192, dim: int = 64
    ) -> None:
        rng = np.random.default_rng(0)
        self.n_mels, self.n_levels, self.patch_dim, self.dim = n_mels, n_levels, patch_dim, dim
        # Scaled so a token's entries stay near unit variance (80 summed lookups).
        self.audio_table = (rng.standard_normal((n_mels, n_levels, dim)) / 9).astype(np.float32)
        self.patch_proj = (rng.standard_normal((patch_dim, dim)) / 14).astype(np.float32)
        self.patch_bias = np.zeros(dim, np.float32)
        self.type_emb = rng.standard_normal((2, dim)).astype(np.float32)
        self.head = (rng.standard_normal((dim, dim)) / 8).astype(np.float32)
        self._channels = np.arange(n_mels)

    def tokens(self, frame: FusedMicroTurnFrame) -> tuple[np.ndarray, np.ndarray]:
        """The model's input tokens: audio ``(n_hops, dim)``, video ``(n_patches, dim)``."""
        audio = self.audio_table[self._channels, frame.dmel.astype(np.intp)].sum(axis=1)
        if frame.patches:
            video = np.concatenate(frame.patches) @ self.patch_proj + self.patch_bias
        else:  # no camera image in this window: the model still gets its audio
            video = np.zeros((0, self.dim), np.float32)
        return audio + self.type_emb[0], video + self.type_emb[1]

    def forward(self, frame: FusedMicroTurnFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Audio tokens, video tokens and the ``(dim,) float32`` output of a micro-turn."""
        audio, video = self.tokens(frame)
        pooled = np.concatenate([audio, video]).mean(axis=0)
        return audio, video, np.tanh(pooled @ self.head).astype(np.float32)

    def __call__(self, frame: FusedMicroTurnFrame) -> np.ndarray:
        """One ``(dim,) float32`` output per micro-turn."""
        return self.forward(frame)[2]


@dataclass
class TapReport:
    """What the tap saw, one entry per accepted micro-turn unless noted."""

    indices: list[int] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    lateness_s: list[float] = field(default_factory=list)  # window end -> at the model
    model_wall_s: list[float] = field(default_factory=list)  # time in the model call
    model_cpu_s: list[float] = field(default_factory=list)  # CPU of that call's thread
    outputs: list[np.ndarray] = field(default_factory=list)
    audio_tokens: set[tuple[int, ...]] = field(default_factory=set)
    video_tokens: set[tuple[int, ...]] = field(default_factory=set)
    images: int = 0
    rejected: list[str] = field(default_factory=list)  # frames not given to the model
    problems: list[str] = field(default_factory=list)  # accepted, but not as documented


class FusedStreamTap(FrameProcessor):
    """Hands each ``FusedMicroTurnFrame`` to ``model`` and checks it; passes every frame on.

    A frame of an unknown format major, or whose arrays do not fit the model, is not
    given to the model: it is recorded in ``report.rejected`` and reported upstream as
    a non-fatal ``ErrorFrame``. Every frame is still passed on, for other consumers.

    Args:
        model: A :class:`StandInModel`, or anything with its attributes and ``forward``.
        clock: The session clock the perception processors use.
        **kwargs: Passed to ``FrameProcessor``.
    """

    def __init__(self, model: StandInModel, clock: SessionClock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._model, self._clock = model, clock
        self._blas = ThreadpoolController().select(user_api="blas")
        self.report = TapReport()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Feed fused frames to the model."""
        await super().process_frame(frame, direction)
        if isinstance(frame, FusedMicroTurnFrame):
            await self._consume(frame)
        await self.push_frame(frame, direction)

    async def _consume(self, frame: FusedMicroTurnFrame) -> None:
        reason = self._reject_reason(frame)
        if reason:
            self.report.rejected.append(f"micro-turn {frame.index}: {reason}")
            await self.push_error(f"{self.name}: micro-turn {frame.index} not used: {reason}")
            return
        self._check_order(frame)
        r = self.report
        r.lateness_s.append(self._clock.now() - (frame.start + frame.duration))
        # The model runs off the event loop (a GPU model would be a CUDA stream): the
        # pipeline keeps moving audio while it works.
        audio, video, out, wall, cpu = await asyncio.to_thread(self._run_model, frame)
        r.audio_tokens.add(audio.shape)
        r.video_tokens.add(video.shape)
        r.outputs.append(out)
        r.model_wall_s.append(wall)
        r.model_cpu_s.append(cpu)
        r.images += len(frame.patches)

    def _run_model(
        self, frame: FusedMicroTurnFrame
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
        wall, cpu = time.perf_counter(), time.thread_time()
        # One BLAS thread: these products are small, and the cores are shared with
        # the rest of the call (the fusion processor does the same).
        with self._blas.limit(limits=1):
            audio, video, out = self._model.forward(frame)
        return audio, video, out, time.perf_counter() - wall, time.thread_time() - cpu

    def _reject_reason(self, frame: FusedMicroTurnFrame) -> str | None:
        m = self._model
        try:
            major = format_major(frame.version)
        except ValueError as e:
            return str(e)
        if major != SUPPORTED_MAJOR:
            return f"format {frame.version}, this consumer reads {FORMAT}/{SUPPORTED_MAJOR}"
        dmel = frame.dmel
        if not isinstance(dmel, np.ndarray) or dmel.dtype != np.uint8 or dmel.ndim != 2:
            return "dmel is not a 2-d uint8 array"
        if dmel.shape[1] != m.n_mels or frame.n_levels != m.n_levels:
            return f"dmel {dmel.shape[1]} mels x {frame.n_levels} levels, model has {m.n_mels}"
        if dmel.size and int(dmel.max()) >= frame.n_levels:
            return "dmel code out of range"
        if not len(frame.patches) == len(frame.grids) == len(frame.image_times):
            return "patches, grids and image_times differ in length"
        for emb, (rows, cols) in zip(frame.patches, frame.grids, strict=True):
            if emb.dtype != np.float32 or emb.shape != (rows * cols, m.patch_dim):
                return f"patches {emb.dtype} {emb.shape} for a {rows}x{cols} grid"
        return None

    def _check_order(self, frame: FusedMicroTurnFrame) -> None:
        """Record what breaks the documented order (the frame is still used)."""
        r = self.report
        if r.indices and frame.index != r.indices[-1] + 1:
            r.problems.append(f"micro-turn {frame.index} after {r.indices[-1]}")
        if r.starts and frame.start <= r.starts[-1]:
            r.problems.append(f"micro-turn {frame.index} starts at {frame.start}")
        hops = np.asarray(frame.hop_times)
        end = frame.start + frame.duration
        if len(hops) != len(frame.dmel) or np.any(np.diff(hops) <= 0):
            r.problems.append(f"micro-turn {frame.index}: hop_times not one per hop, rising")
        elif len(hops) and not frame.start <= hops[0] <= hops[-1] < end:
            r.problems.append(f"micro-turn {frame.index}: hop_times outside the window")
        times = frame.image_times
        if any(b < a for a, b in zip(times, times[1:], strict=False)) or any(
            not frame.start <= t < end for t in times
        ):
            r.problems.append(f"micro-turn {frame.index}: image_times {times}")
        r.indices.append(frame.index)
        r.starts.append(frame.start)


def voice(t0: float, n: int) -> bytes:
    """``n`` samples of a voice-like warble (gliding pitch, syllable-rate envelope)."""
    t = t0 + np.arange(n) / RATE
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    wave = np.sin(2 * np.pi * np.cumsum(pitch) / RATE) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (wave * 6000).astype(np.int16).tobytes()


def camera(k: int) -> bytes:
    """Image ``k``: a bright square moving across a dark room, RGB bytes."""
    w, h = SIZE
    img = np.full((h, w, 3), 30, np.uint8)
    x = (20 + 24 * k) % (w - 80)
    img[200:280, x : x + 80] = 220
    return img.tobytes()


def media(seconds: float) -> list[tuple[float, list[Frame]]]:
    """The input frames due at each 20 ms step, with the step's session time.

    Camera images fall mid-window (at 0.1 s, 0.3 s, ...), so each 200 ms micro-turn
    holds exactly one image.
    """
    steps: list[tuple[float, list[Frame]]] = []
    every = round(1 / FPS / STEP)
    for n in range(round(seconds / STEP)):
        frames: list[Frame] = [InputAudioRawFrame(voice(n * STEP, round(STEP * RATE)), RATE, 1)]
        if n % every == every // 2:
            frames.append(InputImageRawFrame(camera(n // every), SIZE, "RGB"))
        steps.append((n * STEP, frames))
    return steps


class _FollowMedia(FrameProcessor):
    """In replay, moves the manual session clock to the end of the media ingest has seen.

    It sits right after the ingest processor, which closes a window once the clock
    passes its end (plus a grace period). A clock that trails the media ingest has
    already received never closes a window before all of its input is in, and the
    feeder waits for it after each 20 ms step (see :meth:`reached`), so ingest never
    sees input too far past the clock either: the media are the clock, and the result
    does not depend on how fast this machine is.
    """

    def __init__(self, clock: ManualClock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._clock = clock
        self._moved = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        t = frame.metadata.get("session_time")
        if isinstance(frame, InputAudioRawFrame) and isinstance(t, float):
            end = t + len(frame.audio) / 2 / frame.sample_rate
            self._clock.set(max(self._clock.now(), end))
            self._moved.set()
        await self.push_frame(frame, direction)

    async def reached(self, t: float) -> None:
        """Wait until the clock reads at least ``t``."""
        while self._clock.now() < t - 1e-9:
            self._moved.clear()
            await self._moved.wait()


async def _feed(worker: PipelineWorker, seconds: float, follow: _FollowMedia | None) -> None:
    """Queue the media (in real time, or stamped, step by step in replay), then the end."""
    start = time.monotonic()
    for t, frames in media(seconds):
        if follow is not None:
            for f in frames:
                f.metadata["session_time"] = t
        else:
            await asyncio.sleep(max(0.0, start + t - time.monotonic()))
        await worker.queue_frames(frames)
        if follow is not None:
            await follow.reached(t + STEP)
    if follow is None:
        await asyncio.sleep(0.4)  # the last window's grace period ends and it is fused
    await worker.queue_frame(EndFrame())


async def run(
    seconds: float = 3.0, *, replay: bool = False, model: StandInModel | None = None
) -> TapReport:
    """Run the perception processors and the tap for ``seconds`` of media.

    Args:
        seconds: Length of the synthetic media.
        replay: Stamp every frame with its session time and let the clock follow the
            media (deterministic, faster than real time) instead of feeding in real time.
        model: The model to feed (default: a :class:`StandInModel`).

    Returns:
        What the tap saw.
    """
    clock: SessionClock
    follow: _FollowMedia | None = None
    if replay:
        manual = ManualClock()
        clock, follow = manual, _FollowMedia(manual)
    else:
        clock = MonotonicClock()
    tap = FusedStreamTap(model or StandInModel(), clock)
    # In replay only the media move the clock: no window timer.
    ingest = MicroTurnIngestProcessor(clock=clock, tick=not replay)
    stages: list[FrameProcessor] = [ingest, EncoderFreeFusionProcessor(), tap]
    if follow is not None:
        stages.insert(1, follow)
    pipeline = Pipeline(stages)
    worker = PipelineWorker(
        pipeline, params=PipelineParams(audio_in_sample_rate=RATE), enable_rtvi=False
    )
    runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    await runner.add_workers(worker)
    feeder = asyncio.create_task(_feed(worker, seconds, follow))
    await runner.run()
    await feeder
    return tap.report


def _ms(values: list[float]) -> str:
    v = sorted(values)
    p95 = v[min(len(v) - 1, round(0.95 * (len(v) - 1)))]
    return (
        f"median {statistics.median(v) * 1e3:.1f} / p95 {p95 * 1e3:.1f} / max {v[-1] * 1e3:.1f} ms"
    )


def main() -> None:
    """Run, print what the model got, exit 1 on a format or timing problem."""
    p = argparse.ArgumentParser(description="Feed tandem.fused/2 to a stand-in model.")
    p.add_argument("--seconds", type=float, default=3.0, help="media length (default 3)")
    p.add_argument("--replay", action="store_true", help="stamped media, as fast as it goes")
    args = p.parse_args()
    # pipecat logs every link and frame at DEBUG; keep the summary readable, errors show.
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    began = time.perf_counter()
    report = asyncio.run(run(args.seconds, replay=args.replay))
    took = time.perf_counter() - began
    n = len(report.indices)
    expected = round(args.seconds / 0.2)
    if not n:
        sys.exit(f"no micro-turn reached the model; rejected: {report.rejected}")
    print(
        f"{n} micro-turns ({expected} windows of media, {report.images} images) reached the "
        f"model in {took:.1f} s {'(replay)' if args.replay else '(real time)'}\n"
        f"  tokens per micro-turn: audio {sorted(report.audio_tokens)}, "
        f"video {sorted(report.video_tokens)}; output {report.outputs[0].shape} "
        f"{report.outputs[0].dtype}\n"
        f"  model time per micro-turn: wall {_ms(report.model_wall_s)}, "
        f"CPU {_ms(report.model_cpu_s)} (budget 200 ms)"
    )
    if not args.replay:
        print(f"  window end -> model: {_ms(report.lateness_s)}")
    slow = statistics.median(report.model_wall_s) > 0.2 or (
        not args.replay and max(report.lateness_s) > 0.5
    )
    if report.rejected or report.problems or n < expected - 1 or slow:
        problems = report.rejected + report.problems or ["too few micro-turns, or too slow"]
        print("problems: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
