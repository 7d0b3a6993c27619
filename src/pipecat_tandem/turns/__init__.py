#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""User-turn strategies: when the user's turn ends, and what may start before it does."""

from pipecat_tandem.turns.speculative_turn_stop_strategy import SpeculativeTurnStopStrategy

__all__ = ["SpeculativeTurnStopStrategy"]
