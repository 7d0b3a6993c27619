"""Benchmark of the embedded offline default (issue 4): turn latency, cold start, memory.

The pipeline `tandem run` builds, without its transport (``--pipeline tandem``, the
default: Whisper STT, awareness, delegation with the rule router, user aggregator
(Silero VAD + smart-turn v3), Qwen2.5 0.5B, interleaver, first-clause processor,
hibari TTS, assistant aggregator), or only the speech-and-LLM core
(``--pipeline bare``),

is fed pre-made speech (questions synthesized with hibari, resampled to 16 kHz) as 20 ms
``InputAudioRawFrame``s at real-time pace, followed by silence, exactly as a transport
would deliver a microphone. Latency = end of the user's speech (the last voiced 20 ms
chunk pushed: the clip's trailing quiet follows, as a microphone would keep sending)
→ the first audible sound leaving the TTS (the first ``TTSAudioRawFrame`` holding
10 ms at 1 % of full scale or more, plus that sound's offset in the frame). It therefore includes the VAD
stop time, the end-of-turn model, transcription, the LLM's first sentence and synthesis.

Two phases in one run, same process, same models:
  idle        — nothing else running;
  background  — the 1.5B background model generating continuously on its own core.

Also reported: cold start (weights located/verified + all models loaded and warmed;
after the first assembly) and resident memory.

Run: .venv/bin/python benchmarks/bench_local_turn.py [--turns 10]
     [--pipeline tandem|bare] [--plan priority|pinned|unpinned] [--full-window]
     [--first-sentence] [--no-early] [--interaction-model q4_0|shipped] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from loguru import logger  # noqa: E402
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import (  # noqa: E402
    LocalSmartTurnAnalyzerV3,
)
from pipecat.audio.utils import create_stream_resampler  # noqa: E402
from pipecat.audio.vad.silero import SileroVADAnalyzer  # noqa: E402
from pipecat.frames.frames import (  # noqa: E402
    AggregatedTextFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.processors.aggregators.llm_context import LLMContext  # noqa: E402
from pipecat.processors.aggregators.llm_response_universal import (  # noqa: E402
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from pipecat.turns.user_turn_strategies import UserTurnStrategies  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402

from pipecat_tandem.background.jobs import JobRegistry  # noqa: E402
from pipecat_tandem.bench.harness import worker_with_start_event  # noqa: E402
from pipecat_tandem.models.local_stack import CpuPlan, LocalStack  # noqa: E402
from pipecat_tandem.models.local_tts import float_to_pcm16  # noqa: E402
from pipecat_tandem.models.requantize import QWEN_05B_Q4_0  # noqa: E402
from pipecat_tandem.models.weights import QWEN_05B  # noqa: E402
from pipecat_tandem.pipelines.tandem import build_tandem_pipeline  # noqa: E402
from pipecat_tandem.policy.now_view import NowView  # noqa: E402
from pipecat_tandem.policy.routing import RuleRouter  # noqa: E402
from pipecat_tandem.turns import SpeculativeTurnStopStrategy  # noqa: E402
from pipecat_tandem.turns.early_smart_turn import EarlySmartTurnAnalyzer  # noqa: E402
from pipecat_tandem.turns.speech_end import window_rms  # noqa: E402

# BENCH_LOG=DEBUG shows the stage log lines that explain a turn's time.
_TRACE = ("cached tokens", "End of Turn", "transcription [", "User stopped", "VAD")
logger.remove()
logger.add(
    sys.stderr,
    level=os.environ.get("BENCH_LOG", "ERROR"),
    format="{time:HH:mm:ss.SSS} {message}",
    filter=lambda r: r["level"].no >= 40 or any(t in r["message"] for t in _TRACE),
)

QUESTIONS = [
    "Hi, how are you today?",
    "What is the capital of France?",
    "Tell me a joke.",
    "What's your name?",
    "What color is the sky?",
    "Do you like music?",
    "What is a good name for a cat?",
    "Can you say something nice?",
    "What's your favorite animal?",
    "How many legs does a spider have?",
    "Is a tomato a fruit?",
    "What do bees make?",
]
CHUNK_S = 0.02


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Probe(FrameProcessor):
    """Records the wall time of the first frame of some types after each arm()."""

    def __init__(self, name: str, types: tuple[type[Frame], ...]) -> None:
        super().__init__(name=name)
        self._types = types
        self.first: float | None = None
        self.first_text: str | None = None
        self.ended = asyncio.Event()

    def arm(self) -> None:
        self.first = None
        self.first_text = None
        self.ended.clear()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM:
            if isinstance(frame, self._types) and self.first is None:
                self.first = self.heard_at(frame, time.perf_counter())
                self.first_text = getattr(frame, "text", None)
            if isinstance(frame, LLMFullResponseEndFrame):
                self.ended.set()
        await self.push_frame(frame, direction)

    def heard_at(self, frame: Frame, arrived: float) -> float | None:
        """When the frame's content counts as arriving (None: not yet)."""
        return arrived


