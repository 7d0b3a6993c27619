"""Whisper tiny.en on a window fitted to the utterance against its fixed 30 s window.

Each of 16 short questions is synthesized with hibari, resampled to 16 kHz and
padded the way pipecat's segmented STT hands a segment over (1 s of pre-roll,
the speech, 0.7 s of silence). Both paths transcribe every clip with the same
loaded model (int8, greedy); times are medians over the clips, measured in one
run so the ratio holds on a noisy machine. Word errors are counted against the
text that was synthesized (lower-cased, punctuation and hyphens removed).

Run: .venv/bin/python benchmarks/bench_stt_window.py [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from faster_whisper import WhisperModel  # noqa: E402
from hibari import Hibari  # noqa: E402

from pipecat_tandem.models.weights import whisper_model_dir  # noqa: E402
from pipecat_tandem.turns.whisper_window import WindowedWhisper  # noqa: E402

SENTENCES = [
    "What is the capital of France?",
    "What is 1234 times 5678?",
    "Hi, how are you today?",
    "Tell me a joke.",
    "Can you plan a three day trip to Rome for me, with museums and good food?",
    "Never mind.",
    "Yes.",
    "No.",
    "What's the weather like tomorrow in London?",
    "Remind me in ten minutes to check the oven.",
    "How many legs does a spider have?",
    "Okay, thanks, that's all for now. Goodbye!",
    "What do bees make?",
    "Do you like music?",
    "What is a good name for a cat?",
    "Is a tomato a fruit?",
]


def words(text: str) -> list[str]:
    return re.sub(r"[^\w' ]", " ", text.lower().replace("-", " ")).split()


def word_errors(reference: str, hypothesis: str) -> int:
    """Levenshtein distance over words."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    tts = Hibari()
    clips = []
    for sentence in SENTENCES:
        audio24 = tts(sentence)
        audio = np.interp(np.arange(0, len(audio24), 1.5), np.arange(len(audio24)), audio24)
        clips.append(np.concatenate([np.zeros(16000), audio, np.zeros(11200)]).astype(np.float32))

    model = WhisperModel(
        str(whisper_model_dir()),
        compute_type="int8",
        cpu_threads=args.threads,
        local_files_only=True,
    )
    windowed = WindowedWhisper(model)

    def full(samples: np.ndarray) -> str:
        segments, _ = model.transcribe(
            samples,
            language="en",
            beam_size=1,
            condition_on_previous_text=False,
            without_timestamps=True,
        )
        return " ".join(s.text.strip() for s in segments)

    full(clips[0]), windowed.transcribe(clips[0])  # warm both paths
    rows = []
    for sentence, clip in zip(SENTENCES, clips, strict=True):
        times = {"full": [], "fitted": []}
        for _ in range(args.repeats):
            t = time.perf_counter()
            full_text = full(clip)
            times["full"].append(time.perf_counter() - t)
            t = time.perf_counter()
            result = windowed.transcribe(clip)
            times["fitted"].append(time.perf_counter() - t)
        rows.append(
            {
                "sentence": sentence,
                "full_s": statistics.median(times["full"]),
                "fitted_s": statistics.median(times["fitted"]),
                "full_text": full_text,
                "fitted_text": result.text,
                "fell_back": result.fell_back,
                "full_errors": word_errors(sentence, full_text),
                "fitted_errors": word_errors(sentence, result.text),
            }
        )
    n_words = sum(len(words(s)) for s in SENTENCES)
    full_p50 = statistics.median(r["full_s"] for r in rows)
    fitted_p50 = statistics.median(r["fitted_s"] for r in rows)
    summary = {
        "threads": args.threads,
        "clips": len(rows),
        "full_p50_s": round(full_p50, 3),
        "fitted_p50_s": round(fitted_p50, 3),
        "fitted_max_s": round(max(r["fitted_s"] for r in rows), 3),
        "speedup_p50": round(full_p50 / fitted_p50, 2),
        "full_wer": round(sum(r["full_errors"] for r in rows) / n_words, 3),
        "fitted_wer": round(sum(r["fitted_errors"] for r in rows) / n_words, 3),
        "fallbacks": sum(r["fell_back"] for r in rows),
        "differences": [
            (r["sentence"], r["full_text"], r["fitted_text"])
            for r in rows
            if words(r["full_text"]) != words(r["fitted_text"])
        ],
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "clips": rows}, indent=2))


if __name__ == "__main__":
    main()
