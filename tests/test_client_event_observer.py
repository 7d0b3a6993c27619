"""The client-event observer hears each frame once, not at every processor it passes.

A call's audio frames pass some twenty processors, 50 times a second. The observer
encodes a frame at its first push only, so being told about every later hop was
pure overhead; it now asks pipecat for first pushes only (``observe_every_push``).
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import TranscriptionFrame
from pipecat.observers.base_observer import FramePushed
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.filters.identity_filter import IdentityFilter
from pipecat.tests.utils import run_test

from pipecat_tandem.clock import ManualClock
from pipecat_tandem.transports.client_event_observer import ClientEventObserver


class _Counting(ClientEventObserver):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pushes: list[int] = []

    async def on_push_frame(self, data: FramePushed) -> None:
        self.pushes.append(data.frame.id)
        await super().on_push_frame(data)


def _observer(sent: list[dict[str, Any]], **kwargs: Any) -> _Counting:
    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    return _Counting(send=send, clock=ManualClock(), **kwargs)


async def _run(observer: _Counting) -> None:
    hops = Pipeline([IdentityFilter() for _ in range(5)])
    said = [TranscriptionFrame(t, "u", "2026-12-07T00:00:00Z") for t in ("one", "two", "three")]
    await run_test(hops, frames_to_send=said, expected_down_frames=None, observers=[observer])


async def test_each_frame_reaches_the_observer_once_and_each_message_is_sent_once():
    sent: list[dict[str, Any]] = []
    observer = _observer(sent)
    await _run(observer)
    assert len(observer.pushes) == len(set(observer.pushes))  # no frame told twice
    assert [m["text"] for m in sent if m["type"] == "transcript"] == ["one", "two", "three"]


async def test_told_of_every_hop_it_still_sends_each_message_once():
    sent: list[dict[str, Any]] = []
    observer = _observer(sent, observe_every_push=True)
    await _run(observer)
    assert len(observer.pushes) > len(set(observer.pushes))  # the hops did reach it
    assert [m["text"] for m in sent if m["type"] == "transcript"] == ["one", "two", "three"]
