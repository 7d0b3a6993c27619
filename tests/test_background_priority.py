"""The background model gives way to the interaction path: its llama.cpp threads run niced and pinned.

There is no queue shared by the two roles: each has its own llama.cpp server
(``LocalStack``), so an interaction request never waits behind a background one
for a slot. What they share is the CPU, and there the offline plan
(``CpuPlan.for_roles``) runs the background model's threads at nice 19 on the
last CPU; the kernel then hands that CPU to the interaction path (normal
priority, unpinned) whenever it runs. ``LocalModelServer`` gets this by building
the llama.cpp server on a thread of its own that it renices and pins first,
so the threads llama.cpp spawns inherit both and nothing else in the process
does. This test loads a real model on the background plan, has it generate, and
reads the priority and CPU set of the threads that did the work from ``/proc``.
(The effect on turn latency is measured in ``docs/bench/local.md``, not asserted.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipecat_tandem.models.local_server import LocalModelServer, ServerConfig
from pipecat_tandem.models.local_stack import CpuPlan
from pipecat_tandem.models.requantize import QWEN_05B_Q4_0, ensure_weights

pytestmark = pytest.mark.slow


def _threads() -> dict[int, tuple[int, frozenset[int], int]]:
    """This process's threads: id -> (nice, CPUs allowed, CPU ticks used)."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            # Fields after the ")" of the name start at field 3 (state).
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            cpus = frozenset(os.sched_getaffinity(int(task.name)))
        except OSError:
            continue  # a thread that just ended
        out[int(task.name)] = (int(fields[16]), cpus, int(fields[11]) + int(fields[12]))
    return out


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the plan pins nothing on one CPU")
def test_the_background_models_threads_run_at_nice_19_on_the_last_cpu_and_nothing_else_does():
    plan = CpuPlan.for_roles(interaction_local=True, background_local=True)
    assert plan.background_nice == 19 and plan.background_cpus
    my_nice, my_cpus = os.getpriority(os.PRIO_PROCESS, 0), frozenset(os.sched_getaffinity(0))
    before = _threads()
    server = LocalModelServer(
        ServerConfig(
            model_path=ensure_weights(QWEN_05B_Q4_0),
            n_threads=plan.background_threads,
            cpus=plan.background_cpus,
            nice=plan.background_nice,
            n_ctx=512,
            name="background",
        )
    )
    server.load()
    loaded = _threads()
    server.complete(
        {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 4, "temperature": 0}
    )
    after = _threads()
    # The threads that generated: new since the load began and busy during the request.
    worked = {
        tid: after[tid]
        for tid in after
        if tid not in before and tid in loaded and after[tid][2] > loaded[tid][2]
    }
    assert worked, "no thread of llama.cpp used CPU during the request"
    assert {(nice, cpus) for nice, cpus, _ in worked.values()} == {(19, plan.background_cpus)}
    # The rest of the process (the event loop, the interaction path) is untouched.
    assert os.getpriority(os.PRIO_PROCESS, 0) == my_nice
    assert frozenset(os.sched_getaffinity(0)) == my_cpus
    for tid, (nice, cpus, _) in after.items():
        if tid in before:
            assert (nice, cpus) == (before[tid][0], before[tid][1]), tid
