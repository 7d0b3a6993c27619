"""examples/fused_stream.py: the fused stream reaches a model of one's own (issue 16, part 4).

The replay run is deterministic (stamped media, the clock follows them); the real-time
run proves the consumer keeps up with 200 ms micro-turns as they are produced.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
from pipecat.frames.frames import ErrorFrame
from pipecat.tests.utils import run_test

from pipecat_tandem.clock import ManualClock
from pipecat_tandem.frames import FusedMicroTurnFrame

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fused_stream.py"


def _load():
    spec = importlib.util.spec_from_file_location("example_fused_stream", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


example = _load()


def _fused(index: int, *, version: str = "tandem.fused/2", top: int = 15) -> FusedMicroTurnFrame:
    dmel = np.zeros((20, 80), np.uint8)
    dmel[0, 0] = top
    emb = np.ones((12 * 16, 192), np.float32)
    return FusedMicroTurnFrame(
        index=index,
        start=index * 0.2,
        dmel=dmel,
        hop_times=index * 0.2 + np.arange(20) * 0.01,
        patches=[emb],
        image_times=[index * 0.2 + 0.1],
        grids=[(12, 16)],
        version=version,
    )


async def test_replay_gives_every_micro_turn_in_order_with_the_documented_shapes():
    report = await example.run(3.0, replay=True)
    assert report.rejected == [] and report.problems == []
    # Every 200 ms window of the 3 s of media reached the model, once, in order.
    assert report.indices == list(range(15))
    assert report.starts == pytest.approx([0.2 * k for k in range(15)])
    # One 640x480 image per window (12 x 16 patches), 20 dMel hops, a (64,) output each.
    assert report.images == 15
    assert report.audio_tokens == {(20, 64)} and report.video_tokens == {(192, 64)}
    assert all(o.shape == (64,) and o.dtype == np.float32 for o in report.outputs)
    assert all(np.isfinite(o).all() for o in report.outputs)
    # The model's own work fits a micro-turn many times over.
    assert statistics.median(report.model_wall_s) < 0.2

    # A replay is reproducible: same frames, same outputs. Not bit for bit: the patch
    # embeddings vary in the last float32 bit between runs (~6e-7, seen here), the dMel
    # codes do not.
    again = await example.run(3.0, replay=True)
    assert again.indices == report.indices and again.images == report.images
    for a, b in zip(report.outputs, again.outputs, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


async def test_real_time_consumer_keeps_up():
    report = await example.run(2.0)
    assert report.rejected == [] and report.problems == []
    # A frame per 200 ms window (plus possibly a silent one while the feed ends).
    assert report.indices[:10] == list(range(10))
    assert report.images >= 9
    assert len(report.outputs) == len(report.indices)
    # A window is fused within its grace period (0.1 s) plus the tick and the work.
    assert max(report.lateness_s) < 0.5, report.lateness_s
    assert max(report.model_wall_s) < 0.2, report.model_wall_s


def test_format_major():
    assert example.format_major("tandem.fused/2") == 2
    assert example.format_major("tandem.fused/13") == 13
    for bad in ("tandem.fused", "tandem.fused/", "tandem.fused/2.1", "other/2", ""):
        with pytest.raises(ValueError):
            example.format_major(bad)


async def test_unknown_major_and_misfit_frames_are_rejected_not_fed_and_passed_on():
    tap = example.FusedStreamTap(example.StandInModel(), ManualClock(start=10.0))
    frames = [
        _fused(0),
        _fused(1, version="tandem.fused/3"),  # a newer major this consumer cannot read
        _fused(2, version="tandem.fused/1"),  # the old stem
        _fused(3, version="other.fused/2"),
        _fused(4, top=16),  # a dMel code past n_levels
        _fused(5),
    ]
    down, up = await run_test(
        tap,
        frames_to_send=frames,
        expected_down_frames=[FusedMicroTurnFrame] * 6,
        expected_up_frames=[ErrorFrame] * 4,
    )
    report = tap.report
    assert report.indices == [0, 5] and len(report.outputs) == 2
    assert [r.split(":")[0] for r in report.rejected] == [f"micro-turn {k}" for k in (1, 2, 3, 4)]
    assert "tandem.fused/3" in report.rejected[0] and "not a tandem.fused" in report.rejected[2]
    # Skipped indices in what was accepted are reported (the frames are still used).
    assert report.problems == ["micro-turn 5 after 0"]
