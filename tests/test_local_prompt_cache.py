"""The interaction model keeps no memory per finished conversation (issue 13, soak).

llama.cpp's server copies a slot's prompt state into a host-memory cache (its
``--cache-ram``, 8 GiB by default) whenever the slot moves on to a different
prompt. On a voice server every call is a new conversation, so each call left
its conversation's KV state behind: ~2 MB a 3-turn conversation on the 0.5B,
linear over 12 conversations, which was most of what the 100-call soak kept.
"""

from __future__ import annotations

import pytest

from tests.support.memory import settled_rss_mb

pytest.importorskip("xllamacpp")

from pipecat_tandem.models.local_server import ServerConfig  # noqa: E402
from pipecat_tandem.models.local_stack import INTERACTION_PROMPT, LocalStack  # noqa: E402
from pipecat_tandem.models.requantize import QWEN_05B_Q4_0  # noqa: E402

pytestmark = pytest.mark.slow

CONVERSATIONS = 10
TURNS = 3


def test_the_stack_turns_llama_cpps_host_prompt_cache_off():
    stack = LocalStack(interaction_model=QWEN_05B_Q4_0, background_model=None)
    assert stack.interaction_server is not None
    assert stack.interaction_server.config.prompt_cache_mib == 0


def test_a_negative_prompt_cache_is_refused(tmp_path):
    with pytest.raises(ValueError, match="prompt_cache_mib"):
        ServerConfig(model_path=tmp_path / "m.gguf", prompt_cache_mib=-1)


def test_finished_conversations_do_not_pile_up_in_memory():
    stack = LocalStack(interaction_model=QWEN_05B_Q4_0, background_model=None)
    server = stack.interaction_server
    assert server is not None
    levels: list[float] = []
    for n in range(CONVERSATIONS):
        messages = [{"role": "system", "content": INTERACTION_PROMPT}]
        for t in range(TURNS):
            question = f"Call {n}, turn {t}: what is {7 * n + t} plus {n + 3 * t}?"
            messages.append({"role": "user", "content": question})
            reply = server.complete({"messages": messages, "max_tokens": 12, "temperature": 0})
            messages.append(
                {"role": "assistant", "content": reply["choices"][0]["message"]["content"]}
            )
        levels.append(settled_rss_mb())
    # Before the fix: ~2 MB per conversation (16 MB over these 8); after it, flat.
    grown = levels[-1] - levels[1]
    assert grown < 6, f"RSS grew {grown:.1f} MB over {CONVERSATIONS - 2} conversations: {levels}"
