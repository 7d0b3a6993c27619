#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Speech timing and turn-taking, in one place.

When the user has stopped, when the bot may speak, and when both are quiet:

- :mod:`~pipecat_tandem.turns.speech_end`: loudness alone says an utterance has
  probably ended (0.1 s of quiet, before the VAD's 0.2 s); also where a sound starts.
- :mod:`~pipecat_tandem.turns.early_smart_turn`: pipecat's smart-turn v3 run on that
  early signal, so the end-of-turn decision is ready when the VAD stops.
- :mod:`~pipecat_tandem.turns.whisper_window`: Whisper on a window fitted to the
  utterance, started speculatively at the early end.
- :mod:`~pipecat_tandem.turns.fresh_transcript_turn_stop_strategy`: a turn ends on
  the words said after the user's last pause, not on earlier ones (the default).
- :mod:`~pipecat_tandem.turns.transcript_end`: what the words say about the end
  ("Meanwhile." is open, a punctuated question is finished), where the voice
  alone misleads smart-turn; the stop strategies above use it. Pure.
- :mod:`~pipecat_tandem.turns.speculative_turn_stop_strategy`: pipecat's user-turn
  stop strategy that lets the reply start before the turn is final.
- :mod:`~pipecat_tandem.turns.silence_skipping_vad`: pipecat's Silero VAD, without
  inference on digital silence (a muted mic), state for state the same as pipecat's.
- :mod:`~pipecat_tandem.turns.reply_hold`: a reply whose first audio is ready while
  the caller is sounding again, or early in a pause, waits until they are quiet or
  take the turn; its first second pauses for a caller who goes on. Pure.
- :mod:`~pipecat_tandem.turns.gap`: the *natural turn gap* (nobody speaking, nothing
  in flight, quiet long enough) at which background results are delivered. Pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipecat_tandem.turns.speculative_turn_stop_strategy import SpeculativeTurnStopStrategy

__all__ = ["SpeculativeTurnStopStrategy"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the pure modules here (gap, speech_end) are used by
    # policy/, which must not pull in pipecat.
    if name == "SpeculativeTurnStopStrategy":
        from pipecat_tandem.turns.speculative_turn_stop_strategy import (
            SpeculativeTurnStopStrategy,
        )

        return SpeculativeTurnStopStrategy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
