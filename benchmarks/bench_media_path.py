#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""CPU of one call's media path, per stage, in % of one core (issue 14, part 1).

One call's audio, made once and then pushed through the same code a ``tandem run``
call runs, stage by stage, each timed with ``time.thread_time`` (the CPU this thread
did, not what other tenants of the shared machine took) and divided by the audio's
duration:

- **Opus decode**: aiortc's ``OpusDecoder`` on the caller's 20 ms packets (encoded
  beforehand with aiortc's ``OpusEncoder``, as a browser would; not timed: the
  caller pays for it).
- **resample 48k -> 16k**: what pipecat's SmallWebRTC input does with each decoded
  frame (PyAV ``AudioResampler("s16", "mono", 16000)``, then to int16 bytes).
- **VAD**: pipecat's ``SileroVADAnalyzer`` against our ``SilenceSkippingVADAnalyzer``
  on the transport's 20 ms chunks (``_run_analyzer``: model + volume + states), and
  once more through ``analyze_audio`` as the pipeline calls it (a hop to the VAD's
  executor thread per chunk; ``time.process_time``, all threads).
- **fusion, audio**: ingest (``MicroTurnAssembler``), dMel and the speech cue per
  200 ms micro-turn, audio only. Video perception is measured elsewhere
  (``bench_fusion.py``, ``bench_perception_cost.py``), not repeated here.
- **Opus encode, outbound**: the bot's 24 kHz output (speech or pipecat's
  auto-silence, 10 ms frames) through aiortc's ``OpusEncoder`` (its resampler to
  48 kHz stereo included): the transport sends audio for the whole call.

The call (``--seconds``, default 60 s): 30 % caller speech, 20 % digital silence (a
muted microphone), 50 % room noise (Gaussian, 30 LSB RMS = -61 dBFS at 48 kHz). Each
10 s holds 3 s of room noise, 3 s of the caller speaking (espeak-ng over the room
noise), 2 s of room noise and 2 s of the mute; columns differ in where the mute is:

- ``one 12 s mute``: all of it in one stretch mid-call (muted while busy),
- ``2 s mute every 10 s``: the worst case for skipping, which starts only after
  pipecat's own model reset inside a stretch (up to 2 s in),
- ``muted call``: a muted microphone all call long.

The bot speaks (espeak-ng, 24 kHz) during the first 3 s of each 10 s.

For scale, the same run times a camera's receive path (``--video W H``, ``--fps``):
aiortc's VP8 decoder and pipecat's YUV -> RGB conversion, on aiortc-encoded frames
of tests/support's moving test pattern (``time.process_time``: libvpx may thread).

    nice -n 10 .venv/bin/python benchmarks/bench_media_path.py --repeats 5
"""

from __future__ import annotations

import os

# As in bench_fusion.py: BLAS threads on shared cores slow the small matrices down.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import fractions  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from aiortc.codecs.opus import OpusDecoder, OpusEncoder  # noqa: E402
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload  # noqa: E402
from aiortc.jitterbuffer import JitterFrame  # noqa: E402
from loguru import logger  # noqa: E402
from pipecat.audio.vad.silero import SileroVADAnalyzer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.media import camera_frame, speech_pcm  # noqa: E402

from pipecat_tandem.fusion import (  # noqa: E402
    CueDetector,
    DMelEncoder,
    MicroTurnAssembler,
    StreamResampler,
    to_mono,
)
from pipecat_tandem.turns.silence_skipping_vad import SilenceSkippingVADAnalyzer  # noqa: E402

CHUNK = 640  # bytes: the transport's 20 ms at 16 kHz
PHRASES = (
    "What is the weather like in Paris today?",
    "Can you book a table for two at eight?",
    "Okay, and what about tomorrow morning?",
    "No, I meant the other one, the blue one.",
    "Thanks. Please send me the summary later.",
    "Hmm, let me think about it for a second.",
)


def _voice(text: str, rate: int, seconds: float) -> np.ndarray:
    pcm = np.frombuffer(speech_pcm(text, rate, 0.0, 0.0), np.int16).astype(np.float32)
    n = int(seconds * rate)
    return np.resize(pcm, n) if len(pcm) < n else pcm[:n]


def make_call(seconds: int, mute: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The caller's 48 kHz microphone and the bot's 24 kHz output, int16 mono.

    ``mute``: ``"one"`` (one muted stretch of 20 % of the call, mid-call),
    ``"cycles"`` (2 s muted at the end of every 10 s) or ``"all"``.
    """
    rng = np.random.default_rng(seed)
    n = seconds // 10
    mic: list[np.ndarray] = []
    bot: list[np.ndarray] = []
    for i in range(n):
        phrase = PHRASES[i % len(PHRASES)]
        talk = rng.normal(0, 30, 8 * 48000).astype(np.float32)  # room noise
        talk[3 * 48000 : 6 * 48000] += _voice(phrase, 48000, 3.0)
        out = np.zeros(8 * 24000, np.float32)
        out[: 3 * 24000] = _voice(PHRASES[(i + 3) % len(PHRASES)], 24000, 3.0)
        if mute == "cycles":
            mic += [talk, np.zeros(2 * 48000, np.float32)]
        else:
            if mute == "one" and i == n // 2:
                mic.append(np.zeros(2 * n * 48000, np.float32))
            mic.append(talk)
        bot += [out, np.zeros(2 * 24000, np.float32)]
    if mute == "all":
        mic = [np.zeros(seconds * 48000, np.float32)]

    def to16(parts: list[np.ndarray]) -> np.ndarray:
        return np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)

    return to16(mic), to16(bot)


