"""Large whole numbers are spoken as amounts, not as years.

In a real call the bot said "There are 5040 minutes ..." and the caller heard
"fifty forty minutes": hibari reads a bare four-digit number as a year.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipecat_tandem.models.local_tts import HIBARI_SAMPLE_RATE, HibariVoice, speakable_numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("There are 5040 minutes.", "There are 5,040 minutes."),
        ("That is 86400 seconds.", "That is 86,400 seconds."),
        ("It costs 2000 dollars.", "It costs 2,000 dollars."),
        ("1500 meters", "1,500 meters"),
        ("In 2027 it is a Friday.", "In 2027 it is a Friday."),  # a year stays a year
        ("It was 1999.", "It was 1999."),
        ("5,040", "5,040"),  # already grouped
        ("42.16 km", "42.16 km"),  # decimals, times, dates and codes are left alone
        ("at 12:30", "at 12:30"),
        ("on 2026-12-04", "on 2026-12-04"),
        ("code 0042", "code 0042"),
        ("", ""),
    ],
)
def test_speakable_numbers(text, expected):
    assert speakable_numbers(text) == expected


@pytest.mark.slow
def test_the_caller_hears_the_amount_the_bot_means():
    from pipecat_tandem.bench.caller.ears import CallerEars
    from pipecat_tandem.bench.caller.grading import mentions
    from pipecat_tandem.bench.caller.voice import PEER_RATE, resample, to_int16

    voice, ears = HibariVoice(), CallerEars()
    text = speakable_numbers("There are 5040 minutes in three and a half days.")
    audio = resample(np.concatenate(voice.synthesize(text, 0)), HIBARI_SAMPLE_RATE, PEER_RATE)
    heard = " ".join(h.text for h in ears.transcribe(to_int16(audio), 0.0))
    assert mentions(heard, "5040"), heard
