#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Encoder-free fusion: pure numpy/OpenCV feature code (no pipecat, no frames, no I/O).

* :class:`DMelEncoder` / :class:`DMelStream`: discretized log-mel audio codes (dMel).
* :class:`PatchEmbedder`: hMLP embeddings of 40×40 image patches.
* :class:`MicroTurnAssembler`: aligned micro-turn windowing of timed audio and images.
* :class:`StreamResampler`: seamless streaming conversion to 16 kHz.
* Cues: :class:`CueDetector` and its parts :class:`SpeechEnergyDetector`,
  :class:`VisualChangeDetector`, :class:`RepetitionCounter` (with its per-patch
  habituation, :class:`PatchBaseline`); :class:`Cue` values.
"""

from pipecat_tandem.fusion.cues import (
    Cue,
    CueDetector,
    RepetitionCounter,
    SpeechEnergyDetector,
    VisualChangeDetector,
    patch_distances,
)
from pipecat_tandem.fusion.dmel import DMelEncoder, DMelStream
from pipecat_tandem.fusion.habituation import PatchBaseline
from pipecat_tandem.fusion.micro_turns import IngestStats, MicroTurn, MicroTurnAssembler
from pipecat_tandem.fusion.patches import PatchEmbedder
from pipecat_tandem.fusion.resample import StreamResampler, to_mono

__all__ = [
    "Cue",
    "CueDetector",
    "DMelEncoder",
    "DMelStream",
    "IngestStats",
    "MicroTurn",
    "MicroTurnAssembler",
    "PatchBaseline",
    "PatchEmbedder",
    "RepetitionCounter",
    "SpeechEnergyDetector",
    "StreamResampler",
    "VisualChangeDetector",
    "patch_distances",
    "to_mono",
]