def _frames(pcm: np.ndarray, rate: int, samples: int) -> list[av.AudioFrame]:
    out = []
    for k in range(len(pcm) // samples):
        f = av.AudioFrame.from_ndarray(pcm[None, k * samples : (k + 1) * samples], layout="mono")
        f.sample_rate = rate
        f.pts = k * samples
        f.time_base = fractions.Fraction(1, rate)
        out.append(f)
    return out


def encode_packets(pcm48: np.ndarray) -> list[JitterFrame]:
    """The caller's Opus packets, 20 ms each, as the browser would send them."""
    enc = OpusEncoder()
    packets = []
    for frame in _frames(pcm48, 48000, 960):
        payloads, ts = enc.encode(frame)
        packets += [JitterFrame(data=p, timestamp=ts) for p in payloads]
    return packets


def timed(fn: Callable[[], object], clock: Callable[[], float] = time.thread_time):
    """(CPU seconds, result) of one call of ``fn``."""
    t0 = clock()
    out = fn()
    return clock() - t0, out


def decode(packets: list[JitterFrame]) -> list[av.AudioFrame]:
    dec = OpusDecoder()
    return [f for p in packets for f in dec.decode(p)]


def resample(frames: list[av.AudioFrame]) -> bytes:
    # pipecat's SmallWebRTCClient.read_audio_frame, per decoded frame.
    rs = av.AudioResampler("s16", "mono", 16000)
    out = []
    for frame in frames:
        for f in rs.resample(frame):
            out.append(f.to_ndarray().astype(np.int16).tobytes())
    return b"".join(out)


def new_vad(cls: type[SileroVADAnalyzer]) -> SileroVADAnalyzer:
    vad = cls()
    vad.set_sample_rate(16000)  # the skipping VAD's silence table is built here, once
    return vad


def vad_sync(vad: SileroVADAnalyzer, pcm16: bytes) -> int:
    speaking = 0
    for i in range(0, len(pcm16), CHUNK):
        speaking += vad._run_analyzer(pcm16[i : i + CHUNK]).value == 3
    return speaking


def vad_async(vad: SileroVADAnalyzer, pcm16: bytes) -> None:
    async def run() -> None:
        for i in range(0, len(pcm16), CHUNK):
            await vad.analyze_audio(pcm16[i : i + CHUNK])

    asyncio.run(run())


def fusion_audio(pcm16: bytes) -> int:
    # bench_fusion.py's loop without images: what perception costs a call's audio.
    asm: MicroTurnAssembler = MicroTurnAssembler()
    rs = StreamResampler(in_rate=16000)
    dmel = DMelEncoder().stream()
    cues = CueDetector()
    n = 0
    for k, i in enumerate(range(0, len(pcm16), CHUNK)):
        now = (k + 1) * 0.02
        asm.add_audio(rs.process(to_mono(pcm16[i : i + CHUNK], num_channels=1)), arrival=now)
        if k % 10 == 9:
            for turn in asm.poll(now + 0.1 + 1e-6):
                codes = dmel.push(turn.audio)
                hops = turn.start + np.arange(codes.shape[0]) * 0.01
                n += len(cues.update(codes, hops, [], []))
    return n


def encode_video(seconds: int, fps: int, size: tuple[int, int]) -> list[JitterFrame]:
    """A camera's VP8 frames as aiortc sends them, reassembled as its jitter buffer does."""
    enc = Vp8Encoder()
    out = []
    for i in range(seconds * fps):
        frame = av.VideoFrame.from_ndarray(camera_frame(i, *size), format="rgb24")
        frame.pts = i * (90000 // fps)
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, ts = enc.encode(frame)
        out.append(JitterFrame(data=b"".join(vp8_depayload(p) for p in payloads), timestamp=ts))
    return out


def receive_video(frames: list[JitterFrame]) -> int:
    # aiortc's decoder, then pipecat's SmallWebRTCClient.read_video_frame conversion.
    dec = Vp8Decoder()
    n = 0
    for jf in frames:
        for f in dec.decode(jf):
            arr = f.to_ndarray(format=f.format.name)  # type: ignore[union-attr]
            n += len(cv2.cvtColor(arr, cv2.COLOR_YUV2RGB_I420).tobytes())
    return n


def encode_out(frames24: list[av.AudioFrame]) -> int:
    enc = OpusEncoder()
    return sum(len(enc.encode(f)[0]) for f in frames24)


MIXES = {
    "one": "one 12 s mute",
    "cycles": "2 s mute every 10 s",
    "all": "muted call",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60, help="call length, a multiple of 10")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--video", type=int, nargs=2, default=[640, 480], metavar=("W", "H"))
    ap.add_argument("--fps", type=int, default=15)
    args = ap.parse_args()
    logger.remove()  # pipecat's debug lines per VAD built
    seconds = 10 * (args.seconds // 10)

    calls = {m: make_call(seconds, m) for m in MIXES}
    packets = {m: encode_packets(mic) for m, (mic, _) in calls.items()}
    frames24 = _frames(calls["one"][1], 24000, 240)
    video = encode_video(seconds, args.fps, tuple(args.video))
    t0 = time.thread_time()
    new_vad(SilenceSkippingVADAnalyzer)
    table_ms = (time.thread_time() - t0) * 1e3

    # rows[stage][mix] -> % of one core, one per repeat
    rows: dict[str, dict[str, list[float]]] = {}
    inferences: dict[str, dict[str, int]] = {}
    zero_share: dict[str, float] = {}

    def add(stage: str, mix: str, cpu: float) -> None:
        rows.setdefault(stage, {}).setdefault(mix, []).append(100.0 * cpu / seconds)

    plain, skipping = SileroVADAnalyzer, SilenceSkippingVADAnalyzer
    for _ in range(args.repeats):
        for mix in MIXES:
            cpu, frames = timed(lambda m=mix: decode(packets[m]))
            add("Opus decode, inbound (aiortc)", mix, cpu)
            cpu, pcm16 = timed(lambda f=frames: resample(f))
            add("resample 48k stereo -> 16k mono (pipecat input)", mix, cpu)
            for cls in (plain, skipping):
                vad = new_vad(cls)
                cpu, _ = timed(lambda v=vad, a=pcm16: vad_sync(v, a))
                add(f"VAD {cls.__name__} (model + volume)", mix, cpu)
                inferences.setdefault(cls.__name__, {})[mix] = getattr(vad, "inferences", -1)
            for cls in (plain, skipping):
                vad = new_vad(cls)
                cpu, _ = timed(
                    lambda v=vad, a=pcm16: vad_async(v, a),
                    time.process_time,
                )
                add(f"VAD {cls.__name__}, as called (analyze_audio)", mix, cpu)
            cpu, _ = timed(lambda a=pcm16: fusion_audio(a))
            add("fusion, audio (ingest + dMel + speech cue)", mix, cpu)
            cpu, _ = timed(lambda: encode_out(frames24))
            add("Opus encode, outbound (aiortc, 24k -> 48k stereo)", mix, cpu)
            windows = len(pcm16) // 1024
            zeros = sum(
                not np.frombuffer(pcm16[i * 1024 : (i + 1) * 1024], np.int16).any()
                for i in range(windows)
            )
            zero_share[mix] = zeros / windows

    video_cpu = []
    for _ in range(args.repeats):
        cpu, _ = timed(lambda: receive_video(video), time.process_time)
        video_cpu.append(100.0 * cpu / seconds)

    med = {k: {m: statistics.median(v) for m, v in by.items()} for k, by in rows.items()}
    common = [k for k in med if not k.startswith("VAD")]
    for name in (plain.__name__, skipping.__name__):
        med[f"**total, {name}**"] = {
            m: sum(med[k][m] for k in common) + med[f"VAD {name}, as called (analyze_audio)"][m]
            for m in MIXES
        }
    print(
        f"machine: {platform.machine()} {os.cpu_count()} vCPU (shared), python "
        f"{platform.python_version()}, av {av.__version__}; {seconds} s call, "
        f"{args.repeats} repeats, medians; silence table built once: {table_ms:.0f} ms CPU"
    )
    print("| stage, % of one core per call | " + " | ".join(MIXES.values()) + " |")
    print("|---|" + "---|" * len(MIXES))
    for name, by in med.items():
        print(f"| {name} | " + " | ".join(f"{by[m]:.2f}" for m in MIXES) + " |")
    print(
        "| VAD windows of exact zeros after decode + resample | "
        + " | ".join(f"{100 * zero_share[m]:.0f} %" for m in MIXES)
        + " |"
    )
    n = seconds * 16000 // 512
    for name, by in inferences.items():
        print(
            f"| Silero inferences, {name} | "
            + " | ".join(f"{by[m] if by[m] >= 0 else n} / {n}" for m in MIXES)
            + " |"
        )
    w, h = args.video
    print(
        f"\nFor reference, not the audio path: a {w}x{h} camera at {args.fps} fps, VP8 decode "
        f"(aiortc) + YUV -> RGB (pipecat input): {statistics.median(video_cpu):.2f} % of one "
        f"core per call (min {min(video_cpu):.2f}, max {max(video_cpu):.2f}); test pattern, "
        f"{sum(len(f.data) for f in video) * 8 / seconds / 1000:.0f} kbit/s."
    )
    spread = max(max(v) - min(v) for by in rows.values() for v in by.values())
    print(f"largest max-min spread of a cell over repeats: {spread:.2f} points")


if __name__ == "__main__":
    main()
