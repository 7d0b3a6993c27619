"""What a call's speech analyzers cost to set up: time and memory per call.

Every call gets its own VAD and smart-turn analyzers (their per-call state),
built the way the server builds them for a call (``tandem_session._fresh_services``:
``type(vad)()`` and ``turn_analyzer.fresh()``). This builds ``--calls`` of each in
one process, keeps them alive as calls would, and reports per call: the set-up
time (median, max), the RSS growth, and how many onnxruntime sessions the
analyzers hold between them (one per model when they share).

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_call_setup.py --calls 20 [--unshared]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Any


def _status(field: str) -> int:
    """A number from ``/proc/self/status`` (``VmRSS`` in kB, ``Threads``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _rss_mb() -> float:
    gc.collect()
    return _status("VmRSS") / 1024


def _session_of_vad(vad: Any) -> Any:
    return vad._model.session


def measure(calls: int, share: bool = True) -> dict[str, Any]:
    """Build ``calls`` VAD + smart-turn analyzer pairs after a warm template.

    Args:
        calls: How many calls' analyzers to build and keep.
        share: False builds each VAD with a session of its own (what every call
            did before the shared session: ``share_model=False``).
    """
    from pipecat_tandem.turns.early_smart_turn import EarlySmartTurnAnalyzer
    from pipecat_tandem.turns.silence_skipping_vad import SilenceSkippingVADAnalyzer

    template_vad = SilenceSkippingVADAnalyzer()  # the server's warmed services
    template_vad.set_sample_rate(16000)
    template_turn = EarlySmartTurnAnalyzer(cpu_count=1)
    before = _rss_mb()
    threads_before = _status("Threads")
    kept: list[tuple[Any, Any]] = []
    vad_s: list[float] = []
    turn_s: list[float] = []
    for _ in range(calls):
        t0 = time.perf_counter()
        vad = type(template_vad)(share_model=share)
        vad.set_sample_rate(16000)
        t1 = time.perf_counter()
        turn = template_turn.fresh()
        t2 = time.perf_counter()
        vad_s.append(t1 - t0)
        turn_s.append(t2 - t1)
        kept.append((vad, turn))
    after = _rss_mb()
    vad_sessions = {id(_session_of_vad(v)) for v, _ in kept}
    turn_sessions = {id(t._session) for _, t in kept}
    return {
        "calls": calls,
        "vad_ms_median": 1000 * statistics.median(vad_s),
        "vad_ms_max": 1000 * max(vad_s),
        "turn_ms_median": 1000 * statistics.median(turn_s),
        "rss_mb_per_call": (after - before) / calls,
        "threads_per_call": (_status("Threads") - threads_before) / calls,
        "vad_sessions": len(vad_sessions),
        "turn_sessions": len(turn_sessions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument(
        "--unshared", action="store_true", help="a Silero session per call (the old way)"
    )
    args = parser.parse_args()
    r = measure(args.calls, share=not args.unshared)
    print(
        f"{'unshared' if args.unshared else 'shared'} VAD, {r['calls']} calls: VAD set-up median {r['vad_ms_median']:.2f} ms "
        f"(max {r['vad_ms_max']:.2f}), smart-turn set-up median {r['turn_ms_median']:.2f} ms, "
        f"RSS +{r['rss_mb_per_call']:.2f} MB and {r['threads_per_call']:+.2f} threads per call; "
        f"onnxruntime sessions held: VAD {r['vad_sessions']}, smart-turn {r['turn_sessions']}"
    )


if __name__ == "__main__":
    main()
