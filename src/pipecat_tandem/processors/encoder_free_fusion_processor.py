#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""EncoderFreeFusionProcessor: dMel codes + hMLP patch embeddings, and cues.

Consumes :class:`~pipecat_tandem.frames.MicroTurnFrame` (passed on too when
``forward_micro_turns=True``) and pushes downstream, per micro-turn, one
:class:`~pipecat_tandem.frames.FusedMicroTurnFrame` followed by the
:class:`~pipecat_tandem.frames.CueFrame` s detected in it.

Fused format ``tandem.fused/2`` (full specification in ``docs/fused-format.md``):

* ``dmel``: ``uint8 (n_hops, 80)``, codes ``0 .. n_levels - 1`` (16 levels), one row per
  10 ms hop of the window's 16 kHz audio (20 rows for 200 ms); causal 25 ms Hann
  window, log-mel power quantized over ``[-90, +10]`` dBFS. The encoder state carries
  over between consecutive micro-turns and is reset after a skipped index.
* ``hop_times``: ``float64 (n_hops,)`` session time of each hop start.
* ``patches``: one ``float32 (rows * cols, 192)`` array per image, hMLP stem over
  40×40 patches in raster order (4×4 area average, 5×5×3 sub-patches → 24 with
  LayerNorm + GELU, 2×2 merge → 192); ``grids`` gives ``(rows, cols)``. A frame
  taller than ``max_height`` (480 px by default) is embedded area-scaled to that
  height, aspect kept (1280×720 → 12×21 patches, not 18×32).
* ``image_times``: session time of each image; ``audio_gap``: zero-filled audio.

A consumer must check ``version`` and reject versions it does not know; fields are
only ever added within a major version.

