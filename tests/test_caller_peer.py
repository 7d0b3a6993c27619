"""The test caller's camera codec: offered as a browser preferring it would offer it.

The cue tests at a caller send their camera in VP8 (aiortc's first choice) or, asked
for, H.264; the offer must then carry only that codec (and its retransmissions), so
the server cannot pick another one.
"""

from __future__ import annotations

import re

import pytest

from pipecat_tandem.bench.caller.camera import SceneCamera
from pipecat_tandem.bench.caller.mic import ScriptedMic
from pipecat_tandem.bench.caller.peer import CallerPeer
from pipecat_tandem.bench.caller.scenes import Room


def _video_codecs(sdp: str) -> list[str]:
    video = next(m for m in sdp.split("m=")[1:] if m.startswith("video"))
    return [m.upper() for m in re.findall(r"a=rtpmap:\d+ ([^/]+)/90000", video)]


@pytest.mark.parametrize(("codec", "other"), [("H264", "VP8"), ("VP8", "H264")])
async def test_a_caller_offers_only_the_camera_codec_it_was_asked_for(codec, other):
    peer = CallerPeer("http://127.0.0.1:9", ScriptedMic(), SceneCamera(Room(0)), video_codec=codec)
    try:
        offer = await peer.pc.createOffer()
        offered = _video_codecs(offer.sdp)
        assert codec in offered and other not in offered
        assert set(offered) <= {codec, "RTX"}
        assert peer.video_codec is None  # nothing answered yet
    finally:
        await peer.pc.close()


async def test_without_a_codec_a_caller_offers_aiortcs_list():
    peer = CallerPeer("http://127.0.0.1:9", ScriptedMic(), SceneCamera(Room(0)))
    try:
        offered = _video_codecs((await peer.pc.createOffer()).sdp)
        assert offered[0] == "VP8" and "H264" in offered
    finally:
        await peer.pc.close()


@pytest.mark.parametrize("bad", ["h265", "", "AV1"])
def test_a_codec_it_cannot_send_is_refused(bad):
    with pytest.raises(ValueError, match="video_codec"):
        CallerPeer("http://127.0.0.1:9", ScriptedMic(), SceneCamera(Room(0)), video_codec=bad)
