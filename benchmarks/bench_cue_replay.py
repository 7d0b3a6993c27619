"""Video cues replayed from cached embeddings: every calibration clip, every seed, in seconds.

``bench_cues_vp8.py`` films, encodes and decodes every clip each time (about an hour
for 12 seeds at four sender sizes on a shared core). The cue detectors only see the
cues' view embeddings (:class:`~pipecat_tandem.fusion.cue_view.CueView`) of the
decoded frames the server keeps, so ``cache`` stores those once per clip and sender
(the same path: ``film`` through a webcam sensor, aiortc's VP8 at a call's settings,
the server's 5 fps sampling), and ``replay`` runs the working tree's detectors on
them and grades them with :func:`~pipecat_tandem.bench.caller.calibration.check`.
``cache --codec h264`` caches the same clips through aiortc's H.264 instead (its
sender directories end in ``_h264``; ``replay`` replays every directory there is).

    nice -n 10 .venv/bin/python benchmarks/bench_cue_replay.py cache --senders 0 3 4 5 --seeds 0 1 2
    nice -n 10 .venv/bin/python benchmarks/bench_cue_replay.py cache --codec h264 --senders 0 5
    nice -n 10 .venv/bin/python benchmarks/bench_cue_replay.py replay --seeds 6 7 8 9 10 11
    nice -n 10 .venv/bin/python benchmarks/bench_cue_replay.py replay --no-habituation  # before it
    nice -n 10 .venv/bin/python benchmarks/bench_cue_replay.py replay \
        --counter '{"warmup": 0, "sustained_images": 1000}'  # before the live-camera onset rules

``--senders`` index ``bench_cues_vp8.GRID``. ``replay`` prints every wrong clip, a
markdown table (right / clips per kind and sender), how late the squats' motion
onset and offset came per sender (median and max, seconds after the body started
and stopped moving) and the detectors' CPU per image;
``--no-habituation`` replays the motion counter without its per-patch baseline (the
counter as before issue 16's fix); ``--counter`` passes other keyword arguments to
:class:`~pipecat_tandem.fusion.repetition.RepetitionCounter` (a JSON object).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from pipecat_tandem.bench.caller.calibration import (
    _VIDEO,
    check,
    clips,
    motion_delay_table,
    motion_delays,
)
from pipecat_tandem.bench.caller.codec_loop import CODECS
from pipecat_tandem.fusion.cues import CueDetector
from pipecat_tandem.fusion.repetition import RepetitionCounter

sys.path.insert(0, str(Path(__file__).parent))
from bench_cues_vp8 import GRID  # noqa: E402  (the senders, shared with the full bench)

_KINDS = ("idle", "still_person", "cut", "other_room", "lights_off", "enter", "wave", "squats")


def _kind(name: str) -> str:
    return next(k for k in _KINDS if name.startswith(k + "_"))


def cache(args: argparse.Namespace) -> None:
    """Film, encode, decode and embed each clip once; skip those already cached."""
    from pipecat_tandem.bench.caller.camera import Sensor, film
    from pipecat_tandem.bench.caller.codec_loop import through
    from pipecat_tandem.fusion.cue_view import CueView
    from pipecat_tandem.fusion.patches import PatchEmbedder

    emb = PatchEmbedder()
    view = CueView(emb)
    for gi in args.senders:
        size, fps, bitrate = GRID[gi]
        suffix = "" if args.codec == "vp8" else f"_{args.codec}"  # VP8's names as before
        out_dir = args.cache / f"{size[0]}x{size[1]}_{int(fps)}_{bitrate // 1000}{suffix}"
        out_dir.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            for clip in clips(seed):
                out = out_dir / f"{clip.name}.npz"
                if out.exists() or (args.only and _kind(clip.name) not in args.only):
                    continue
                t0 = time.process_time()
                sensor = Sensor(seed=zlib.crc32(clip.name.encode()) % 997)
                frames = film(list(clip.shots), fps=fps, size=size, sensor=sensor)
                ts, es = [], []
                for t, rgb in through(frames, args.codec, bitrate=bitrate):
                    ts.append(t)
                    es.append(view.embed(rgb, emb.embed(rgb)))
                np.savez(out, t=np.array(ts), e=np.stack(es).astype(np.float32))
                print(out_dir.name, clip.name, f"{time.process_time() - t0:.1f} s", flush=True)


def replay(args: argparse.Namespace) -> None:
    """The working tree's cues on every cached clip of ``args.seeds``, graded."""
    silence = np.zeros((0, 80), np.uint8)
    right: dict[tuple[str, str], list[bool]] = defaultdict(list)
    delays: dict[str, list[tuple[float | None, float | None]]] = defaultdict(list)
    cpu, images = 0.0, 0
    for sender in sorted(p for p in args.cache.iterdir() if p.is_dir()):
        for seed in args.seeds:
            for clip in clips(seed):
                f = sender / f"{clip.name}.npz"
                if not f.exists():
                    continue
                with np.load(f) as z:
                    times, embs = z["t"].tolist(), z["e"]
                counter = RepetitionCounter(habituate=not args.no_habituation, **args.counter)
                det = CueDetector(repetition=counter)
                cues = []
                t0 = time.process_time()
                for t, e in zip(times, embs, strict=True):
                    cues += det.update(silence, np.zeros(0), [e], [t])
                cpu, images = cpu + time.process_time() - t0, images + len(times)
                video = [c for c in cues if c.kind in _VIDEO]
                problems = check(clip, video)
                if clip.expect == "count":
                    delays[sender.name].append(motion_delays(clip, video))
                right[(sender.name, _kind(clip.name))].append(not problems)
                if problems:
                    print("wrong", sender.name, clip.name, problems, flush=True)
    senders = sorted({s for s, _ in right})
    print("\n| sender | " + " | ".join(_KINDS) + " |\n|---|" + "---|" * len(_KINDS))
    for s in senders:
        cells = [
            f"{sum(right[(s, k)])}/{len(right[(s, k)])}" if right[(s, k)] else "–" for k in _KINDS
        ]
        print(f"| {s} | " + " | ".join(cells) + " |")
    if delays:
        print("\nthe squats' motion cues\n\n" + motion_delay_table(dict(sorted(delays.items()))))
    if images:
        print(
            f"\nthe cue detectors: {1e6 * cpu / images:.0f} µs of CPU per image ({images} images)"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["cache", "replay"])
    p.add_argument("--cache", type=Path, default=Path("/tmp/cue_replay_cache"))
    p.add_argument("--seeds", type=int, nargs="*", default=list(range(12)))
    p.add_argument("--senders", type=int, nargs="*", default=[0, 3, 4, 5], help="GRID indices")
    p.add_argument("--only", nargs="*", choices=_KINDS, help="cache only these clip kinds")
    p.add_argument("--codec", choices=CODECS, default="vp8", help="cache through this codec")
    p.add_argument("--no-habituation", action="store_true", help="the counter without it")
    p.add_argument("--counter", type=json.loads, default={}, help="RepetitionCounter kwargs, JSON")
    args = p.parse_args()
    with threadpool_limits(limits=1):
        cache(args) if args.what == "cache" else replay(args)


if __name__ == "__main__":
    main()