class AudibleProbe(Probe):
    """The first *audible* TTS audio: a frame's arrival plus the offset of its first
    10 ms at or above 1 % of full scale (a TTS may start with silence)."""

    def heard_at(self, frame: Frame, arrived: float) -> float | None:
        assert isinstance(frame, TTSAudioRawFrame)
        samples = np.frombuffer(frame.audio, dtype="<i2").astype(np.float64) / 32768.0
        window = max(1, frame.sample_rate // 100)
        rms = window_rms(samples, window)
        loud = np.nonzero(rms >= 0.01)[0]
        return arrived + int(loud[0]) * window / frame.sample_rate if loud.size else None


async def speech_16k(stack: LocalStack, text: str) -> tuple[bytes, bytes]:
    """The question as 16 kHz PCM, split into (voiced part, trailing quiet).

    hibari ends every clip with ~0.45 s of near-silence; the user stopped speaking
    where the voice ends, so that is where the latency clock starts.
    """
    audio = np.concatenate(stack.tts().synthesize(text))
    pcm = await create_stream_resampler().resample(float_to_pcm16(audio), 24000, 16000)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    window = int(16000 * CHUNK_S)
    rms = window_rms(samples, window)
    voiced_end = (int(np.nonzero(rms >= 0.05 * rms.max())[0][-1]) + 1) * window * 2  # -26 dB
    return pcm[:voiced_end], pcm[voiced_end:]


async def background_load(stack: LocalStack, stop: asyncio.Event, stats: dict) -> None:
    """Keep the background model generating (a long planning answer, over and over)."""
    server = stack.background_server
    assert server is not None
    request = {
        "messages": [
            {"role": "user", "content": "Plan a detailed two-week trip through Italy, day by day."}
        ],
        "max_tokens": 1500,
        "temperature": 0.7,
    }
    while not stop.is_set():
        started = time.perf_counter()
        tokens = 0
        async for _ in server.stream_chat(request):
            tokens += 1
            stats["tokens"] = stats.get("tokens", 0) + 1
            if stop.is_set():
                break
        stats["seconds"] = stats.get("seconds", 0.0) + time.perf_counter() - started


async def run_turns(
    stack: LocalStack,
    turns: int,
    label: str,
    audio: list[tuple[bytes, bytes]],
    kind: str,
    first_clause: bool = True,
    early: bool = True,
    turn_stop: str = "pipecat",
) -> list[dict]:
    stt = stack.stt()
    llm = stack.interaction_llm()
    tts = stack.tts()
    after_stt = Probe("after-stt", (TranscriptionFrame,))
    # The first text the TTS stage receives: an LLM token, or (with the first-clause
    # processor) the opening clause.
    after_llm = Probe("text-at-tts", (LLMTextFrame, AggregatedTextFrame))
    after_tts = AudibleProbe("after-tts", (TTSAudioRawFrame,))
    if kind == "tandem":
        # What `tandem run` builds (minus the transport): awareness, delegation
        # with the rule router, the interleaver, the background agent.
        analyzer = EarlySmartTurnAnalyzer() if early else LocalSmartTurnAnalyzerV3()
        # "deferred": the analysis off the aggregator's path, no early reply.
        user_params = (
            LLMUserAggregatorParams(
                vad_analyzer=SileroVADAnalyzer(),
                user_turn_strategies=UserTurnStrategies(
                    stop=[SpeculativeTurnStopStrategy(turn_analyzer=analyzer, speculate=False)]
                ),
                user_turn_stop_timeout=2.0,
            )
            if turn_stop == "deferred"
            else None
        )
        tandem = build_tandem_pipeline(
            interaction_llm=llm,
            background=stack.background_llm,
            stt=Pipeline([stt, after_stt]),
            tts=Pipeline([after_llm, tts, after_tts]),
            vad_analyzer=SileroVADAnalyzer(),
            turn_analyzer=analyzer,
            user_params=user_params,
            router=RuleRouter(),
            verbatim=True,
            # As build_services does for a local interaction model:
            now_view=NowView(only_when_informative=True),
            first_clause=first_clause,
            speculative_turns=turn_stop == "speculative",
            registry=JobRegistry(default_deadline_s=300.0),
        )
        pipeline = tandem.pipeline
    else:
        context = LLMContext()
        pair = LLMContextAggregatorPair(
            context, user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
        )
        pipeline = Pipeline(
            [stt, after_stt, pair.user(), llm, after_llm, tts, after_tts, pair.assistant()]
        )
    worker, started = worker_with_start_event(pipeline)

    results: list[dict] = []
    silence = bytes(int(16000 * CHUNK_S) * 2)

    async def push(pcm: bytes) -> None:
        step = int(16000 * CHUNK_S) * 2
        next_t = time.perf_counter()
        for i in range(0, len(pcm), step):
            chunk = pcm[i : i + step].ljust(step, b"\0")
            await worker.queue_frame(InputAudioRawFrame(chunk, 16000, 1))
            next_t += CHUNK_S
            await asyncio.sleep(max(0.0, next_t - time.perf_counter()))

    async def drive() -> None:
        await started.wait()
        await push(silence * 25)
        for turn in range(turns):
            for probe in (after_stt, after_llm, after_tts):
                probe.arm()
            voiced, trailing_quiet = audio[turn % len(audio)]
            await push(voiced)
            end_of_speech = time.perf_counter()
            await push(trailing_quiet)
            # Keep the microphone open (silence) until the reply has started and ended.
            deadline = end_of_speech + 30.0
            while time.perf_counter() < deadline and not (
                after_tts.first and after_llm.ended.is_set()
            ):
                await push(silence * 5)
            await push(silence * 25)
            row = {
                "phase": label,
                "turn": turn,
                "question": QUESTIONS[turn % len(QUESTIONS)],
                "latency_s": (after_tts.first - end_of_speech) if after_tts.first else None,
                "stt_s": (after_stt.first - end_of_speech) if after_stt.first else None,
                "text_at_tts_s": (after_llm.first - end_of_speech) if after_llm.first else None,
                "first_text": after_llm.first_text,
            }
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), drive())
    return results


