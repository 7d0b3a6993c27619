#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The tandem as a pipecat bot: run it with pipecat's development runner.

    python examples/bot.py                  # all transports on http://localhost:7860, /ws...
    python examples/bot.py -t webrtc        # one transport only (daily, livekit, twilio, ...)
    TANDEM_INTERACTION=openai:gpt-4.1-mini OPENAI_API_KEY=... python examples/bot.py

The runner calls ``bot(runner_args)`` for every session; the tandem's one is the
whole recipe: ``create_transport`` for whatever transport the session came on,
then the tandem pipeline on the embedded offline models (or the model specs in
``TANDEM_INTERACTION``/``TANDEM_BACKGROUND``). Background jobs show up in any
RTVI client as ``tandem-job`` server messages (``docs/rtvi-jobs.md``), and
pipecat's eval harness connects to ``ws://localhost:7860/ws``.
"""

from __future__ import annotations

from pipecat_tandem.bot import bot, main

__all__ = ["bot"]

if __name__ == "__main__":
    main()
