"""Where the quiet before a sound ends (Whisper's pre-roll, hibari's lead)."""

from __future__ import annotations

import numpy as np

from pipecat_tandem.turns.speech_end import sound_onset


def test_sound_onset_keeps_the_lead_and_finds_nothing_in_silence():
    rate = 16000
    sound = np.full(rate // 2, 0.2, np.float32)
    audio = np.concatenate([np.zeros(rate, np.float32), sound])
    cut = sound_onset(audio, rate, level=0.01, keep_s=0.3)
    assert cut == rate - int(0.3 * rate)
    assert sound_onset(audio, rate, level=0.01, keep_s=2.0) == 0  # less quiet than kept
    assert sound_onset(np.zeros(rate, np.float32), rate, level=0.01, keep_s=0.1) == 0
    assert sound_onset(np.zeros(0, np.float32), rate, level=0.01, keep_s=0.1) == 0


def test_a_relative_level_follows_the_loudest_sound():
    rate = 16000
    quiet_talker = np.concatenate(
        [np.zeros(rate, np.float32), np.full(rate // 2, 0.002, np.float32)]
    )
    assert sound_onset(quiet_talker, rate, level=0.01, keep_s=0.3) == 0  # below 1 % of full scale
    assert sound_onset(quiet_talker, rate, level=0.01, keep_s=0.3, relative=True) == rate - 4800
