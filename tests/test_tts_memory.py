"""The shared voice keeps no memory per sentence length (issue 13, soak).

onnxruntime's CPU memory arena keeps blocks of every new tensor size it sees;
hibari's inputs are as long as each sentence, so a server's voice grew with
every new length its replies had (+31 MB over 30 syntheses of 3-30 words).
"""

from __future__ import annotations

import random

import pytest

from tests.support.memory import settled_rss_mb

pytest.importorskip("hibari")

from pipecat_tandem.models.local_tts import HibariVoice  # noqa: E402

pytestmark = pytest.mark.slow

WORDS = (
    "the capital of italy is rome and it is a lovely city with old streets that many people "
    "visit every year"
).split()


@pytest.fixture(scope="module")
def voice() -> HibariVoice:
    return HibariVoice()


def test_the_voice_runs_without_onnxruntimes_memory_arena(voice):
    assert voice._hibari.sess.get_session_options().enable_cpu_mem_arena is False


def test_sentences_of_new_lengths_do_not_grow_the_voice(voice):
    rnd = random.Random(1)
    voice.synthesize("Hello there.", 0)
    before = settled_rss_mb()
    for _ in range(30):
        words = [rnd.choice(WORDS) for _ in range(rnd.randint(3, 30))]
        assert voice.synthesize(" ".join(words).capitalize() + ".", 0)
    grown = settled_rss_mb() - before
    # With the arena: +31 MB here; without: +4 MB (the first long sentence's buffers).
    assert grown < 12, f"RSS grew {grown:.1f} MB over 30 syntheses"
