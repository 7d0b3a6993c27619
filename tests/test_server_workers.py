"""``tandem run --workers N``: worker processes behind haproxy, one /healthz and /metrics.

The pure parts (flag parsing, the haproxy config, health sums, Prometheus
pages) without I/O; then a real ``tandem run --workers 2`` on fake models,
started by the module, with real aiortc peers on 127.0.0.1: calls land on both
workers, a trickled ICE candidate reaches the worker holding its call,
/metrics is valid Prometheus text (also under fuzzed query strings), and a
SIGKILLed worker ends its own call only, is reported and started again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipecat_tandem import cli
from pipecat_tandem.observe.prometheus import Family, merge_pages, render
from pipecat_tandem.transports.haproxy import ProxyPlan, find_haproxy
from pipecat_tandem.transports.worker_pool import (
    MAX_WORKERS,
    WorkerState,
    describe_exit,
    parse_workers,
    pool_health,
    restart_delay,
)
from pipecat_tandem.workers_command import resolve_workers, uses_embedded_models, worker_argv
from tests.support.media import TestPeer, speech_pcm

ROOT = Path(__file__).resolve().parents[1]
FAKE = "tests.support.fake_services:FakeSessionFactory"
HAPROXY = find_haproxy()
needs_haproxy = pytest.mark.skipif(
    HAPROXY is None, reason="haproxy not installed (scripts/install-system-deps.sh)"
)

#
# Pure parts
#


@pytest.mark.parametrize(
    "value, needle",
    [("0", "at least 1"), ("-1", "at least 1"), ("abc", "not a number"), ("", "not a number")],
)
def test_parse_workers_refuses_nonsense(value, needle):
    with pytest.raises(ValueError, match=needle):
        parse_workers(value)


def test_parse_workers_bounds():
    assert parse_workers(" 3 ") == 3
    with pytest.raises(ValueError, match=f"at most {MAX_WORKERS}"):
        parse_workers("100000")


@pytest.mark.parametrize(
    "value, needle",
    [("0", "at least 1"), ("-1", "at least 1"), ("abc", "not a number"), ("99999", "at most")],
)
def test_cli_bad_workers_is_a_usage_error_naming_the_flag(value, needle, capsys):
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(["run", "--workers", value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--workers" in err and needle in err and "Traceback" not in err


def test_worker_argv_drops_workers_and_worker_flags():
    argv = ["run", "--port", "9", "--workers", "3", "--worker-index=1", "--factory", "m:f"]
    assert worker_argv(argv) == ["--port", "9", "--factory", "m:f"]
    assert worker_argv(["run", "--workers=4", "--max-sessions", "2"]) == ["--max-sessions", "2"]


def _args(**kw):
    args = cli.build_parser().parse_args(["run"])
    for k, v in kw.items():
        setattr(args, k, v)
    args.livekit = kw.get("livekit", False)
    return args


def test_default_workers_one_with_embedded_models_else_one_per_core(monkeypatch):
    monkeypatch.delenv("TANDEM_INTERACTION", raising=False)
    monkeypatch.delenv("TANDEM_BACKGROUND", raising=False)
    assert uses_embedded_models(_args())
    assert resolve_workers(_args(), "/usr/sbin/haproxy") == (1, None)
    cloud = _args(interaction="openai:gpt-4o-mini", background="openai:gpt-4o")
    assert not uses_embedded_models(cloud)
    monkeypatch.setattr("pipecat_tandem.workers_command.usable_cores", lambda: 2)
    assert resolve_workers(cloud, "/usr/sbin/haproxy") == (2, None)
    n, note = resolve_workers(cloud, None)  # default, no haproxy: one process, said so
    assert n == 1 and "haproxy is not installed" in note
    # the interaction model local: still embedded, even with background on Redis
    assert uses_embedded_models(_args(background="openai:x", redis="redis://h"))
    assert not uses_embedded_models(_args(factory="tests.support.fake_services:F"))


def test_port_zero_runs_one_process_and_refuses_several(monkeypatch):
    # haproxy cannot listen on "any free port"; one process binds it itself.
    monkeypatch.setattr("pipecat_tandem.workers_command.usable_cores", lambda: 2)
    cloud = _args(interaction="openai:gpt-4o-mini", background="openai:gpt-4o", port=0)
    assert resolve_workers(cloud, "/usr/sbin/haproxy") == (1, None)
    n, why = resolve_workers(_args(workers=2, port=0), "/usr/sbin/haproxy")
    assert n == 0 and "fixed --port" in why


def test_explicit_workers_without_haproxy_or_with_a_room_cannot_start():
    n, why = resolve_workers(_args(workers=3), None)
    assert n == 0 and "needs haproxy" in why and "apt-get install haproxy" in why
    n, why = resolve_workers(_args(workers=2, livekit=True), "/usr/sbin/haproxy")
    assert n == 0 and "LiveKit" in why


def test_run_command_without_haproxy_exits_1_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr("pipecat_tandem.transports.haproxy.find_haproxy", lambda: None)
    argv = ["run", "--workers", "2", "--factory", "tests.support.fake_services:FakeSessionFactory"]
    parser = cli.build_parser()
    assert cli.run_command(parser.parse_args(argv), parser, argv=argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(cli.CANNOT_START) and "haproxy" in err[0]


def test_pool_health_sums_and_says_why():
    a, b = WorkerState(0, pid=10, routed=True), WorkerState(1, pid=11, routed=True)
    assert pool_health([a, b])[0] == 503
    a.saw(200, {"ready": True, "can_take_call": False, "calls": 4, "max_calls": 4})
    b.saw(200, {"ready": True, "can_take_call": True, "calls": 1, "max_calls": 4})
    status, body = pool_health([a, b])
    assert status == 200 and body["calls"] == 5 and body["max_calls"] == 8
    assert body["can_take_call"] and body["workers_ready"] == 2
    line = b.exited(-signal.SIGKILL)
    assert line == "worker 1 (pid 11) killed by SIGKILL, ending its 1 call(s)"
    status, body = pool_health([a, b])
    assert status == 200 and not body["can_take_call"] and "call limit" in body["reason"]
    assert body["worker_detail"][1]["last_exit"] == line
    assert describe_exit(1) == "exited with code 1"
    assert [restart_delay(k) for k in (0, 1, 2, 9)] == [0.5, 1.0, 2.0, 10.0]


def test_an_exit_names_the_calls_of_the_last_answered_poll():
    # The race CI hit: a poll in flight as the worker is killed fails (no
    # answer) and lands before the exit is seen; the calls still died with it.
    w = WorkerState(1, pid=11, routed=True)
    w.saw(200, {"ready": True, "calls": 2})
    w.saw(None, None)
    assert w.calls == 0
    assert w.exited(-signal.SIGKILL).endswith("ending its 2 call(s)")
    w.pid = 12
    w.saw(200, {"ready": True, "calls": 0})
    assert w.exited(1) == "worker 1 (pid 12) exited with code 1"


def test_prometheus_pages_merge_into_one_valid_page():
    pages = []
    for w in ("0", "1"):
        calls = Family("tandem_calls", "gauge", "Calls.")
        calls.add(2, worker=w)
        lag = Family("tandem_lag_seconds", "summary", 'Lag "quoted"\nhelp.')
        lag.add(0.004, quantile="0.99", worker=w)
        lag.add(1.5, "_sum", worker=w)
        lag.add(300, "_count", worker=w)
        pages.append(render([calls, lag]))
    merged = merge_pages(pages)
    families = {f.name: f for f in text_string_to_metric_families(merged)}
    assert {s.labels["worker"] for s in families["tandem_calls"].samples} == {"0", "1"}
    assert len(families["tandem_lag_seconds"].samples) == 6
    assert merged.count("# TYPE tandem_calls gauge") == 1


@needs_haproxy
def test_haproxy_accepts_the_generated_config(tmp_path):
    plan = ProxyPlan(
        host="127.0.0.1",
        port=7860,
        worker_sockets=(tmp_path / "w0.sock", tmp_path / "w1.sock", tmp_path / "w2.sock"),
        parent_socket=tmp_path / "p.sock",
        stats_socket=tmp_path / "s.sock",
    )
    (tmp_path / "h.cfg").write_text(plan.config())
    done = subprocess.run(
        [HAPROXY, "-c", "-f", str(tmp_path / "h.cfg")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "use_backend w2 if { var(txn.pc_id) -m beg w2. }" in plan.config()


#
# A real `tandem run --workers 2`
#


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=3) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except OSError:
        return 0, {}


def _wait(base: str, ok, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    body: dict = {}
    while time.monotonic() < deadline:
        _, body = _health(base)
        if body and ok(body):
            return body
        time.sleep(0.2)
    raise AssertionError(f"timed out; last /healthz: {body}")


@pytest.fixture(scope="module")
def pool():
    if HAPROXY is None:
        pytest.skip("haproxy not installed (scripts/install-system-deps.sh)")
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "pipecat_tandem",
        "run",
        "--port",
        str(port),
        "--workers",
        "2",
        "--max-sessions",
        "2",
        "--factory",
        "tests.support.fake_services:FakeSessionFactory",
    ]
    env = {**os.environ, "TANDEM_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, lambda b: all(w["can_take_call"] for w in b.get("worker_detail", [0])))
        yield base, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _metrics(base: str, query: str = "") -> dict:
    async with aiohttp.ClientSession() as http, http.get(base + "/metrics" + query) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    return {f.name: f for f in text_string_to_metric_families(text)}


def _per_worker(families: dict, name: str) -> dict[str, float]:
    # prometheus_client names a counter's family without its "_total".
    return {s.labels["worker"]: s.value for s in families[name].samples}


async def _until(predicate, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_calls_spread_patches_route_metrics_and_a_killed_worker(pool):
    base, proc = pool
    from pipecat_tandem.transports.ice import restrict_host_candidates

    restrict_host_candidates(["127.0.0.1"])
    pcm = speech_pcm("Hello there, how are you today?", tail_silence_s=1.0)
    peers = [TestPeer(base, pcm=pcm, video=False, loop_audio=True) for _ in range(2)]
    try:
        for p in peers:
            await p.connect(20)
        tags = sorted(p.pc_id.split(".", 1)[0] for p in peers)
        assert tags == ["w0", "w1"]  # one call on each worker
        by_tag = {p.pc_id.split(".", 1)[0]: p for p in peers}

        families = await _metrics(base)
        assert _per_worker(families, "tandem_calls") == {"0": 1.0, "1": 1.0}
        assert _per_worker(families, "tandem_worker_up") == {"0": 1.0, "1": 1.0}
        for name in ("tandem_jobs", "tandem_event_loop_lag_seconds", "tandem_model_queue_depth"):
            assert name in families
        status, health = _health(base)
        assert status == 200 and health["calls"] == 2 and health["max_calls"] == 4

        # Trickle ICE: a candidate for each call reaches the worker holding it
        # (the other worker does not know the pc_id and would answer 404).
        cand = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"
        async with aiohttp.ClientSession() as http:
            for tag, p in by_tag.items():
                body = {"pc_id": p.pc_id, "candidates": [{"candidate": cand, "sdp_mid": "0"}]}
                async with http.patch(base + "/api/offer", json=body) as r:
                    assert r.status == 200, (tag, await r.text())
            body = {"pc_id": "w1.SmallWebRTCConnection#9-nope", "candidates": []}
            async with http.patch(base + "/api/offer", json=body) as r:
                assert r.status == 404 and "unknown peer connection" in (await r.json())["error"]

        # Outbound audio pacing is measured inside each worker. Poll rather than
        # sleep a fixed time: on a loaded CI machine a second of audio may not
        # have been paced yet, but the counts must keep rising in both.
        counts: dict = {}
        for _ in range(40):
            await asyncio.sleep(0.25)
            families = await _metrics(base)
            counts = {
                s.labels["worker"]: s.value
                for s in families["tandem_outbound_audio_lateness_seconds"].samples
                if s.name.endswith("_count")
            }
            if counts.get("0", 0) > 50 and counts.get("1", 0) > 50:
                break
        assert counts["0"] > 50 and counts["1"] > 50, counts

        # Kill worker 1: its call ends (no more audio), worker 0's goes on.
        killed = health["worker_detail"][1]["pid"]
        os.kill(killed, signal.SIGKILL)
        await asyncio.sleep(1.5)
        before = {t: len(p.stats.rtp) for t, p in by_tag.items()}
        await asyncio.sleep(1.5)
        after = {t: len(p.stats.rtp) for t, p in by_tag.items()}
        assert after["w1"] == before["w1"], "the dead worker's call still gets audio"
        assert after["w0"] - before["w0"] > 50, "the other call stopped"

        def restarted(b: dict) -> bool:
            w = b["worker_detail"][1]
            return w["restarts"] == 1 and w["can_take_call"] and w["pid"] != killed

        health = await asyncio.to_thread(_wait, base, restarted, 60.0)
        assert (
            f"(pid {killed}) killed by SIGKILL, ending its 1 call(s)"
            in (health["worker_detail"][1]["last_exit"])
        )
        families = await _metrics(base)
        assert _per_worker(families, "tandem_worker_restarts") == {"0": 0.0, "1": 1.0}
    finally:
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)

    # The restarted worker takes calls again.
    fresh = [TestPeer(base, pcm=pcm, video=False, loop_audio=True) for _ in range(2)]
    try:
        for p in fresh:
            await p.connect(20)
        assert sorted(p.pc_id.split(".", 1)[0] for p in fresh) == ["w0", "w1"]
    finally:
        await asyncio.gather(*(p.close() for p in fresh), return_exceptions=True)
    assert proc.poll() is None


@pytest.mark.parametrize(
    "query",
    ["?", "?a=1&a=2", "?%ff%fe", "?name[]=x", "?" + "x" * 2000, "?format=json", "?;;&&=="],
)
async def test_metrics_ignore_fuzzed_query_strings(pool, query):
    base, _ = pool
    families = await _metrics(base, query)
    assert "tandem_calls" in families and "tandem_worker_up" in families


async def test_pages_and_refusals_through_the_proxy(pool):
    base, _ = pool
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/") as r:
            assert r.status == 200 and "default-src 'self'" in r.headers["Content-Security-Policy"]
        async with http.post(base + "/api/offer", data=b"{not json") as r:
            assert r.status == 400 and "error" in await r.json()
        async with http.patch(base + "/api/offer", json={"candidates": []}) as r:
            assert r.status == 400


def _run(argv: list[str], timeout_s: float = 90.0) -> subprocess.CompletedProcess:
    env = {**os.environ, "TANDEM_LOG_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", "pipecat_tandem", "run", *argv]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)


def _cannot_start_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(cli.CANNOT_START)]


@needs_haproxy
def test_a_bad_factory_is_one_line_before_any_worker_starts():
    done = _run(["--workers", "2", "--port", str(_free_port()), "--factory", "nope.mod:f"])
    assert done.returncode == 1
    assert _cannot_start_lines(done.stderr) == [
        "tandem: cannot start: --factory 'nope.mod:f': cannot import 'nope.mod' "
        "(No module named 'nope')"
    ]


@needs_haproxy
def test_a_busy_port_and_a_worker_failing_its_warm_up_exit_1():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _run(["--workers", "2", "--port", str(port), "--factory", FAKE])
    assert done.returncode == 1
    assert _cannot_start_lines(done.stderr) == [
        f"tandem: cannot start: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    factory = "tests.support.fake_services:failing_factory"
    done = _run(["--workers", "2", "--port", str(_free_port()), "--factory", factory])
    assert done.returncode == 1
    lines = _cannot_start_lines(done.stderr)
    assert lines and all("the fake models refuse to load" in line for line in lines)
    assert "before it was ready; stopping" in done.stderr


async def test_a_single_process_serves_metrics_and_healthz_call_check():
    from pipecat_tandem.transports.webrtc_server import TandemServer
    from tests.support.fake_services import FakeSessionFactory

    srv = TandemServer(factory=FakeSessionFactory(), port=0, max_sessions=1)
    await srv.start()
    try:
        assert await srv.wait_warm()
        base = f"http://127.0.0.1:{srv.port}"
        for query in ("", "?x=%00", "?" + "&".join(f"k{i}=v" for i in range(300))):
            families = await _metrics(base, query)
            assert _per_worker(families, "tandem_calls") == {"0": 0.0}
            assert _per_worker(families, "tandem_can_take_call") == {"0": 1.0}
            assert {s.labels["state"] for s in families["tandem_jobs"].samples} >= {
                "queued",
                "running",
                "done",
            }
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz?call") as r:
                assert r.status == 200
            srv.sessions.reserve()  # the one slot taken: a new call would be refused
            async with http.get(base + "/healthz?call") as r:
                assert r.status == 503 and r.headers["Retry-After"] == "5"
                assert "limit" in (await r.json())["reason"]
            async with http.get(base + "/healthz") as r:
                assert r.status == 200  # alive and warm, just full
            srv.sessions.release_reservation()
    finally:
        await srv.stop()


def test_output_frames_are_20_ms_in_workers_unless_told():
    from pipecat_tandem.transports.server_stats import output_frame_ms

    assert output_frame_ms(worker=True, env={}) == 20
    assert output_frame_ms(worker=False, env={}) == 10
    assert output_frame_ms(worker=True, env={"TANDEM_OUTPUT_FRAME_MS": "10"}) == 10
    assert output_frame_ms(worker=False, env={"TANDEM_OUTPUT_FRAME_MS": " 20 "}) == 20
    assert output_frame_ms(worker=False, env={"TANDEM_OUTPUT_FRAME_MS": "15"}) == 10


async def test_20_ms_frames_carry_the_audio_in_order_then_silence():
    import numpy as np
    from pipecat.transports.smallwebrtc.transport import RawAudioTrack

    from pipecat_tandem.transports.server_stats import _recv_20ms

    track = RawAudioTrack(sample_rate=16000)
    pcm = (np.arange(480, dtype=np.int16) + 1).tobytes()  # 30 ms, never zero
    done = track.add_audio_bytes(pcm)
    first = await _recv_20ms(track)
    assert first.samples == 320 and first.pts == 0 and not done.done()
    second = await _recv_20ms(track)  # the last 10 ms, then 10 ms of silence
    assert done.done() and second.pts == 320
    data = np.concatenate([first.to_ndarray()[0], second.to_ndarray()[0]])
    assert (data[:480] == np.arange(480) + 1).all() and not data[480:].any()
