"""The caller: a real WebRTC peer that talks to the bot the way a person does.

It speaks scripted conversations with its own voice (piper, the joe voice: not the
bot's TTS), paced in real time with the pauses people make, records what arrives
from the bot with arrival times, and transcribes it afterwards with its own ears
(Whisper base: not the bot's recognizer). Latency and answers are graded from
that recording, so the figures are what a caller has, not what the pipeline logs.

Needs the ``caller`` extra (``pip install 'pipecat-tandem[caller]'``).
"""

from pipecat_tandem.bench.caller.conversations import CONVERSATIONS, ci_subset
from pipecat_tandem.bench.caller.grading import TurnResult, grade_turn
from pipecat_tandem.bench.caller.peer import CallerPeer, PeerStats
from pipecat_tandem.bench.caller.recording import BotRecording, Segment
from pipecat_tandem.bench.caller.script import Conversation, Turn

__all__ = [
    "CONVERSATIONS",
    "BotRecording",
    "CallerPeer",
    "Conversation",
    "PeerStats",
    "Segment",
    "Turn",
    "TurnResult",
    "ci_subset",
    "grade_turn",
]
