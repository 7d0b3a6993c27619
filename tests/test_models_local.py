"""Local services: configuration and bad input, without loading any model."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipecat_tandem.errors import ModelUnavailableError
from pipecat_tandem.models.local_server import LocalModelServer, ServerConfig
from pipecat_tandem.models.local_stack import CpuPlan


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_threads": 0}, "n_threads"), ({"n_ctx": 16}, "n_ctx"), ({"n_threads": -2}, "n_threads")],
)
def test_server_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ServerConfig(model_path=Path("x.gguf"), **kwargs)


def test_missing_model_file_is_a_clear_error(tmp_path):
    server = LocalModelServer(ServerConfig(model_path=tmp_path / "absent.gguf"))
    with pytest.raises(ModelUnavailableError, match="ensure_model"):
        server.load()
    assert not server.ready


async def test_missing_model_file_fails_the_stream_too(tmp_path):
    server = LocalModelServer(ServerConfig(model_path=tmp_path / "absent.gguf"))
    with pytest.raises(ModelUnavailableError):
        async for _ in server.stream_chat({"messages": []}):
            pass


def test_garbage_model_file_is_a_clear_error(tmp_path):
    pytest.importorskip("xllamacpp")
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file" * 100)
    server = LocalModelServer(ServerConfig(model_path=bogus, name="bogus"))
    with pytest.raises(ModelUnavailableError, match="bogus.gguf"):
        server.load()


def test_cpu_plan_gives_the_interaction_both_cores_and_renices_the_background(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    both = CpuPlan.for_roles(interaction_local=True, background_local=True)
    assert both.interaction_threads == 2 and both.interaction_cpus is None
    assert both.background_cpus == frozenset({1}) and both.background_threads == 1
    assert both.background_nice == 19
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    many = CpuPlan.for_roles(interaction_local=True, background_local=True)
    assert many.interaction_threads == 4 and many.background_cpus == frozenset({15})
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    single = CpuPlan.for_roles(interaction_local=True, background_local=True)
    assert single.interaction_cpus is None and single.background_cpus is None
    assert single.interaction_threads == 1
    assert CpuPlan.pinned().interaction_cpus == frozenset({0})
    assert CpuPlan.pinned().background_nice == 0


@pytest.mark.parametrize("nice", [-1, 20, 100])
def test_server_config_rejects_bad_nice(nice):
    with pytest.raises(ValueError, match="nice"):
        ServerConfig(model_path=Path("x.gguf"), nice=nice)
