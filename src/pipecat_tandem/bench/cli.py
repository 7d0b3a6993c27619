#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""``tandem bench``: the side-by-side scenario benchmark from the command line.

Examples::

    tandem bench                       # all scenarios, 5 seeds, markdown to stdout
    tandem bench --seeds 2 --scenario idle --scenario cough
    tandem bench --json out.json       # also write the full result as JSON
    tandem bench --json -              # JSON to stdout instead of markdown
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipecat_tandem.bench.scenarios import SCENARIOS, SYSTEMS, select


def _seeds(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if not 1 <= n <= 50:
        raise argparse.ArgumentTypeError(f"seeds must be in 1..50, got {n}")
    return n


def add_bench_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to ``tandem``'s subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="scenario benchmark: pipecat-tandem vs pipecat's LLMWithBackend"
    )
    add_bench_arguments(parser)
    return parser


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``bench`` arguments (on an existing parser)."""
    parser.add_argument(
        "--seeds", type=_seeds, default=5, help="runs per scenario, timings varied (default 5)"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--system",
        action="append",
        choices=SYSTEMS,
        help="run only this system (repeatable; default both)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="write the full result as JSON to PATH ('-': stdout, instead of markdown)",
    )
    parser.add_argument(
        "--records", action="store_true", help="include every run's raw record in the JSON"
    )


def run_bench(args: argparse.Namespace) -> int:
    """Run the benchmark for parsed ``bench`` arguments; returns the exit code."""
    try:
        selection = select(args.scenario, args.seeds)
        systems = tuple(dict.fromkeys(args.system or SYSTEMS))
    except ValueError as e:
        print(f"tandem bench: {e}", file=sys.stderr)
        return 2
    if args.json is not None and str(args.json) != "-" and args.json.is_dir():
        print(f"tandem bench: --json {args.json} is a directory", file=sys.stderr)
        return 2
    # Imported here so that ``tandem --help`` does not load pipecat.
    from pipecat_tandem.bench.harness import quiet_logs
    from pipecat_tandem.bench.report import render_markdown, run_benchmark

    quiet_logs("CRITICAL")
    result = run_benchmark(
        selection.scenarios,
        selection.seeds,
        systems=systems,
        keep_records=args.records,
        progress=lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True),
    )
    text = json.dumps(result, indent=1)
    if args.json is not None and str(args.json) == "-":
        print(text)
        return 0
    print(render_markdown(result))
    if args.json is not None:
        try:
            args.json.write_text(text + "\n")
        except OSError as e:
            print(f"tandem bench: cannot write {args.json}: {e}", file=sys.stderr)
            return 1
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