Black images (a muted camera's) are no motion: the motion counter skips them
(:meth:`~pipecat_tandem.fusion.cues.CueDetector.update`'s ``dark``).

The video cues do not read the stream's patches directly but those of the frame
scaled to 480 pixels high (:class:`~pipecat_tandem.fusion.cue_view.CueView`; the
same embeddings at 480-pixel frames), so a wave is the same number of patches
whether the camera sends 320×240 or 1280×720. For a taller camera that scaled frame
is also the stream's: one embedding serves both, and a 1280×720 camera costs about
what a 640×480 one does (the per-call CPU budget, ``docs/benchmarks.md``).

The feature work (~1.7 ms of CPU per micro-turn with one 640×480 image on a shared
2-vCPU machine, see ``docs/bench/fusion.md``) runs in a worker thread so the event loop
stays free, with the BLAS thread pool limited to ``blas_threads`` (default 1) for the
duration: the products here are small, and OpenBLAS's one-thread-per-core default
spends more CPU than it saves and slows down badly when the cores are shared. A
library already at the limit is left alone (``tandem run`` sets every BLAS to one
thread at start, :func:`~pipecat_tandem.thread_pools.limit_blas_threads`).
"""

from __future__ import annotations

import asyncio
from numbers import Integral
from typing import Any

import numpy as np
from pipecat.frames.frames import Frame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from threadpoolctl import ThreadpoolController

from pipecat_tandem.frames import CueFrame, FusedMicroTurnFrame, MicroTurnFrame
from pipecat_tandem.fusion.cue_view import CueView
from pipecat_tandem.fusion.cues import Cue, CueDetector
from pipecat_tandem.fusion.darkness import image_is_dark
from pipecat_tandem.fusion.dmel import DMelEncoder
from pipecat_tandem.fusion.patches import PatchEmbedder
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.thread_pools import lower_blas_threads

FUSED_VERSION = "tandem.fused/2"


class EncoderFreeFusionProcessor(FrameProcessor):
    """Turn micro-turns into the fused encoder-free stream and cheap cues.

    Example::

        fusion = EncoderFreeFusionProcessor(patch_weights="stem.npz")
        pipeline = Pipeline([transport.input(), ingest, fusion, stt, ...])
    """

    def __init__(
        self,
        *,
        dmel: DMelEncoder | None = None,
        patches: PatchEmbedder | None = None,
        patch_weights: str | None = None,
        cues: CueDetector | None = None,
        emit_cues: bool = True,
        forward_micro_turns: bool = False,
        blas_threads: int | None = 1,
        max_height: int | None = 480,
        event_log: EventLog | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the processor.

        Args:
            dmel: The audio encoder (default 16 kHz, 80 mels, 16 levels).
            patches: The patch embedder (default seeded-random hMLP, 40 px, 192-d).
            patch_weights: ``.npz`` of trained stem weights (instead of ``patches``).
            cues: The cue detectors (defaults when not given).
            emit_cues: Whether to push ``CueFrame`` s.
            forward_micro_turns: Also pass the consumed ``MicroTurnFrame`` s on.
            blas_threads: BLAS threads while a micro-turn is fused (the process-wide
                setting is restored afterwards); ``None`` leaves BLAS alone.
            max_height: Taller camera frames are embedded scaled down to this height
                (aspect kept), so a 1280×720 camera costs what a 640×480 one does;
                ``None`` embeds every frame at the size it came. At 480 (the cues'
                scale) the stream's and the cues' patches are one embedding.
            event_log: Where each detected cue is recorded (``cue`` events, on
                the session clock), so a call's log shows what was perceived.
            **kwargs: Passed to ``FrameProcessor``.
        """
        super().__init__(**kwargs)
        if patches is not None and patch_weights is not None:
            raise ValueError("give either patches or patch_weights, not both")
        if blas_threads is not None and blas_threads < 1:
            raise ValueError("blas_threads must be >= 1 or None")
        if max_height is not None and (isinstance(max_height, bool) or max_height < 1):
            raise ValueError("max_height must be >= 1 or None")
        self._dmel = dmel or DMelEncoder()
        self._stream = self._dmel.stream()
        self._patches = patches or PatchEmbedder(weights=patch_weights)
        self._cues = cues or CueDetector()
        # The cues' thresholds are in patches, calibrated at one scale; the stream
        # keeps the camera's own up to max_height (40-pixel patches of the frame).
        self._view = CueView(self._patches)
        # Frames taller than max_height: the stream's patches are of the frame scaled
        # down (at the cues' height, the very embedding the cues read).
        self._shrink: CueView | None = None
        if max_height is not None:
            same = max_height == self._view.height
            self._shrink = self._view if same else CueView(self._patches, height=max_height)
        self._emit_cues = emit_cues
        self._forward = forward_micro_turns
        self._last_index: int | None = None
        self._blas_threads = blas_threads
        self._event_log = event_log
        self._blas: ThreadpoolController | None = None  # found lazily (~50 ms, once)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Fuse micro-turns; pass every other frame on."""
        await super().process_frame(frame, direction)
        if not isinstance(frame, MicroTurnFrame):
            await self.push_frame(frame, direction)
            return
        if self._forward:
            await self.push_frame(frame, direction)
        try:
            problem = self._check(frame)
            if problem is None:
                fused, cues = await asyncio.to_thread(self._fuse, frame)
        except Exception as e:
            # Frames check their fields when built, but a dataclass can be changed
            # afterwards: one bad micro-turn costs only itself, and the audio context
            # restarts at the next one instead of every later window failing too.
            self._last_index = None
            problem = f"{type(e).__name__}: {e}"
        if problem is not None:
            await self.push_error(f"{self.name}: dropped micro-turn {frame.index!r}: {problem}")
            return
        await self.push_frame(fused)
        for cue in cues:
            if self._event_log is not None:
                self._event_log.emit("cue", t=cue.time, cue=cue.kind, value=round(cue.value, 4))
            await self.push_frame(
                CueFrame(kind=cue.kind, time=cue.time, value=cue.value, detail=dict(cue.detail))
            )

    def _check(self, frame: MicroTurnFrame) -> str | None:
        if (
            isinstance(frame.index, bool)
            or not isinstance(frame.index, Integral)
            or frame.index < 0
        ):
            return f"index {frame.index!r} is not a micro-turn number"
        if frame.sample_rate != self._dmel.sample_rate:
            return f"audio at {frame.sample_rate} Hz, expected {self._dmel.sample_rate} Hz"
        if len(frame.audio) % 2:
            return "odd audio byte length"
        for t, w, h, data in frame.images:
            if w <= 0 or h <= 0 or len(data) != w * h * 3:
                return f"image at {t:.3f}s is not {w}x{h} RGB"
        return None

    def _fuse(self, frame: MicroTurnFrame) -> tuple[FusedMicroTurnFrame, list[Cue]]:
        if self._blas_threads is None:
            return self._fuse_unlimited(frame)
        if self._blas is None:
            self._blas = ThreadpoolController().select(user_api="blas")
        # Only the libraries above the limit are set, and set back afterwards:
        # each set costs ~60 µs (threadpoolctl's limit() set and restored both of
        # the server's two BLAS every time, ~0.4 ms a micro-turn), and a server
        # that runs its BLAS at the limit already (`tandem run` does) pays nothing.
        raised = lower_blas_threads(self._blas, self._blas_threads)
        try:
            return self._fuse_unlimited(frame)
        finally:
            for lib, n in raised:
                lib.set_num_threads(n)

    def _fuse_unlimited(self, frame: MicroTurnFrame) -> tuple[FusedMicroTurnFrame, list[Cue]]:
        if self._last_index is None or frame.index != self._last_index + 1:
            self._stream.reset()  # a skipped window breaks the audio context
        self._last_index = frame.index
        pcm = np.frombuffer(frame.audio, dtype=np.int16)
        codes = self._stream.push(pcm)
        hop = self._dmel.hop_seconds
        hop_times = frame.start + np.arange(codes.shape[0], dtype=np.float64) * hop
        embs: list[np.ndarray] = []
        grids: list[tuple[int, int]] = []
        times: list[float] = []
        seen: list[np.ndarray] = []  # what the cue detectors get: the cues' scale
        dark: list[bool] = []  # images with nothing to see (a muted camera's black frames)
        for t, w, h, data in frame.images:
            rgb = np.frombuffer(data, dtype=np.uint8).reshape(h, w, 3)
            shrunk = self._shrink is not None and h > self._shrink.height
            if self._shrink is not None and shrunk:
                emb, grid = self._shrink.embed(rgb), self._shrink.grid(h, w)
            else:
                emb, grid = self._patches.embed(rgb), self._patches.grid(h, w)
            embs.append(emb)
            grids.append(grid)
            times.append(float(t))
            if self._emit_cues:
                if shrunk and self._shrink is self._view:
                    seen.append(emb)  # already the cues' scale
                else:
                    seen.append(self._view.embed(rgb, None if shrunk else emb))
                dark.append(bool(image_is_dark(data, w, h)))
        fused = FusedMicroTurnFrame(
            index=frame.index,
            start=frame.start,
            dmel=codes,
            hop_times=hop_times,
            patches=embs,
            image_times=times,
            version=FUSED_VERSION,
            duration=frame.duration,
            hop=hop,
            n_levels=self._dmel.n_levels,
            grids=grids,
            audio_gap=frame.audio_gap,
        )
        cues = self._cues.update(codes, hop_times, seen, times, dark) if self._emit_cues else []
        return fused, cues
