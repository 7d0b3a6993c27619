"""Scenario benchmark: pipecat-tandem vs pipecat 1.14's LLMWithBackend, side by side.

Scripted conversations on virtual time (deterministic, a few seconds in all), the same
fake models of fixed latency and the same fake speech output for both systems; the
metrics are derived from what the speech output actually said. See
``src/pipecat_tandem/bench/`` and ``docs/bench/scenarios.md``.

Run: .venv/bin/python benchmarks/bench_scenarios.py [--seeds 5] [--json out.json]
     (the same as ``tandem bench``; every ``tandem bench`` option works here)
"""

from __future__ import annotations

import argparse
import sys

from pipecat_tandem.bench.cli import add_bench_arguments, run_bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_scenarios.py", description=__doc__.split("\n")[0])
    add_bench_arguments(parser)
    return run_bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