def median(values: list[float | None]) -> float | None:
    ok = [v for v in values if v is not None]
    return statistics.median(ok) if ok else None


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument(
        "--plan",
        choices=("priority", "pinned", "unpinned", "shared"),
        default="priority",
        help="priority = the default CpuPlan (interaction on both cores, background "
        "reniced); pinned = one core each; unpinned = one thread each, no affinity; "
        "shared = both models on both cores, the background reniced",
    )
    parser.add_argument(
        "--pipeline",
        choices=("tandem", "bare"),
        default="tandem",
        help="tandem = the pipeline `tandem run` builds; bare = STT, LLM, TTS only",
    )
    parser.add_argument(
        "--first-sentence",
        action="store_true",
        help="TTS waits for the first full sentence (no early first clause)",
    )
    parser.add_argument(
        "--no-early",
        action="store_true",
        help="Whisper and smart-turn start only at the VAD's stop (not once the voice goes quiet)",
    )
    parser.add_argument(
        "--full-window", action="store_true", help="Whisper on its fixed 30 s window"
    )
    parser.add_argument(
        "--turn-stop",
        choices=("pipecat", "deferred", "speculative"),
        default="pipecat",
        help="pipecat = its blocking smart-turn stop strategy; deferred = smart-turn off the "
        "aggregator's path; speculative = deferred, and the reply starts on the transcript",
    )
    parser.add_argument(
        "--stt-threads",
        type=int,
        default=1,
        help="Whisper's threads (default 1, as LocalStack)",
    )
    parser.add_argument(
        "--interaction-model",
        choices=("q4_0", "shipped"),
        default="q4_0",
        help="q4_0 = the shipped 0.5B re-encoded in Q4_0 (the default stack); "
        "shipped = the Q4_K_M file as the part packages ship it",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    plans = {
        "priority": CpuPlan.for_roles(interaction_local=True, background_local=True),
        "pinned": CpuPlan.pinned(),
        "unpinned": CpuPlan(1, None, 1, None, 0),
        "shared": CpuPlan(2, None, 2, None, 19),
    }
    plan = plans[args.plan]
    t0 = time.perf_counter()
    # Locate + verify weights (after the first assembly), load, warm.
    stack = LocalStack(
        interaction_model=QWEN_05B_Q4_0 if args.interaction_model == "q4_0" else QWEN_05B,
        cpu_plan=plan,
        stt_threads=args.stt_threads,
        stt_short_window=not args.full_window,
        stt_early=not args.no_early,
    )
    stack.stt()
    stack.tts()
    stack.interaction_llm()
    await stack.warm()
    cold_start = time.perf_counter() - t0
    rss_ready, _ = rss_mb()

    audio = [await speech_16k(stack, q) for q in QUESTIONS]
    first_clause = not args.first_sentence
    early = not args.no_early
    idle = await run_turns(
        stack, args.turns, "idle", audio, args.pipeline, first_clause, early, args.turn_stop
    )

    stop = asyncio.Event()
    stats: dict = {}
    load = asyncio.ensure_future(background_load(stack, stop, stats))
    await asyncio.sleep(3.0)  # let the background model get going
    busy = await run_turns(
        stack, args.turns, "background", audio, args.pipeline, first_clause, early, args.turn_stop
    )
    stop.set()
    await load
    rss_now, rss_peak = rss_mb()

    idle_p50 = median([r["latency_s"] for r in idle])
    busy_p50 = median([r["latency_s"] for r in busy])
    summary = {
        "pipeline": args.pipeline,
        "plan": args.plan,
        "stt_window": "full" if args.full_window else "fitted",
        "stt_early": not args.no_early,
        "turn_stop": args.turn_stop if args.pipeline == "tandem" else "pipecat",
        "first_clause": first_clause and args.pipeline == "tandem",
        "interaction_model": args.interaction_model,
        "stt_threads": args.stt_threads,
        "turns": args.turns,
        "cold_start_s": round(cold_start, 2),
        "idle_p50_s": idle_p50,
        "background_p50_s": busy_p50,
        "ratio": (busy_p50 / idle_p50) if idle_p50 and busy_p50 else None,
        "idle_stt_p50_s": median([r["stt_s"] for r in idle]),
        "idle_text_at_tts_p50_s": median([r["text_at_tts_s"] for r in idle]),
        "bg_stt_p50_s": median([r["stt_s"] for r in busy]),
        "bg_text_at_tts_p50_s": median([r["text_at_tts_s"] for r in busy]),
        "background_tok_s": (stats.get("tokens", 0) / stats["seconds"])
        if stats.get("seconds")
        else None,
        "failed_turns": sum(1 for r in idle + busy if r["latency_s"] is None),
        "rss_ready_mb": round(rss_ready),
        "rss_end_mb": round(rss_now),
        "rss_peak_mb": round(rss_peak),
        "load_avg_1m_at_end": os.getloadavg()[0],
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "turns": idle + busy}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
