"""Perception runs in a real call: a scene change sent over WebRTC is perceived (issue 16).

A real aiortc peer calls ``TandemServer`` with the production session factory
(fake language and speech models; real ingest, fusion and cue detectors) and
sends a camera, VP8-encoded by aiortc, showing a dark room with a small square
moving in a corner, then the whole view turning red. The session's event log
must show a visual-change cue after the change and none before it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
import pytest

from pipecat_tandem.transports.tandem_session import TandemSessionFactory
from pipecat_tandem.transports.webrtc_server import TandemServer
from tests.support.media import PatternVideoTrack, TestPeer, speech_pcm
from tests.test_server_tandem_session import fake_presets  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

CHANGE_AT_S = 4.0


FPS = 10


def room_then_red(index: int, width: int, height: int) -> np.ndarray:
    """A dark room with a small moving square, then a red screen from ``CHANGE_AT_S``."""
    t = index / FPS
    if t >= CHANGE_AT_S:
        img = np.zeros((height, width, 3), np.uint8)
        img[..., 0] = 220
        return img
    rng = np.random.default_rng(index)  # sensor noise
    img = np.clip(rng.normal(30, 3, (height, width, 3)), 0, 255).astype(np.uint8)
    x = 10 + int(20 * t) % 40
    img[10:22, x : x + 12] = 200  # a small object moving in a corner
    return img


async def test_a_scene_change_in_a_real_call_fires_one_visual_cue_after_it(
    fake_presets,  # noqa: F811
    tmp_path,
):
    srv = TandemServer(factory=TandemSessionFactory(), port=0, record_dir=tmp_path)
    await srv.start()
    try:
        assert await srv.wait_warm()
        peer = TestPeer(f"http://127.0.0.1:{srv.port}", pcm=speech_pcm("Hello."), video=False)
        camera = PatternVideoTrack(FPS, image=room_then_red)
        peer.pc.addTrack(camera)
        connected_at = time.monotonic()
        await peer.connect()
        await asyncio.sleep(CHANGE_AT_S + 3.0)
        await peer.close()
        for _ in range(100):
            if srv.sessions.active == 0:
                break
            await asyncio.sleep(0.1)
        (log,) = tmp_path.glob("*.jsonl")
        events: list[dict[str, Any]] = [json.loads(line) for line in log.read_text().splitlines()]
    finally:
        await srv.stop()
    assert camera.started_at is not None
    cues = [e for e in events if e["kind"] == "cue" and e.get("cue") == "visual_change"]
    assert cues, "no visual_change cue in the call's log"
    # Session time 0 is about when the offer was accepted; the change was sent
    # CHANGE_AT_S after the camera's first frame (which follows connecting).
    # Frames are paced from the first one, so the change left at started_at + CHANGE_AT_S.
    change_t = camera.started_at + CHANGE_AT_S - connected_at
    assert all(c["t"] >= change_t - 0.5 for c in cues), (cues, change_t)
    assert len(cues) == 1, cues
