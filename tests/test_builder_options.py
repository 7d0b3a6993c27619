"""build_tandem_pipeline refuses what it cannot honour (issue 13, defect 9)."""

from __future__ import annotations

import math

import pytest

from pipecat_tandem.pipelines.tandem import build_tandem_pipeline
from pipecat_tandem.policy.job_limits import JobLimits
from pipecat_tandem.processors.result_interleaver import ResultInterleaver
from pipecat_tandem.turns.gap import GapDetector
from tests.support.fake_llm import FakeLLMService


def test_a_misspelled_option_is_an_error_naming_the_right_one():
    with pytest.raises(TypeError, match=r"'min_gapp_s' \(did you mean 'min_gap_s'\?\)"):
        build_tandem_pipeline(
            interaction_llm=FakeLLMService(), background=FakeLLMService(), min_gapp_s=5
        )
    with pytest.raises(TypeError, match="unknown option.*'zzz'"):
        build_tandem_pipeline(interaction_llm=FakeLLMService(), background=FakeLLMService(), zzz=1)


def test_interleaver_options_and_job_limits_reach_their_processors():
    limits = JobLimits(max_running=1)
    tandem = build_tandem_pipeline(
        interaction_llm=FakeLLMService(),
        background=FakeLLMService(),
        max_redeliveries=0,
        job_limits=limits,
    )
    assert tandem.interleaver.scheduler.max_redeliveries == 0
    assert tandem.delegation.job_limits is limits


@pytest.mark.parametrize("gap", [math.inf, math.nan, -1.0])
def test_a_gap_that_never_comes_is_refused(gap):
    with pytest.raises(ValueError, match="min_gap_s"):
        GapDetector(min_gap_s=gap)
    with pytest.raises(ValueError, match="min_gap_s"):
        ResultInterleaver(min_gap_s=gap)
