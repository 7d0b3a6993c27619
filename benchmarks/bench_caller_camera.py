"""What the caller's camera really delivers: frames per second arriving and the cues on them.

The bench caller's camera (:class:`SceneCamera`: the scene rendered in Python in real
time, a person standing still, then waving for 4 s) is sent by a real aiortc peer to
a second aiortc peer on loopback (VP8, aiortc's own encoder settings and bitrate
control). The receiver counts decoded frames as they arrive, keeps them the way the
server does (pipecat's SmallWebRTC video sampler at 5 fps, live, then the ingest's
one image per 0.2 s slot), embeds them in the cues' view and runs the cue detectors.
Times are on the camera's clock, so the wave is at ``[still, still + 4)`` s.

    nice -n 10 .venv/bin/python benchmarks/bench_caller_camera.py --size 1280 720
    nice -n 10 .venv/bin/python benchmarks/bench_caller_camera.py --size 640 480 --runs 2
    nice -n 10 .venv/bin/python benchmarks/bench_caller_camera.py --runs 10 --before

Prints one JSON line per run. ``--before`` also runs the motion counter as it was
before its live-camera onset rules (no start-up warm-up, no onset over pairs of
images) on the *same* kept frames, a paired comparison (``cues_before``,
``wave_seen_before``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection
from pipecat.transports.video_in_sampler import _VideoInSampler
from threadpoolctl import threadpool_limits

from pipecat_tandem.bench.caller.camera import SceneCamera, Sensor
from pipecat_tandem.bench.caller.scenes import Person, Room, Wave
from pipecat_tandem.fusion.cue_view import CueView
from pipecat_tandem.fusion.cues import Cue, CueDetector, RepetitionCounter
from pipecat_tandem.fusion.patches import PatchEmbedder

_SLOTS_PER_S = 5.0  # the ingest keeps the latest image of each 0.2 s slot


async def _call(size: tuple[int, int], seed: int, hz: float, still: float) -> dict[str, Any]:
    person = Person(Room(seed), wave=Wave(still, seconds=4.0, hz=hz), seed=seed + 3)
    cam = SceneCamera(person, fps=15.0, size=size, sensor=Sensor(seed=seed))
    tx, rx = RTCPeerConnection(), RTCPeerConnection()
    tx.addTrack(cam)
    got: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    rx.on("track", got.set_result)
    await tx.setLocalDescription(await tx.createOffer())
    await rx.setRemoteDescription(tx.localDescription)
    await rx.setLocalDescription(await rx.createAnswer())
    await tx.setRemoteDescription(rx.localDescription)
    track = await got
    sampler = _VideoInSampler(5)
    arrivals: list[float] = []
    slots: dict[int, tuple[float, np.ndarray]] = {}
    try:
        while not arrivals or arrivals[-1] < still + 6.0:
            frame = await track.recv()
            t = time.monotonic() - (cam.started_at or 0.0)
            arrivals.append(t)
            if sampler.sample()[0]:
                slots[math.floor(t * _SLOTS_PER_S)] = (t, frame.to_ndarray(format="rgb24"))
    finally:
        await tx.close()
        await rx.close()
    return {"arrivals": np.array(arrivals), "kept": [slots[k] for k in sorted(slots)]}


def _rate(arrivals: np.ndarray, lo: float, hi: float) -> float:
    return float(np.count_nonzero((arrivals >= lo) & (arrivals < hi))) / (hi - lo)


def _cues(times: list[float], embs: list[np.ndarray], det: CueDetector) -> list[Cue]:
    silence = np.zeros((0, 80), np.uint8)
    cues: list[Cue] = []
    with threadpool_limits(limits=1):
        for t, e in zip(times, embs, strict=True):
            cues += det.update(silence, np.zeros(0), [e], [t])
    return cues


def _seen(cues: list[Cue], lo: float, hi: float) -> bool:
    """A ``periodic_motion`` cue during the wave (or within 0.5 s of its end)."""
    return any(c.kind == "periodic_motion" and lo <= c.time <= hi + 0.5 for c in cues)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, nargs=2, default=[1280, 720])
    p.add_argument("--seed", type=int, default=1, help="the bench caller's wave_1 person")
    p.add_argument("--hz", type=float, default=1.2)
    p.add_argument("--still", type=float, default=6.0, help="seconds standing before the wave")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--before", action="store_true", help="also the counter before, same frames")
    args = p.parse_args()
    size = (args.size[0], args.size[1])
    for _ in range(args.runs):
        res = asyncio.run(_call(size, args.seed, args.hz, args.still))
        arr, kept = res["arrivals"], res["kept"]
        emb = PatchEmbedder()
        view = CueView(emb)
        with threadpool_limits(limits=1):
            embs = [view.embed(rgb, emb.embed(rgb)) for _, rgb in kept]
        times = [t for t, _ in kept]
        cues = _cues(times, embs, CueDetector())
        kept_t = np.array([t for t, _ in kept])
        lo, hi = args.still, args.still + 4.0
        out = {
            "size": f"{size[0]}x{size[1]}",
            "fps_arriving_still": round(_rate(arr, 1.0, lo), 1),
            "fps_arriving_wave": round(_rate(arr, lo, hi), 1),
            "kept_per_s_wave": round(_rate(kept_t, lo, hi), 1),
            "kept_gap_max_s": round(float(np.diff(kept_t).max()), 2),
            "decoded": list(kept[-1][1].shape[:2]),
            "cues": [(c.kind, round(c.time, 1)) for c in cues],
            "wave_seen": _seen(cues, lo, hi),
        }
        if args.before:
            old = RepetitionCounter(warmup=0.0, sustained_images=1_000_000)
            before = _cues(times, embs, CueDetector(repetition=old))
            out["cues_before"] = [(c.kind, round(c.time, 1)) for c in before]
            out["wave_seen_before"] = _seen(before, lo, hi)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
