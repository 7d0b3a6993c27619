"""Frames validate their fields at construction (issue 13, defect 3)."""

import numpy as np
import pytest

from pipecat_tandem.frames import (
    BackgroundErrorFrame,
    BackgroundProgressFrame,
    BackgroundResultFrame,
    CueFrame,
    DeliveryPolicy,
    FusedMicroTurnFrame,
    MicroTurnFrame,
)


def test_result_frame_rejects_none_text():
    with pytest.raises(TypeError, match="text must be a str"):
        BackgroundResultFrame(job_id="job-1", text=None)  # type: ignore[arg-type]


def test_result_frame_rejects_empty_job_id_and_bad_policy():
    with pytest.raises(ValueError, match="job_id must not be empty"):
        BackgroundResultFrame(job_id=" ", text="x")
    with pytest.raises(ValueError, match="unknown delivery policy"):
        BackgroundResultFrame(job_id="j", text="x", policy="bogus")  # type: ignore[arg-type]


def test_result_frame_accepts_valid_and_parses_policy():
    f = BackgroundResultFrame(job_id="j", text="42", policy="silent")  # type: ignore[arg-type]
    assert f.policy is DeliveryPolicy.SILENT


def test_other_frames_validate():
    with pytest.raises(TypeError):
        BackgroundProgressFrame(job_id="j", text=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        BackgroundErrorFrame(job_id="j", error=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        CueFrame(kind="visual_change", time=float("nan"))


def _micro(**fields):
    base = {"index": 0, "start": 0.0, "duration": 0.2, "audio": b"\x00\x00" * 3200}
    return MicroTurnFrame(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"sample_rate": -16000}, ValueError, "sample_rate must be > 0"),
        ({"sample_rate": 0}, ValueError, "sample_rate must be > 0"),
        ({"sample_rate": 16000.0}, TypeError, "sample_rate must be an int"),
        ({"index": "x"}, TypeError, "index must be an int"),
        ({"index": -1}, ValueError, "index must be >= 0"),
        ({"start": float("nan")}, ValueError, "start must be finite"),
        ({"start": -0.2}, ValueError, "start must be >= 0"),
        ({"duration": 0.0}, ValueError, "duration must be > 0"),
        ({"duration": float("inf")}, ValueError, "duration must be finite"),
        ({"audio": "pcm"}, TypeError, "audio must be bytes"),
        ({"audio": b"\x00" * 3}, ValueError, "even number of bytes"),
        ({"images": ["junk"]}, TypeError, r"images\[0\] must be a"),
        ({"images": [(0.0, 4, 4, b"\x00" * 10)]}, ValueError, "not 4x4 RGB"),
        ({"images": [(0.0, -4, 4, b"")]}, ValueError, "width must be a positive int"),
        ({"images": [(float("nan"), 4, 4, b"\x00" * 48)]}, ValueError, "time must be"),
        ({"audio_gap": "no"}, TypeError, "audio_gap must be a bool"),
    ],
)
def test_micro_turn_frame_refuses_bad_fields(fields, error, match):
    # Regression (issue 13): sample_rate=-16000 used to be accepted.
    with pytest.raises(error, match=match):
        _micro(**fields)


def test_micro_turn_frames_that_are_fine_are_built():
    f = _micro(index=np.int64(3), images=[(0.1, 4, 4, b"\x00" * 48)], audio_gap=True)
    assert f.index == 3 and f.sample_rate == 16000


def test_fused_frame_checks_its_scalars_not_its_arrays():
    codes = np.zeros((20, 80), np.uint8)
    times = np.arange(20) * 0.01
    with pytest.raises(ValueError, match="index must be >= 0"):
        FusedMicroTurnFrame(index=-1, start=0.0, dmel=codes, hop_times=times)
    with pytest.raises(ValueError, match="hop must be > 0"):
        FusedMicroTurnFrame(index=0, start=0.0, dmel=codes, hop_times=times, hop=0.0)
    with pytest.raises(ValueError, match="version must not be empty"):
        FusedMicroTurnFrame(index=0, start=0.0, dmel=codes, hop_times=times, version="")
    # A code past n_levels is the consumer's to reject for the version it reads.
    codes[0, 0] = 99
    assert FusedMicroTurnFrame(index=0, start=0.0, dmel=codes, hop_times=times).index == 0
