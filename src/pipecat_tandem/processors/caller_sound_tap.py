#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Feeds the caller's audio loudness to the reply hold (see :mod:`.reply_hold_gate`).

Make it with :attr:`~pipecat_tandem.processors.reply_hold_gate.ReplyHoldGate.tap`
and place it right after the transport input.
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipecat_tandem.clock import SessionClock
from pipecat_tandem.turns.reply_hold import CallerSound


class CallerSoundTap(FrameProcessor):
    """Measures each frame of the caller's audio and passes every frame on.

    Args:
        sound: The loudness record shared with the gate.
        clock: The session clock.
        **kwargs: Passed to ``FrameProcessor``.
    """

    def __init__(self, sound: CallerSound, *, clock: SessionClock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sound = sound
        self._clock = clock

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Note the loudness of input audio; push everything on unchanged."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and frame.num_channels == 1:
            self._sound.feed(frame.audio, now=self._clock.now())
        await self.push_frame(frame, direction)
