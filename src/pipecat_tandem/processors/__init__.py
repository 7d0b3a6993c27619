#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The plugin's pipecat processors (one public processor per module)."""

from pipecat_tandem.processors.delegation_processor import DelegationProcessor
from pipecat_tandem.processors.result_interleaver import ResultInterleaver

__all__ = ["DelegationProcessor", "ResultInterleaver"]
