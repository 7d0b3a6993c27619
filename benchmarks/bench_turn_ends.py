"""Where a turn ends: smart-turn alone, and smart-turn with the words (a diagnostic).

    nice -n 10 .venv/bin/python benchmarks/bench_turn_ends.py [--takes 3] [--json out.json]

The caller's lines (the conversation suite's and pipecat's release-eval scenarios')
are spoken by the caller's voice (piper joe, several syntheses: piper varies its
timing from one to the next). Each line's pauses are found as the VAD would
(``--pause`` s of quiet or more). At every pause and at the end, as the bot would:

- smart-turn v3 (pipecat's bundled model) on the turn's audio so far plus the VAD's
  0.2 s of quiet: "complete" at p >= 0.5;
- the bot's Whisper tiny.en on the last stretch of voice (since the previous pause),
  given the earlier words, with quiet before and after it as pipecat's segments have;
- :class:`~pipecat_tandem.turns.transcript_end.TurnEndByWords` on those words.

It counts, with smart-turn alone and with the words:

- **split**: a pause *inside a sentence* (a comma's) that ends the turn. With the
  words, an open ending holds it until ``open_quiet_s``; the pause is shorter, so
  no split;
- **late**: a line's end smart-turn calls incomplete: the turn waits for its
  silence limit (2-3 s at the caller). With the words, a finished question ends
  after ``finished_quiet_s``;
- **held end**: a line's end both call complete but the words call open (the reply
  waits ``open_quiet_s`` instead of ~0.45 s);
- **early**: a pause inside a line that the words end although smart-turn said
  incomplete (a question mark before the caller was done).

Pauses *between* the sentences of a turn (the suite joins them with 0.6-0.8 s) are
reported apart: ending a turn there is not wrong. The in-call effect is measured
at the caller by ``bench_conversation.py``; this is the mechanism, offline.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pipecat_tandem.bench.caller.conversations import CONVERSATIONS  # noqa: E402
from pipecat_tandem.bench.caller.script import SENTENCE_PAUSES_S  # noqa: E402
from pipecat_tandem.bench.caller.voice import PEER_RATE, CallerVoice, resample  # noqa: E402
from pipecat_tandem.turns.transcript_end import Ending, TurnEndByWords  # noqa: E402

RATE = 16000
SCENARIOS = ROOT / "tests/data/release_evals/scenarios"
VAD_STOP_S = 0.2
#: When the voice's "complete" ends a turn, after the voice (the VAD's stop starts
#: the analysis at 0.1 s of quiet): a 0.30-0.37 s comma pause split a turn in a call.
END_S = 0.3


@dataclass
class Point:
    """A pause (or a line's end) as the bot meets it."""

    line: str
    take: int
    at_s: float
    kind: str  # "inside" a sentence, "between" sentences, "end" of the line
    pause_s: float  # 0 at the end
    p: float  # smart-turn's probability of "complete"
    words: str  # the bot's Whisper on the last stretch

    def ends(self, words: TurnEndByWords | None) -> bool:
        """The turn ends here: within the pause, or at the line's end before the silence limit.

        The voice's "complete" ends a turn :data:`END_S` after the voice; the
        words' wait counts from the voice too; "incomplete" waits for smart-turn's
        silence limit (2-3 s), longer than any pause here.
        """
        complete = self.p >= 0.5
        if words is None:
            needed = END_S if complete else math.inf
        else:
            wait = words.wait_s(self.words, voice_says_complete=complete, quiet_s=0.0)
            needed = math.inf if wait is None else max(END_S, wait)
        if self.kind == "end":
            return needed < math.inf
        return needed < self.pause_s


def caller_lines() -> list[list[str]]:
    lines: list[list[str]] = []
    for conversation in CONVERSATIONS:
        lines += [list(t.say) for t in conversation.turns if t.say]
    for path in sorted(SCENARIOS.glob("*.yaml")):
        for turn in yaml.safe_load(path.read_text().replace("!include", "")).get("turns") or []:
            if isinstance(turn, dict) and isinstance(turn.get("user"), str):
                lines.append([turn["user"]])
    unique: list[list[str]] = []
    for line in lines:
        if line not in unique:
            unique.append(line)
    return unique


def pauses(audio: np.ndarray, min_s: float) -> list[tuple[float, float]]:
    """(start, length) of the quiet stretches inside ``audio`` (20 ms frames)."""
    win = RATE // 50
    n = len(audio) // win
    rms = np.sqrt(np.mean(audio[: n * win].reshape(n, win) ** 2, axis=1))
    quiet = rms < 0.01
    found, i = [], 0
    while i < n:
        if not quiet[i]:
            i += 1
            continue
        j = i
        while j < n and quiet[j]:
            j += 1
        if i > 0 and j < n and (j - i) / 50 >= min_s:
            found.append((i / 50, (j - i) / 50))
        i = j
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--takes", type=int, default=3, help="syntheses of each line")
    parser.add_argument("--pause", type=float, default=VAD_STOP_S, help="a VAD stop, s")
    parser.add_argument("--json", type=Path, help="write every point here")
    parser.add_argument("--replay", type=Path, help="tabulate the points of an earlier --json")
    args = parser.parse_args()
    if args.takes < 1:
        parser.error("--takes must be >= 1")
    words = TurnEndByWords()
    if args.replay:
        report([Point(**q) for q in json.loads(args.replay.read_text())], words)
        return

    from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

    from pipecat_tandem.models.local_stt import LocalWhisperSTTService

    smart_turn = LocalSmartTurnAnalyzerV3(cpu_count=1)
    stt = LocalWhisperSTTService(cpu_threads=1)
    stt._load()  # the service's own model set-up, without a pipeline
    voice = CallerVoice()
    quiet = np.zeros(int(VAD_STOP_S * RATE), np.float32)
    silence = np.zeros(RATE // 2, np.float32)

    points: list[Point] = []
    for say in caller_lines():
        text = " ".join(say)
        for take in range(args.takes):
            sentences = [resample(voice.sentence(s), PEER_RATE, RATE) for s in say]
            joins, audio = [], sentences[0]
            for k, s in enumerate(sentences[1:]):
                joins.append(len(audio) / RATE)
                gap = np.zeros(int(SENTENCE_PAUSES_S[k % len(SENTENCE_PAUSES_S)] * RATE))
                audio = np.concatenate([audio, gap.astype(np.float32), s])
            cuts = [(at, length) for at, length in pauses(audio, args.pause)]
            cuts.append((len(audio) / RATE, 0.0))
            said, stretch_from = "", 0.0
            for at, length in cuts:
                end = at == len(audio) / RATE
                between = any(at - 0.3 <= j <= at + length + 0.05 for j in joins)
                kind = "end" if end else "between" if between else "inside"
                turn = np.concatenate([audio[: int(at * RATE)], quiet])
                p = float(smart_turn._predict_endpoint(turn)["probability"])
                # As pipecat hands a segment over: its pre-roll (here up to 0.5 s of
                # what came before), the VAD's quiet, then 0.5 s of zeros.
                lead = max(0.0, stretch_from - 0.5)
                stretch = audio[int(lead * RATE) : int(at * RATE)]
                segment = np.concatenate([silence, stretch, quiet, silence])
                pcm = (np.clip(segment, -1, 1) * 32767).astype(np.int16)
                heard = stt.transcribe_pcm(pcm.tobytes(), said).strip()
                points.append(Point(text, take, round(at, 2), kind, length, round(p, 3), heard))
                said = f"{said} {heard}".strip()
                stretch_from = at + length
            print(
                " | ".join(
                    f"{q.kind[:3]} p={q.p:.2f} {words.ending(q.words).value[:4]} [{q.words}]"
                    for q in points
                    if q.line == text and q.take == take
                ),
                flush=True,
            )

    report(points, words)
    if args.json:
        args.json.write_text(json.dumps([asdict(q) for q in points], indent=1))


def report(points: list[Point], words: TurnEndByWords) -> None:
    """The table: each count with smart-turn alone and with the words."""

    def count(kind: str, ends: bool, by: TurnEndByWords | None) -> str:
        ps = [q for q in points if q.kind == kind]
        return f"{sum(q.ends(by) == ends for q in ps)}/{len(ps)}"

    ends = [q for q in points if q.kind == "end"]
    held = sum(q.p >= 0.5 and words.ending(q.words) is Ending.OPEN for q in ends)
    inside = [q for q in points if q.kind != "end" and q.p < 0.5]
    early = sum(q.ends(words) for q in inside)
    print("\n| | smart-turn alone | with the words |\n|---|---|---|")
    print(
        f"| split inside a sentence | {count('inside', True, None)} | {count('inside', True, words)} |"
    )
    print(
        f"| ended between sentences | {count('between', True, None)} | {count('between', True, words)} |"
    )
    print(f"| late at a line's end | {count('end', False, None)} | {count('end', False, words)} |")
    print(f"| held at a line's end ({words.open_quiet_s} s) | 0/{len(ends)} | {held}/{len(ends)} |")
    print(f"| ended inside a line smart-turn held | 0/{len(inside)} | {early}/{len(inside)} |")


if __name__ == "__main__":
    main()
