"""The bot's Whisper tiny.en on the caller's voice: greedy decoding against a small beam.

Every sentence the conversation suite's caller says (and the user lines of pipecat's
release evals) is synthesized ``--takes`` times with the caller's voice (piper, joe:
each synthesis differs, as a person's takes do), sent through aiortc's Opus encoder
and decoder at a call's settings, resampled to 16 kHz and padded the way the
segmented STT hands a segment over (0.3 s before, 0.7 s after). Each clip is then
transcribed by the bot's fitted-window Whisper with every beam width asked for, in
turn on the same clip, so the comparison is paired and the machine's noise falls on
all widths alike. Word errors are counted against the text that was said (numbers
written in words count as errors for every width alike).

Run: .venv/bin/python benchmarks/bench_stt_beam.py [--beams 1 3 5] [--takes 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from bench_stt_window import word_errors, words  # noqa: E402
from faster_whisper import WhisperModel  # noqa: E402

from pipecat_tandem.bench.caller.codec_loop import through_opus  # noqa: E402
from pipecat_tandem.bench.caller.conversations import CONVERSATIONS  # noqa: E402
from pipecat_tandem.bench.caller.voice import CallerVoice, to_int16  # noqa: E402
from pipecat_tandem.models.weights import whisper_model_dir  # noqa: E402
from pipecat_tandem.turns.whisper_window import WindowedWhisper  # noqa: E402

#: The user lines of pipecat's release evals (tests/data/release_evals/scenarios).
EVAL_LINES = (
    "What's the weather in San Francisco? Use Fahrenheit.",
    "Tell me a short story about a sea turtle.",
    "Actually, I've changed my mind. Tell me a joke instead.",
    "What is the capital of France?",
    "Tell me a long, detailed story about the history of Paris.",
    "Actually, never mind that. What's the capital of Japan?",
)


def sentences() -> list[str]:
    """Every distinct sentence the suite's caller and the evals' user say."""
    seen: dict[str, None] = {}
    for conversation in CONVERSATIONS:
        for turn in conversation.turns:
            for line in turn.say:
                seen.setdefault(line, None)
    for line in EVAL_LINES:
        seen.setdefault(line, None)
    return list(seen)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--takes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    voice = CallerVoice()
    model = WhisperModel(
        str(whisper_model_dir()),
        compute_type="int8",
        cpu_threads=args.threads,
        local_files_only=True,
    )
    decoders = {b: WindowedWhisper(model, beam_size=b) for b in args.beams}
    rows = []
    lines = sentences()
    for take in range(args.takes):
        for line in lines:
            pcm16k = through_opus(to_int16(voice.sentence(line)))
            speech = pcm16k.astype(np.float32) / 32768.0
            clip = np.concatenate([np.zeros(4800, np.float32), speech, np.zeros(11200, np.float32)])
            row: dict[str, object] = {"sentence": line, "take": take}
            for beam, decoder in decoders.items():
                t = time.perf_counter()
                text = decoder.transcribe(clip).text
                row[f"s_{beam}"] = time.perf_counter() - t
                row[f"text_{beam}"] = text
                row[f"errors_{beam}"] = word_errors(line, text)
            rows.append(row)
    n_words = sum(len(words(str(r["sentence"]))) for r in rows)
    summary = {"clips": len(rows), "words": n_words, "threads": args.threads}
    for beam in args.beams:
        errors = sum(int(r[f"errors_{beam}"]) for r in rows)  # type: ignore[call-overload]
        times = [float(r[f"s_{beam}"]) for r in rows]  # type: ignore[arg-type]
        summary[f"beam_{beam}"] = {
            "wer": round(errors / n_words, 4),
            "clips_with_errors": sum(1 for r in rows if r[f"errors_{beam}"]),
            "p50_s": round(statistics.median(times), 3),
            "p90_s": round(sorted(times)[int(0.9 * (len(times) - 1))], 3),
        }
    print(json.dumps(summary, indent=2))
    base = args.beams[0]
    for r in rows:
        texts = {b: r[f"text_{b}"] for b in args.beams}
        if len({str(t) for t in texts.values()}) > 1 or r[f"errors_{base}"]:
            said = ", ".join(f"{b}: {t!r} ({r[f'errors_{b}']})" for b, t in texts.items())
            print(f"- {r['sentence']!r} take {r['take']}: {said}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
