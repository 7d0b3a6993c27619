"""The caller's speech cues through Opus in room noise: how late the onset, how far off the offset.

Every line of ``SPEECH_LINES`` (piper's joe voice, which varies a little from one
synthesis to the next: ``--reps`` syntheses each) is put after 1 s and before 3 s of
room noise (white, pink, brown; ``--levels`` dBFS), sent through aiortc's Opus
encoder and decoder at a call's settings, and heard by the server's
``SpeechEnergyDetector`` 200 ms at a time. "Tell me when I stop talking" needs one
onset where the voice starts and one offset where it ends.

    nice -n 10 .venv/bin/python benchmarks/bench_speech_cues.py
    nice -n 10 .venv/bin/python benchmarks/bench_speech_cues.py --mean-code  # the old level

``--mean-code`` measures the level the detector used before (the speech band's mean
code, not its power), for comparison. Prints a markdown table; ``--out`` keeps rows.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from pipecat_tandem.bench.caller.calibration import SPEECH_LINES, speech_clip, voice_span
from pipecat_tandem.bench.caller.codec_loop import hear_speech, through_opus
from pipecat_tandem.bench.caller.voice import CallerVoice
from pipecat_tandem.fusion.cues import SpeechEnergyDetector


class _MeanCode(SpeechEnergyDetector):
    """The level before: the band's mean code."""

    def _energy(self, band: np.ndarray) -> np.ndarray:
        return np.add.reduce(band, axis=1, dtype=np.float64) / band.shape[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=4, help="syntheses of each line")
    p.add_argument("--levels", type=float, nargs="*", default=[-55.0, -50.0, -45.0, -42.0])
    p.add_argument("--colors", nargs="*", default=["white", "pink", "brown"])
    p.add_argument("--mean-code", action="store_true", help="the old level (mean code)")
    p.add_argument("--out", default="speech_cues.json")
    args = p.parse_args()
    make = _MeanCode if args.mean_code else SpeechEnergyDetector
    voice = CallerVoice()
    rows = []
    t0 = time.monotonic()
    with threadpool_limits(limits=1):
        for rep in range(args.reps):
            for i, line in enumerate(SPEECH_LINES):
                spoken = voice.utterance([line], 0.0)
                start, end = voice_span(spoken)
                for color in args.colors:
                    for level in args.levels:
                        pcm = speech_clip(spoken, noise_dbfs=level, seed=i + 100 * rep, color=color)
                        cues = hear_speech(through_opus(pcm), make())
                        on = [c.time - start for c in cues if c.kind == "speech_onset"]
                        off = [c.time - end for c in cues if c.kind == "speech_offset"]
                        rows.append(
                            {"line": i, "rep": rep, "color": color, "dbfs": level,
                             "onsets": on, "offsets": off}
                        )  # fmt: skip
    Path(args.out).write_text(json.dumps(rows, indent=1))
    print(f"{len(rows)} clips in {time.monotonic() - t0:.0f} s ({make.__name__})\n")
    print("| noise | clips | one onset, one offset | onset late p50 / p90 / max (s) "
          "| offset error min / max (s) | onset > 0.3 s late |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for color in args.colors:
        for level in args.levels:
            sel = [r for r in rows if r["color"] == color and r["dbfs"] == level]
            one = [r for r in sel if len(r["onsets"]) == 1 and len(r["offsets"]) == 1]
            late = np.array([r["onsets"][0] for r in sel if r["onsets"]] or [np.nan])
            off = np.array([r["offsets"][-1] for r in sel if r["offsets"]] or [np.nan])
            print(
                f"| {color} {level:g} dBFS | {len(sel)} | {len(one)} | "
                f"{np.median(late):.2f} / {np.quantile(late, 0.9):.2f} / {late.max():.2f} | "
                f"{off.min():+.2f} / {off.max():+.2f} | {int(np.sum(late > 0.3))} |"
            )


if __name__ == "__main__":
    main()
