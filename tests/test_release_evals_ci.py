"""pipecat's own async release evals in CI: the runner bot on the embedded default.

``python -m pipecat_tandem.bot`` on the real embedded models (the 0.5B interaction,
the 1.5B background, Whisper tiny.en, hibari), with the scenarios' tools as
background tools, in a subprocess on loopback; pipecat's ``EvalScriptSession``
runs two of its own scenario files (copied unedited) against it with the offline
rule judge (measured against a blind second labeler: docs/benchmarks.md) and the
adapter that maps the tandem's delegation onto the scenarios' ``function_call``
expectations:

* ``async_tool_delivery``: a result delivered after the conversation moved on
  (a joke asked for and told while the weather job ran);
* ``async_tool_cancellation_concurrent``: two reports running, the user calls
  one off, the other is still delivered.

These two text scenarios are the CI subset: each passed every run of the
benchmark (``benchmarks/bench_release_evals.py``), about 50 s together. The
audio and cancellation scenarios, and pass rates over many runs, are the
benchmark's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipecat_tandem.bench.release_evals.bot_process import eval_bot
from pipecat_tandem.bench.release_evals.run import run_scenario

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[1]
CI_SCENARIOS = ("async_tool_delivery", "async_tool_cancellation_concurrent")


async def test_pipecats_async_evals_pass_against_the_runner_bot(tmp_path):
    log = tmp_path / "bot.log"
    with eval_bot(log, root=ROOT, greeting=True) as url:
        for name in CI_SCENARIOS:
            outcome = await run_scenario(name, url, root=ROOT, cache_dir=str(tmp_path))
            # The harness's own log says what the user heard and what the judge said.
            why = "\n".join(outcome.debug_tail)
            assert outcome.passed, f"{name}: {outcome.failures}\n{why}"
            assert outcome.judged and outcome.judged[-1]["verdict"] == "yes", why
