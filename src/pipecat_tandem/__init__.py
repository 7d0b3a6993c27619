#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""pipecat-tandem: an interaction / background model split for pipecat.

A fast interaction model stays present in the call; a slow background model
reasons and uses tools asynchronously on a full copy of the conversation; its
results are woven back in at natural turn gaps.

Example::

    from pipecat_tandem import build_tandem_pipeline

    tandem = build_tandem_pipeline(interaction_llm=fast_llm, background=slow_llm,
                                   transport=transport, stt=stt, tts=tts)
"""

from pipecat_tandem.background.agent import BackgroundAgent
from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.runner import BackgroundRunner, InProcessRunner
from pipecat_tandem.clock import LoopClock, ManualClock, MonotonicClock, SessionClock
from pipecat_tandem.frames import (
    BackgroundDeliveryFrame,
    BackgroundErrorFrame,
    BackgroundJobStateFrame,
    BackgroundProgressFrame,
    BackgroundResultFrame,
    DeliveryPolicy,
    JobState,
)
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.observe.metrics import SessionMetrics, compute_metrics
from pipecat_tandem.pipelines.tandem import TandemPipeline, build_tandem_pipeline
from pipecat_tandem.processors import DelegationProcessor, ResultInterleaver

__version__ = "0.1.0"

__all__ = [
    "BackgroundAgent",
    "BackgroundDeliveryFrame",
    "BackgroundErrorFrame",
    "BackgroundJobStateFrame",
    "BackgroundProgressFrame",
    "BackgroundResultFrame",
    "BackgroundRunner",
    "ContextPacket",
    "DelegationProcessor",
    "DeliveryPolicy",
    "EventLog",
    "InProcessRunner",
    "JobState",
    "LoopClock",
    "ManualClock",
    "MonotonicClock",
    "ResultInterleaver",
    "SessionClock",
    "SessionMetrics",
    "TandemPipeline",
    "build_tandem_pipeline",
    "compute_metrics",
]
