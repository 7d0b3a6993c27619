"""What one conversational turn costs the interaction model, alone and beside a light load.

The 0.5B answers 8 short questions as in a call: the history is in llama.cpp's prompt
cache (prefilled as ``LocalLLMService``'s refill does), so each turn reads only its new
tokens (~10-14). Reported per configuration: the prompt's time as llama.cpp measures
it, the time to the first streamed token, and the generation speed (medians).

``--load`` adds one Python thread that keeps a core busy for that fraction of every
20 ms (NumPy, single-threaded), like the pipeline's event loop and Silero do: llama.cpp's
threads synchronize at every operation, so a thread that loses its core stalls the other.

``--model`` picks the weights: ``q4_0`` (the default, what the offline default runs: the
shipped model with its matrices re-encoded in Q4_0, see ``models/requantize.py``) or
``shipped`` (the Q4_K_M file as the part packages ship it).

Run: .venv/bin/python benchmarks/bench_llm_turn_cost.py [--threads 2] [--load 0 0.15 0.3]
     [--model q4_0 shipped]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the load is one thread, as the loop is
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from pipecat_tandem.models.local_server import LocalModelServer, ServerConfig  # noqa: E402
from pipecat_tandem.models.requantize import QWEN_05B_Q4_0, ensure_weights  # noqa: E402
from pipecat_tandem.models.weights import QWEN_05B  # noqa: E402

MODELS = {"q4_0": QWEN_05B_Q4_0, "shipped": QWEN_05B}

SYSTEM = "You are a friendly voice assistant. Answer in one or two short spoken sentences."
QUESTIONS = [
    "Hi, how are you today?",
    "What is the capital of France?",
    "Tell me a joke.",
    "What's your name?",
    "What's a good name for a cat?",
    "Do you like music?",
    "How's the weather looking?",
    "What should I cook tonight?",
]


def busy_thread(duty: float, stop: threading.Event) -> None:
    """Keep one core busy for ``duty`` of every 20 ms until ``stop``."""
    a = np.random.rand(200, 200)
    while not stop.is_set():
        started = time.perf_counter()
        while time.perf_counter() - started < 0.02 * duty:
            a @ a
        time.sleep(0.02 * (1 - duty))


async def one_config(server: LocalModelServer) -> dict[str, float]:
    history = [{"role": "system", "content": SYSTEM}]
    prompt_s, first_s, tok_s = [], [], []
    for question in QUESTIONS:
        # The refill: history plus the opening of the next user turn.
        refill = [*history, {"role": "user", "content": ""}]
        await server.complete_async({"messages": refill, "max_tokens": 1, "temperature": 0})
        history.append({"role": "user", "content": question})
        started = time.perf_counter()
        first: float | None = None
        text: list[str] = []
        timings: dict = {}
        request = {"messages": history, "max_tokens": 40, "temperature": 0}
        async for chunk in server.stream_chat(request):
            choices = chunk.get("choices") or []
            delta = (choices[0].get("delta") or {}).get("content") if choices else None
            if delta:
                first = first if first is not None else time.perf_counter() - started
                text.append(delta)
            timings.update(chunk.get("timings") or {})
        prompt_s.append(timings.get("prompt_ms", 0.0) / 1000)
        first_s.append(first if first is not None else float("nan"))
        tok_s.append(timings.get("predicted_per_second", 0.0))
        history.append({"role": "assistant", "content": "".join(text)})
    return {
        "prompt_p50_s": round(statistics.median(prompt_s), 3),
        "first_token_p50_s": round(statistics.median(first_s), 3),
        "tok_s_p50": round(statistics.median(tok_s), 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--load", type=float, nargs="+", default=[0.0, 0.15, 0.3])
    parser.add_argument("--model", choices=sorted(MODELS), nargs="+", default=["q4_0", "shipped"])
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds over the models, interleaved (medians)"
    )
    args = parser.parse_args()
    if any(not 0 <= duty < 1 for duty in args.load):
        parser.error("--load values must be in [0, 1)")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    servers = {}
    for name in args.model:
        path = ensure_weights(MODELS[name])
        servers[name] = LocalModelServer(ServerConfig(model_path=path, n_threads=args.threads))
        await servers[name].warm()
    runs: dict[tuple[str, float], list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for name, server in servers.items():
            for duty in args.load:
                stop = threading.Event()
                load = threading.Thread(target=busy_thread, args=(duty, stop), daemon=True)
                if duty:
                    load.start()
                try:
                    result = await one_config(server)
                finally:
                    stop.set()
                    if duty:
                        load.join()
                runs.setdefault((name, duty), []).append(result)
                print(json.dumps({"model": name, "load": duty, **result}), flush=True)
    print("medians over rounds:")
    for (name, duty), results in runs.items():
        row = {"model": name, "threads": args.threads, "load": duty}
        for key in results[0]:
            row[key] = round(statistics.median(r[key] for r in results), 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
