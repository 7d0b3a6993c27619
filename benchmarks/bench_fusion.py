#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""Encoder-free fusion cost per 200 ms micro-turn on ONE core.

16 kHz mono audio (20 ms transport chunks) + 640x480 RGB video at 5 fps (one image per
micro-turn, a moving shape over a noisy textured background; ``--size`` for another
camera). Stages timed per micro-turn: ingest (downmix/resample + MicroTurnAssembler
placement and emission), dMel, patch embedding (hMLP), the cues' view (the frame at
480 px high for the cue detectors; nothing at 480 px), cues (speech, visual change,
repetition).

Run:  .venv/bin/python benchmarks/bench_fusion.py [--turns 300] [--hidden 24] [--pool 4]
      .venv/bin/python benchmarks/bench_fusion.py --size 1280 720 [--full-size]

``--hidden``/``--pool`` set the PatchEmbedder's inner width and pre-pooling (defaults 24
and 4: the documented ``tandem.fused/2`` stem).
"""

import os

# Must precede the numpy import: OpenBLAS threads on shared cores make the small
# matrices of this workload several times slower (see docs/bench/fusion.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from pipecat_tandem.fusion import (  # noqa: E402
    CueDetector,
    DMelEncoder,
    MicroTurnAssembler,
    PatchEmbedder,
    StreamResampler,
    to_mono,
)
from pipecat_tandem.fusion.cue_view import CueView  # noqa: E402


def make_media(turns, rng, w=640, h=480):
    sr = 16000
    t = np.arange(turns * 3200) / sr
    speech = np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.3 * t) > 0) * 6000
    audio = (speech + rng.standard_normal(t.size) * 200).astype(np.int16)
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=-1).astype(np.float32)
    bank = np.clip(bg + rng.normal(0, 6, (7, h, w, 3)), 0, 255).astype(np.uint8)
    frames = []
    for i in range(turns):
        img = bank[i % 7].copy()
        cx = int(w / 2 + w * 0.23 * np.sin(2 * np.pi * i * 0.2 / 2.0))
        r = w // 16
        img[h * 5 // 12 : h * 7 // 12, cx - r : cx + r] = (250, 30, 30)
        frames.append(img)
    return audio, frames


def clock():
    # CPU time of this thread: the work done, not the time other tenants of the shared
    # core took while we were preempted (wall time is reported separately).
    return time.thread_time()


def stats(xs):
    a = np.asarray(xs) * 1e3
    return float(np.median(a)), float(np.percentile(a, 95))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=300)
    ap.add_argument("--hidden", type=int, default=24, help="PatchEmbedder inner width")
    ap.add_argument("--pool", type=int, default=4, help="PatchEmbedder pre-pooling factor")
    ap.add_argument("--size", type=int, nargs=2, default=[640, 480], metavar=("W", "H"))
    ap.add_argument(
        "--full-size",
        action="store_true",
        help="embed a frame taller than 480 px at its own size too (max_height=None)",
    )
    args = ap.parse_args()
    w, h = args.size
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rng = np.random.default_rng(0)
    audio, frames = make_media(args.turns, rng, w, h)
    asm = MicroTurnAssembler()
    rs = StreamResampler(in_rate=16000)
    dmel = DMelEncoder().stream()
    emb = PatchEmbedder(hidden=args.hidden, pool=args.pool)
    view = CueView(emb)
    cues = CueDetector()
    keys = ("ingest", "dmel", "patches", "view", "cues")
    times = {k: [] for k in (*keys, "total", "wall")}
    n_cues = 0
    for _ in range(2):  # warm-up (allocations, cv2 init)
        emb.embed(frames[0])
    for i in range(args.turns):
        base = i * 0.2
        chunks = [audio[i * 3200 + k * 320 : i * 3200 + (k + 1) * 320].tobytes() for k in range(10)]
        image_bytes = frames[i].tobytes()
        w0 = time.perf_counter()
        t0 = clock()
        for k, raw in enumerate(chunks):
            pcm = rs.process(to_mono(raw, num_channels=1))
            asm.add_audio(pcm, arrival=base + (k + 1) * 0.02)
        asm.add_image((w, h, image_bytes), time=base + 0.01, now=base + 0.2)
        turns = asm.poll(base + 0.2 + 0.1 + 1e-6)
        spent = {k: 0.0 for k in keys}
        spent["ingest"] = clock() - t0
        for turn in turns:
            t1 = clock()
            codes = dmel.push(turn.audio)
            hop_times = turn.start + np.arange(codes.shape[0]) * 0.01
            t2 = clock()
            rgbs, embs, seen, img_times = [], [], [], []
            for ts, (iw, ih, data) in turn.images:
                rgbs.append(np.frombuffer(data, np.uint8).reshape(ih, iw, 3))
                # As EncoderFreeFusionProcessor: a frame taller than the cues' 480 px
                # is embedded at 480 px, once, for the stream and the cues alike.
                shrink = ih > view.height and not args.full_size
                embs.append(view.embed(rgbs[-1]) if shrink else emb.embed(rgbs[-1]))
                img_times.append(ts)
            t3 = clock()
            seen = [
                e if rgb.shape[0] > view.height and not args.full_size else view.embed(rgb, e)
                for rgb, e in zip(rgbs, embs, strict=True)
            ]
            t4 = clock()
            n_cues += len(cues.update(codes, hop_times, seen, img_times))
            t5 = clock()
            spent["dmel"] += t2 - t1
            spent["patches"] += t3 - t2
            spent["view"] += t4 - t3
            spent["cues"] += t5 - t4
        if not turns:
            continue
        for k, v in spent.items():
            times[k].append(v)
        times["total"].append(sum(spent.values()))
        times["wall"].append(time.perf_counter() - w0)
    print(
        f"machine: {platform.machine()} {os.cpu_count()} vCPU (shared), pinned to 1 core, "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, numpy {np.__version__}"
    )
    print(f"micro-turns: {args.turns} (200 ms, 16 kHz audio + {w}x{h} @ 5 fps), cues: {n_cues}")
    print("| stage (CPU time per micro-turn) | median ms | p95 ms |")
    print("|---|---|---|")
    for k in (*keys, "total", "wall"):
        med, p95 = stats(times[k][5:])
        print(f"| {k} | {med:.3f} | {p95:.3f} |")
    med_total, _ = stats(times["total"][5:])
    med_wall, _ = stats(times["wall"][5:])
    print(f"real-time factor, CPU (200 ms / median total): {200.0 / med_total:.0f}x")
    print(f"real-time factor, wall (200 ms / median wall): {200.0 / med_wall:.0f}x")


if __name__ == "__main__":
    main()
