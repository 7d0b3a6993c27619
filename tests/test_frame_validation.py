"""Frames validate their fields at construction (issue 13, defect 3)."""

import pytest

from pipecat_tandem.frames import (
    BackgroundErrorFrame,
    BackgroundProgressFrame,
    BackgroundResultFrame,
    CueFrame,
    DeliveryPolicy,
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
