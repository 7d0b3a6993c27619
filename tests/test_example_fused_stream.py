"""examples/fused_stream.py runs: the fused stream reaches a model of one's own (issue 16, part 4)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fused_stream.py"


def _load():
    spec = importlib.util.spec_from_file_location("example_fused_stream", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_the_stand_in_model_gets_every_micro_turn_in_format_and_on_time():
    example = _load()
    report = await example.run(2.0)
    assert report.problems == []
    # 2 s of media and the tail: a frame per 200 ms window, in order, none missing.
    assert len(report.indices) >= 10 and report.indices == sorted(report.indices)
    assert report.images >= 9  # the 5 fps camera's images, embedded
    assert len(report.outputs) == len(report.indices)
    # A window is fused within its grace period (0.1 s) plus the tick and the work.
    assert max(report.lateness_s) < 0.5, report.lateness_s
