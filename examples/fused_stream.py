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

Here the media come from a synthetic microphone (a voice-like warble) and camera
(a bright square moving across a dark room), pushed in real time, and the model is
a small numpy stand-in (:class:`StandInModel`: a per-channel bag of dMel embeddings,
mean-pooled patch projections, one linear head), so the example runs anywhere:

    python examples/fused_stream.py            # 3 s, prints what the model got
    python examples/fused_stream.py --seconds 10

It checks the format (version, shapes, dtypes, one frame per micro-turn, in order)
and the timing (how long after its window closed each frame reached the model) and
exits non-zero if either is wrong.
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
from pipecat.frames.frames import EndFrame, Frame, InputAudioRawFrame, InputImageRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from pipecat_tandem.clock import MonotonicClock
from pipecat_tandem.frames import FusedMicroTurnFrame
from pipecat_tandem.processors.encoder_free_fusion_processor import EncoderFreeFusionProcessor
from pipecat_tandem.processors.micro_turn_ingest_processor import MicroTurnIngestProcessor

RATE = 16000
FPS = 5
SIZE = (320, 240)


class StandInModel:
    """What a GPU model does with a fused micro-turn, in numpy.

    Audio: each of the 80 dMel channels has its own table of 16 level embeddings;
    a hop's vector is the sum over channels (a "bag of embeddings"), and the
    micro-turn's audio vector is the mean over its hops. Video: each patch embedding
    is projected and the projections are mean-pooled per image. A linear head reads
    the concatenation. Weights are seeded-random: this checks plumbing, not meaning.
    """

    def __init__(self, dim: int = 64, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.audio_table = rng.standard_normal((80, 16, dim)).astype(np.float32) / 9.0
        self.patch_proj = rng.standard_normal((192, dim)).astype(np.float32) / 14.0
        self.head = rng.standard_normal(2 * dim).astype(np.float32)
        self.dim = dim

    def __call__(self, frame: FusedMicroTurnFrame) -> float:
        """One output per micro-turn (e.g. a "user is active" logit)."""
        channels = np.arange(frame.dmel.shape[1])
        hops = self.audio_table[channels, frame.dmel.astype(np.intp)].sum(axis=1)
        audio = hops.mean(axis=0) if len(hops) else np.zeros(self.dim, np.float32)
        images = [emb @ self.patch_proj for emb in frame.patches]
        video = np.mean([im.mean(axis=0) for im in images], axis=0) if images else 0 * audio
        return float(np.concatenate([audio, video]) @ self.head)


@dataclass
class TapReport:
    """What the tap saw."""

    indices: list[int] = field(default_factory=list)
    lateness_s: list[float] = field(default_factory=list)  # window end -> at the model
    outputs: list[float] = field(default_factory=list)
    images: int = 0
    problems: list[str] = field(default_factory=list)


class FusedStreamTap(FrameProcessor):
    """Hands each ``FusedMicroTurnFrame`` to ``model`` and checks it; passes every frame on.

    Args:
        model: Called with each fused frame; its return values are kept.
        clock: The session clock the perception processors use.
        **kwargs: Passed to ``FrameProcessor``.
    """

    def __init__(self, model: Any, clock: MonotonicClock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._model, self._clock = model, clock
        self.report = TapReport()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Feed fused frames to the model."""
        await super().process_frame(frame, direction)
        if isinstance(frame, FusedMicroTurnFrame):
            self._check(frame)
            self.report.lateness_s.append(self._clock.now() - (frame.start + frame.duration))
            # A real model runs off the event loop (a thread, or a GPU stream).
            self.report.outputs.append(await asyncio.to_thread(self._model, frame))
        await self.push_frame(frame, direction)

    def _check(self, frame: FusedMicroTurnFrame) -> None:
        r = self.report
        if frame.version.split("/")[-1] != "2":
            r.problems.append(f"unknown version {frame.version}")
        if r.indices and frame.index != r.indices[-1] + 1:
            r.problems.append(f"micro-turn {frame.index} after {r.indices[-1]}")
        r.indices.append(frame.index)
        if frame.dmel.dtype != np.uint8 or frame.dmel.shape != (20, 80):
            r.problems.append(f"dmel {frame.dmel.dtype} {frame.dmel.shape}")
        for emb, (rows, cols) in zip(frame.patches, frame.grids, strict=True):
            if emb.dtype != np.float32 or emb.shape != (rows * cols, 192):
                r.problems.append(f"patches {emb.dtype} {emb.shape} for a {rows}x{cols} grid")
        r.images += len(frame.patches)


def _voice(t0: float, n: int) -> bytes:
    t = t0 + np.arange(n) / RATE
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    wave = np.sin(2 * np.pi * np.cumsum(pitch) / RATE) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (wave * 6000).astype(np.int16).tobytes()


def _camera(k: int) -> bytes:
    w, h = SIZE
    img = np.full((h, w, 3), 30, np.uint8)
    x = (20 + 12 * k) % (w - 40)
    img[100:140, x : x + 40] = 220
    return img.tobytes()


async def _feed(worker: PipelineWorker, seconds: float) -> None:
    """Microphone (20 ms frames) and camera (5 fps) in real time, then the end."""
    start = time.monotonic()
    n = 0
    while n * 0.02 < seconds:
        await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
        frames: list[Frame] = [InputAudioRawFrame(_voice(n * 0.02, 320), RATE, 1)]
        if n % (50 // FPS) == 0:
            frames.append(InputImageRawFrame(_camera(n // 10), SIZE, "RGB"))
        await worker.queue_frames(frames)
        n += 1
    await asyncio.sleep(0.5)  # the last window closes and is fused
    await worker.queue_frame(EndFrame())


async def run(seconds: float = 3.0) -> TapReport:
    """Run the perception processors and the tap for ``seconds`` of media."""
    clock = MonotonicClock()
    tap = FusedStreamTap(StandInModel(), clock)
    pipeline = Pipeline([MicroTurnIngestProcessor(clock=clock), EncoderFreeFusionProcessor(), tap])
    worker = PipelineWorker(
        pipeline, params=PipelineParams(audio_in_sample_rate=RATE), enable_rtvi=False
    )
    runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    await runner.add_workers(worker)
    feeder = asyncio.create_task(_feed(worker, seconds))
    await runner.run()
    await feeder
    return tap.report


def main() -> None:
    """Run, print what the model got, exit 1 on a format or timing problem."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    report = asyncio.run(run(args.seconds))
    late = sorted(report.lateness_s)
    print(
        f"{len(report.indices)} fused micro-turns ({report.images} images) reached the model; "
        f"lateness after the window closed: median {statistics.median(late) * 1000:.0f} ms, "
        f"max {late[-1] * 1000:.0f} ms; outputs {np.round(report.outputs[:5], 2).tolist()} ..."
    )
    expected = int(args.seconds / 0.2)
    if report.problems or len(report.indices) < expected - 1 or late[-1] > 0.5:
        print(f"problems: {report.problems or 'too few frames or too late'}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
