#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The plugin's pipecat processors (one public processor per module)."""

from pipecat_tandem.processors.awareness_processor import AwarenessProcessor
from pipecat_tandem.processors.delegation_processor import DelegationProcessor
from pipecat_tandem.processors.encoder_free_fusion_processor import EncoderFreeFusionProcessor
from pipecat_tandem.processors.micro_turn_ingest_processor import MicroTurnIngestProcessor
from pipecat_tandem.processors.result_interleaver import ResultInterleaver

__all__ = [
    "AwarenessProcessor",
    "DelegationProcessor",
    "EncoderFreeFusionProcessor",
    "MicroTurnIngestProcessor",
    "ResultInterleaver",
]
