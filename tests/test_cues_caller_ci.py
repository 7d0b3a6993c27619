"""Cue and time awareness proven at a real caller (issue 16, part 3): the CI subset.

``tandem run`` on the embedded offline models (perception on) as a subprocess on
127.0.0.1, one server for the four calls. A real aiortc peer speaks with piper's
joe voice and sends a synthetic webcam (a room, a person; noise, auto-exposure),
VP8-encoded by aiortc like a browser's camera at 640x480 (and one wave in H.264); it records the bot's audio
as it arrives and transcribes it with Whisper base. Every assertion is on what the
caller heard and when, never on the server's logs. The whole suite (two screen
changes, two waves, squats for n = 3..10, the timer) and its latencies are
``benchmarks/bench_cues_caller.py``.

Cut for CI time (it was ~4 min, over half of it the server's warm-up): the calls
wait less (``ci_suite``: 3 s of stillness before the event, not 6; squats at a
1.8 s period), the caller's voice and ears load while the server warms up, and
the server's background role is the 0.5B instead of the 1.5B: no watch reaches
the background (a watch request is acknowledged by the awareness gate, never
delegated), and warming the 1.5B's prompt on one reniced core was most of the
warm-up. The benchmark runs the default server.
"""

from __future__ import annotations

import asyncio

import pytest

from pipecat_tandem.bench.caller.ears import CallerEars
from pipecat_tandem.bench.caller.server import tandem_run
from pipecat_tandem.bench.caller.voice import CallerVoice
from pipecat_tandem.bench.caller.watch_call import WatchCaller
from pipecat_tandem.bench.caller.watches import WatchResult, ci_suite

pytestmark = pytest.mark.slow


#: The background model is never used by a watch call; the 0.5B warms up faster.
_SERVER_ARGS = ["--background", "local:0.5b"]


async def _suite(tmp_path) -> dict[str, WatchResult]:
    # Piper and Whisper load in a thread while the server warms up its models.
    ready = asyncio.create_task(asyncio.to_thread(lambda: (CallerVoice(steady=True), CallerEars())))
    out: dict[str, WatchResult] = {}
    async with tandem_run(_SERVER_ARGS, log=tmp_path / "server.log") as base:
        voice, ears = await ready
        caller = WatchCaller(base, voice, ears)
        suite = ci_suite()
        for watch in suite:
            record = await caller.call(watch)
            out[watch.kind] = caller.grade(record, caller.hear(record))
        # The same wave from a camera that sends H.264 (Safari's and many phones'
        # default), negotiated as a browser preferring it would.
        h264 = WatchCaller(base, voice, ears, video_codec="H264")
        record = await h264.call(next(w for w in suite if w.kind == "wave"))
        out["wave_h264"] = h264.grade(record, h264.hear(record))
        _CODECS["wave_h264"] = record.peer.video_codec
    return out


#: The camera codec each extra call really used (from the server's answer).
_CODECS: dict[str, str | None] = {}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, WatchResult]:
    out = asyncio.run(_suite(tmp_path_factory.mktemp("cues_caller")))
    for r in out.values():
        print(r.to_json())  # shown with -s, and in the report of a failure
    return out


def test_every_request_is_acknowledged_not_answered(results):
    for r in results.values():
        assert r.acknowledged and not r.ack_claims, r


def test_the_screen_change_is_said_within_a_second_and_nothing_before(results):
    r = results["change"]
    assert r.early_speech_s < 0.3, r
    assert r.latency_s is not None and 0.0 <= r.latency_s <= 1.0, r


def test_a_wave_is_seen_while_stillness_is_not(results):
    r = results["wave"]
    assert r.early_speech_s < 0.3 and r.on_time, r


def test_a_wave_sent_as_h264_is_seen_too(results):
    assert _CODECS["wave_h264"] == "H264"
    r = results["wave_h264"]
    assert r.acknowledged and not r.ack_claims, r
    assert r.early_speech_s < 0.3 and r.on_time, r


def test_three_squats_are_counted_three(results):
    r = results["count"]
    assert r.early_speech_s < 0.3 and r.counted == 3, r


def test_ten_seconds_are_announced_at_ten_and_not_before(results):
    r = results["timer"]
    assert r.early_speech_s < 0.3, r
    assert r.latency_s is not None and abs(r.latency_s) <= 0.5, r
