"""The side-by-side scenario benchmark (virtual time, both systems, fake models)."""

import argparse
import json

import pytest

from pipecat_tandem.bench.cli import add_bench_arguments, run_bench
from pipecat_tandem.bench.harness import quiet_logs, run_system
from pipecat_tandem.bench.observed import compute_observed
from pipecat_tandem.bench.report import render_markdown, run_benchmark
from pipecat_tandem.bench.scenarios import SCENARIOS, Query, Scenario, Speech, select
from pipecat_tandem.bench.virtual_time import run_virtual

quiet_logs("CRITICAL")

SUMMARY_KEYS = {
    "owed", "delivered", "lost", "unfinished", "repeated", "stale_read", "offered",
    "deliveries", "over_user", "over_bot", "latency_p50_s", "latency_p95_s", "gap_p50_s",
    "gap_ok", "interaction_idle_p50_s", "interaction_loaded_p50_s", "runs",
}  # fmt: skip


@pytest.fixture(scope="module")
def small_result():
    sel = select(["mid_response", "cough"], 1)
    return run_benchmark(sel.scenarios, sel.seeds)


def test_json_has_both_systems_and_expected_keys(small_result):
    res = json.loads(json.dumps(small_result))  # JSON-serializable
    assert set(res) >= {"scenarios", "totals", "runs", "seeds", "machine", "min_gap_s"}
    assert set(res["scenarios"]) == {"mid_response", "cough"}
    for entry in res["scenarios"].values():
        assert set(entry["systems"]) == {"tandem", "llm_with_backend"}
        for summary in entry["systems"].values():
            assert SUMMARY_KEYS <= set(summary)
    assert set(res["totals"]) == {"tandem", "llm_with_backend"}
    assert len(res["runs"]) == 4
    md = render_markdown(res)
    assert "| mid_response | pipecat-tandem |" in md and "| cough | LLMWithBackend |" in md


def test_the_two_systems_differ_where_the_design_says(small_result):
    s = small_result["scenarios"]
    # pipecat's plumbing speaks the result twice in the mid-response race and holds it
    # hostage after a wordless user turn; the tandem does neither.
    assert s["mid_response"]["systems"]["llm_with_backend"]["repeated"] >= 1
    assert s["cough"]["systems"]["llm_with_backend"]["lost"] == 1
    assert s["cough"]["systems"]["tandem"]["delivered"] == 1


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_tandem_never_speaks_over_the_user_loses_or_repeats(name):
    record = run_virtual(run_system("tandem", SCENARIOS[name], seed=1)).to_dict()
    m = compute_observed(record)
    assert (m.over_user, m.lost, m.repeated, m.stale_read) == (0, 0, 0, 0), record["utterances"]
    assert m.over_bot == 0
    assert m.delivered == m.owed
    # The run really exercised the scenario: every wanted answer was produced and said.
    wanted = [q for q in record["queries"] if q["wanted"] and q["outcome"] == "ok"]
    assert m.owed >= len(wanted)
    # and its own event log agrees
    own = record["self_reported"]
    assert own["lost"] == 0 and own["repeated"] == 0 and own["deliveries_over_user"] == 0


def test_tandem_does_not_repeat_after_an_interrupted_weave():
    # Regression: a woven delivery cut off before it was heard is taken back out of the
    # context, so the model cannot relay it on the next turn before the redelivery.
    record = run_virtual(run_system("tandem", SCENARIOS["chat_loaded"], seed=2)).to_dict()
    assert compute_observed(record).repeated == 0


def test_scenario_inputs_are_checked():
    with pytest.raises(ValueError, match="unknown scenario"):
        select(["idle", "nope"], 1)
    with pytest.raises(ValueError, match="twice"):
        select(["idle", "idle"], 1)
    for bad in (0, 51, -1, True, "3"):
        with pytest.raises(ValueError, match="seeds"):
            select(None, bad)
    with pytest.raises(ValueError, match="outcome"):
        Query("q1", 1.0, outcome="maybe")
    with pytest.raises(ValueError, match="latency"):
        Query("q1", float("nan"))
    with pytest.raises(ValueError, match="nothing to run"):
        run_benchmark([], [0])
    with pytest.raises(ValueError, match="systems"):
        run_benchmark([SCENARIOS["idle"]], [0], systems=("openai",))
    with pytest.raises(ValueError, match="system must be"):
        run_virtual(run_system("nope", SCENARIOS["idle"]))
    assert len(select(None, 2).scenarios) == len(SCENARIOS)


def test_jitter_is_deterministic_and_keeps_speech_in_order():
    sc = SCENARIOS["burst8"]
    assert sc.jittered(0) is sc
    a, b = sc.jittered(3), sc.jittered(3)
    assert a == b and a != sc.jittered(4)
    starts = [s.t for s in a.speech]
    assert starts == sorted(starts)
    for prev, nxt in zip(a.speech, a.speech[1:], strict=False):
        assert nxt.t >= prev.t + prev.duration


def test_a_custom_scenario_with_empty_speech_runs():
    empty = Scenario("empty", "nothing said", (), (), until=3.0)
    for system in ("tandem", "llm_with_backend"):
        m = compute_observed(run_virtual(run_system(system, empty)).to_dict())
        assert m.owed == 0 and m.deliveries == 0


def _args(*argv):
    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_writes_json_and_markdown(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert run_bench(_args("--seeds", "1", "--scenario", "idle", "--json", str(out))) == 0
    data = json.loads(out.read_text())
    assert data["scenarios"]["idle"]["systems"]["tandem"]["delivered"] == 1
    assert "| idle | LLMWithBackend |" in capsys.readouterr().out


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _args("--seeds", "0")
    with pytest.raises(SystemExit):
        _args("--seeds", "x")
    with pytest.raises(SystemExit):
        _args("--scenario", "nope")
    assert run_bench(_args("--scenario", "idle", "--scenario", "idle")) == 2
    assert run_bench(_args("--scenario", "idle", "--json", str(tmp_path))) == 2
    assert "directory" in capsys.readouterr().err


def test_tandem_cli_has_the_bench_command():
    from pipecat_tandem import cli

    args = cli.build_parser().parse_args(["bench", "--seeds", "2", "--scenario", "cough"])
    assert args.command == "bench" and args.seeds == 2 and args.scenario == ["cough"]


def test_llm_with_backend_side_behaves_as_measured_for_cancel():
    # Its run in flight is not stopped by a "never mind": the answer is read out anyway.
    record = run_virtual(run_system("llm_with_backend", SCENARIOS["cancel"])).to_dict()
    assert "q1" in record["ready"]
    assert compute_observed(record).stale_read == 1


def test_speech_spans_are_recorded_as_scripted():
    sc = Scenario("s", "two turns", (Speech(1.0, "hello there"), Speech(3.0, None, 0.4)), (), 6.0)
    record = run_virtual(run_system("llm_with_backend", sc)).to_dict()
    assert [(s["start"], s["end"], s["text"]) for s in record["user_spans"]] == [
        (1.0, 2.0, "hello there"),
        (3.0, 3.4, None),
    ]
