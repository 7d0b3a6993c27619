"""Start-up failures of ``tandem run``: detected early, one clear line, a non-zero exit.

Model cache checks run on small fake models (never the real cache); the ``tandem
run`` cases start the real command as a subprocess and need no network: each
fails before any model is loaded, or on fake (sparse) cached files.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import hashlib
import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipecat_tandem import cli
from pipecat_tandem.errors import ModelUnavailableError
from pipecat_tandem.models import requantize, weights
from pipecat_tandem.models.requantize import RequantizedModel, ensure_requantized
from pipecat_tandem.models.weights import SplitModel, ensure_model

from .support.fake_services import FakeSessionFactory
from .test_models_weights import make_parts, quiet
from .test_requantize import write_gguf

BLOB = bytes(range(256)) * 40 + b"tail-of-the-model"


@pytest.fixture
def fake_model(tmp_path, monkeypatch) -> SplitModel:
    """A model of two fake part packages (``BLOB`` split in two)."""
    site = tmp_path / "site"
    prefix = f"startup-fake-{os.getpid()}-{id(tmp_path)}-part"
    make_parts(site, prefix, [BLOB[:3000], BLOB[3000:]])
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return SplitModel(
        "Fake model", "fake.gguf", prefix, 2, hashlib.sha256(BLOB).hexdigest(), len(BLOB)
    )


@pytest.fixture
def fake_gguf_model(tmp_path, monkeypatch) -> RequantizedModel:
    """A small real GGUF shipped as fake parts, and its Q4_0 conversion."""
    source = tmp_path / "src.gguf"
    write_gguf(source)
    blob = source.read_bytes()
    site = tmp_path / "gguf-site"
    prefix = f"startup-gguf-{os.getpid()}-{id(tmp_path)}-part"
    make_parts(site, prefix, [blob[:1000], blob[1000:]])
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    split = SplitModel(
        "Fake GGUF", "g.gguf", prefix, 2, hashlib.sha256(blob).hexdigest(), len(blob)
    )
    return RequantizedModel(split, "g-q4_0.gguf")


def overwrite_keeping_stat(path: Path, offset: int, data: bytes) -> None:
    """Change bytes of ``path`` in place, then restore its mtime (size is unchanged)."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size


def labels(calls: list[tuple[str, int, int]]) -> set[str]:
    return {label.split()[0] for label, *_ in calls}


def read_only(path: Path):
    """A ``locked`` replacement that fails as on a read-only file system."""

    def fail(lock_path: Path):
        raise OSError(errno.EROFS, "Read-only file system", str(lock_path))

    return fail


#
# The model cache: a changed header is found, a bad directory is one clear error
#


def test_a_changed_header_with_size_and_mtime_kept_is_found_and_rebuilt(fake_model, tmp_path):
    cache = tmp_path / "cache"
    path = ensure_model(fake_model, cache_dir=cache, progress=quiet)
    overwrite_keeping_stat(path, 0, b"XXXX")
    calls: list = []
    assert ensure_model(fake_model, cache_dir=cache, progress=lambda *a: calls.append(a)) == path
    assert path.read_bytes() == BLOB
    assert {"verifying", "assembling"} <= labels(calls)


def test_a_changed_tail_with_size_and_mtime_kept_is_found_and_rebuilt(fake_model, tmp_path):
    cache = tmp_path / "cache"
    path = ensure_model(fake_model, cache_dir=cache, progress=quiet)
    overwrite_keeping_stat(path, len(BLOB) - 4, b"\0\0\0\0")
    assert ensure_model(fake_model, cache_dir=cache, progress=quiet).read_bytes() == BLOB


def test_an_intact_file_is_trusted_on_its_fingerprint_without_a_full_hash(fake_model, tmp_path):
    cache = tmp_path / "cache"
    path = ensure_model(fake_model, cache_dir=cache, progress=quiet)
    stamp = json.loads(weights.stamp_path(path).read_text())
    assert stamp["fingerprint"] == weights.fingerprint_file(path)
    calls: list = []
    ensure_model(fake_model, cache_dir=cache, progress=lambda *a: calls.append(a))
    assert calls == []


def test_a_stamp_from_before_fingerprints_costs_one_full_hash_then_none(fake_model, tmp_path):
    cache = tmp_path / "cache"
    path = ensure_model(fake_model, cache_dir=cache, progress=quiet)
    st = path.stat()
    old = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": fake_model.sha256}
    weights.stamp_path(path).write_text(json.dumps(old))
    calls: list = []
    ensure_model(fake_model, cache_dir=cache, progress=lambda *a: calls.append(a))
    assert labels(calls) == {"verifying"}
    calls.clear()
    ensure_model(fake_model, cache_dir=cache, progress=lambda *a: calls.append(a))
    assert calls == []


def test_fingerprint_sees_the_header_tail_and_size():
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f"
        data = bytearray(os.urandom(5 << 20))
        path.write_bytes(bytes(data))
        base = weights.fingerprint_file(path)
        for offset in (0, 100, len(data) - 1):
            changed = bytearray(data)
            changed[offset] ^= 1
            path.write_bytes(bytes(changed))
            assert weights.fingerprint_file(path) != base, offset
        path.write_bytes(bytes(data) + b"\0")
        assert weights.fingerprint_file(path) != base


def test_a_converted_model_with_a_changed_header_is_converted_again(fake_gguf_model, tmp_path):
    cache = tmp_path / "cache"
    path = ensure_requantized(fake_gguf_model, cache_dir=cache, progress=quiet)
    good = path.read_bytes()
    overwrite_keeping_stat(path, 0, b"XXXX")
    calls: list = []
    assert ensure_requantized(fake_gguf_model, cache_dir=cache, progress=lambda *a: calls.append(a))
    assert "converting" in labels(calls)
    assert path.read_bytes() == good


def test_a_read_only_cache_that_holds_the_models_is_used(
    fake_model, fake_gguf_model, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    path = ensure_model(fake_model, cache_dir=cache, progress=quiet)
    converted = ensure_requantized(fake_gguf_model, cache_dir=cache, progress=quiet)
    monkeypatch.setattr(weights, "locked", read_only(cache))
    monkeypatch.setattr(requantize, "locked", read_only(cache))
    assert ensure_model(fake_model, cache_dir=cache, progress=quiet) == path
    assert ensure_requantized(fake_gguf_model, cache_dir=cache, progress=quiet) == converted


def test_a_read_only_empty_cache_is_one_clear_error(
    fake_model, fake_gguf_model, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    monkeypatch.setattr(weights, "locked", read_only(cache))
    with pytest.raises(ModelUnavailableError) as info:
        ensure_model(fake_model, cache_dir=cache, progress=quiet)
    message = str(info.value)
    assert "Read-only file system" in message and str(cache) in message
    assert "set TANDEM_MODEL_DIR to a writable directory" in message and "\n" not in message


def test_a_read_only_cache_with_a_corrupt_converted_model_is_one_clear_error(
    fake_gguf_model, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    path = ensure_requantized(fake_gguf_model, cache_dir=cache, progress=quiet)
    overwrite_keeping_stat(path, 0, b"XXXX")
    monkeypatch.setattr(requantize, "locked", read_only(cache))
    with pytest.raises(ModelUnavailableError) as info:
        ensure_requantized(fake_gguf_model, cache_dir=cache, progress=quiet)
    assert str(info.value) == (
        f"g-q4_0.gguf is corrupt and cannot be converted again in the model cache directory "
        f"{cache}: Read-only file system; set TANDEM_MODEL_DIR to a writable directory"
    )


def test_a_read_only_cache_with_a_corrupt_model_names_it(fake_model, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    path = ensure_model(fake_model, cache_dir=cache, progress=quiet)
    overwrite_keeping_stat(path, 0, b"XXXX")
    monkeypatch.setattr(weights, "locked", read_only(cache))
    with pytest.raises(ModelUnavailableError, match="fake.gguf is corrupt and cannot be rebuilt"):
        ensure_model(fake_model, cache_dir=cache, progress=quiet)


def test_a_full_cache_is_one_clear_error_and_leaves_no_temp_file(fake_model, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    real_mkstemp = weights.tempfile.mkstemp

    def onto_dev_full(*args, **kwargs):
        # The real temp file, but writes go to /dev/full: every write fails with ENOSPC.
        fd, name = real_mkstemp(*args, **kwargs)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name

    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    monkeypatch.setattr(weights.tempfile, "mkstemp", onto_dev_full)
    with pytest.raises(ModelUnavailableError) as info:
        ensure_model(fake_model, cache_dir=cache, progress=quiet)
    message = str(info.value)
    assert "No space left on device" in message and str(cache) in message
    assert "free some space or set TANDEM_MODEL_DIR" in message and "\n" not in message
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]
    assert not (cache / "fake.gguf").exists()


#
# tandem run in-process: a failed warm-up ends serve() with 1 and one line
#


def cannot_start_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(cli.CANNOT_START)]


def run_args(*argv: str) -> argparse.Namespace:
    parser = cli.build_parser()
    args = parser.parse_args(["run", "--port", "0", *argv])
    cli._check_run_args(parser, args)
    return args


NO_WHISPER = ModuleNotFoundError("No module named 'faster_whisper'", name="faster_whisper")


async def test_a_failed_warm_up_stops_the_server_with_one_line(capfd):
    factory = FakeSessionFactory(warm_error=NO_WHISPER)
    code = await asyncio.wait_for(cli.serve(run_args(), factory, cli.StartupProgress()), 20)
    err = capfd.readouterr().err
    assert code == 1
    assert cannot_start_lines(err) == [
        "tandem: cannot start: the embedded models need the [local] extra "
        "(no module named 'faster_whisper'): pip install \"pipecat-tandem[local]\""
    ]
    assert "Traceback" not in err and "warm-up failed" not in err
    assert err.rstrip().splitlines()[-1].startswith(cli.CANNOT_START)  # the last word


async def test_a_failed_warm_up_ends_a_livekit_run_before_it_joins(capfd):
    args = run_args("--livekit-url", "wss://lk.invalid", "--room", "demo", "--token", "t")
    factory = FakeSessionFactory(warm_error=ModelUnavailableError("weights are missing"))
    code = await asyncio.wait_for(cli.serve(args, factory, cli.StartupProgress()), 20)
    err = capfd.readouterr().err
    assert code == 1 and cannot_start_lines(err) == ["tandem: cannot start: weights are missing"]
    assert "Traceback" not in err


async def test_a_warm_up_that_succeeds_still_serves_until_stopped():
    factory = FakeSessionFactory()
    task = asyncio.ensure_future(cli.serve(run_args(), factory, cli.StartupProgress()))
    await asyncio.sleep(0.5)
    assert not task.done()  # warm, serving: no early exit
    os.kill(os.getpid(), signal.SIGINT)
    assert await asyncio.wait_for(task, 10) == 0


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NO_WHISPER, 'pip install "pipecat-tandem[local]"'),
        (ModuleNotFoundError("No module named 'xllamacpp'", name="xllamacpp"), "[local] extra"),
        (ModuleNotFoundError("No module named 'zzz'", name="zzz.sub"), "no module named 'zzz'"),
        (ValueError("openai:x needs an API key: set OPENAI_API_KEY"), "set OPENAI_API_KEY"),
        (OSError(errno.EROFS, "Read-only file system", "/m/x.lock"), "Read-only file system: /m"),
        (RuntimeError("boom\n  second line"), "RuntimeError: boom second line"),
    ],
)
def test_every_failure_is_one_line_naming_the_fix(error, expected):
    line = cli.startup_failure(error)
    assert expected in line and "\n" not in line


def test_a_cached_model_that_will_not_load_says_delete_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TANDEM_MODEL_DIR", str(tmp_path))
    (tmp_path / "m.gguf").write_bytes(b"junk")
    error = ModelUnavailableError("could not load m.gguf: Failed to init server.")
    line = cli.startup_failure(error)
    assert line == (
        "could not load m.gguf: Failed to init server; delete the corrupt cached file "
        f"{tmp_path / 'm.gguf'} and start again (it is rebuilt)"
    )
    other = ModelUnavailableError("could not load elsewhere.gguf: Failed to init server")
    assert "delete" not in cli.startup_failure(other)  # not in the cache: nothing to delete


def test_record_dir_is_checked_before_serving(tmp_path, capfd):
    blocker = tmp_path / "file"
    blocker.write_text("")
    parser = cli.build_parser()
    args = parser.parse_args(["run", "--port", "0", "--record", str(blocker / "rec")])
    factory = FakeSessionFactory()
    assert cli.run_command(args, parser, factory=factory) == 1
    assert factory.progress == []  # the models were never touched
    (line,) = cannot_start_lines(capfd.readouterr().err)
    assert f"--record {blocker / 'rec'}" in line


def test_a_full_record_disk_is_found_at_start(tmp_path, monkeypatch):
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cli.os, "fsync", no_space)
    problem = cli.record_dir_problem(tmp_path / "rec")
    assert problem is not None and "No space left on device" in problem
    assert "free some space" in problem
    assert list((tmp_path / "rec").iterdir()) == []  # the probe file is gone


def test_a_writable_record_dir_is_created_and_left_empty(tmp_path):
    assert cli.record_dir_problem(tmp_path / "a" / "rec") is None
    assert list((tmp_path / "a" / "rec").iterdir()) == []


#
# tandem run as a subprocess: exits, with one line
#


def tandem_run(*argv: str, env: dict[str, str] | None = None, timeout: float = 120):
    """Run ``python -m pipecat_tandem run --port 0 ...``; fail if it does not exit."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    full_env.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipecat_tandem", "run", "--port", "0", *argv],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=full_env, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"tandem run did not exit within {timeout} s; stderr ends:\n{err[-3000:]}")
    return proc.returncode, err


def assert_one_clear_line(code: int, err: str, *fragments: str) -> str:
    assert code == 1, err[-3000:]
    lines = cannot_start_lines(err)
    assert len(lines) == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_run_with_an_unwritable_record_dir_exits(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")  # as root chmod blocks nothing: a path under a file cannot exist
    code, err = tandem_run("--record", str(blocker / "rec"), timeout=60)
    assert_one_clear_line(code, err, f"--record {blocker / 'rec'}", "cannot create")
    assert "listening on" not in err  # refused before the port was opened


def test_run_without_the_local_extra_exits_with_the_install_hint(tmp_path):
    # A package that fails to import exactly as a missing one does shadows faster_whisper.
    blocker = tmp_path / "blocker" / "faster_whisper"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'faster_whisper'\", name='faster_whisper')\n"
    )
    path = os.pathsep.join(filter(None, [str(blocker.parent), os.environ.get("PYTHONPATH")]))
    code, err = tandem_run(env={"PYTHONPATH": path, "TANDEM_MODEL_DIR": str(tmp_path / "m")})
    assert_one_clear_line(code, err, "faster_whisper", 'pip install "pipecat-tandem[local]"')


def test_run_with_an_unwritable_model_cache_exits(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, err = tandem_run(env={"TANDEM_MODEL_DIR": str(blocker / "models")})
    assert_one_clear_line(code, err, str(blocker / "models"), "set TANDEM_MODEL_DIR")


def fake_cache(directory: Path) -> list[Path]:
    """Sparse stand-ins for the three cached models, each with a stamp that vouches for it.

    Size, mtime and fingerprint all match, so the checks pass and the runtime is
    what finds the files unusable: the corruption no cheap check can see.
    """
    from pipecat_tandem.models.requantize import CONVERTER_VERSION, QWEN_05B_Q4_0
    from pipecat_tandem.models.weights import QWEN_05B, QWEN_15B

    directory.mkdir(parents=True)
    converted = QWEN_05B_Q4_0
    files = [
        (QWEN_05B.filename, QWEN_05B.size, {"sha256": QWEN_05B.sha256}),
        (QWEN_15B.filename, QWEN_15B.size, {"sha256": QWEN_15B.sha256}),
        (
            converted.filename,
            377_679_744,
            {
                "source_sha256": converted.source.sha256,
                "qtype": converted.qtype,
                "keep": sorted(converted.keep),
                "converter": CONVERTER_VERSION,
                "sha256": "0" * 64,
            },
        ),
    ]
    for name, size, fields in files:
        path = directory / name
        with open(path, "wb") as f:
            f.truncate(size)  # sparse: no disk space used
        st = path.stat()
        stamp = {**fields, "size": size, "mtime_ns": st.st_mtime_ns}
        stamp["fingerprint"] = weights.fingerprint_file(path)
        weights.stamp_path(path).write_text(json.dumps(stamp))
    return [directory / name for name, _, _ in files]


@pytest.mark.slow
def test_run_with_a_corrupt_cached_model_exits_naming_the_file(tmp_path):
    cached = fake_cache(tmp_path / "models")
    code, err = tandem_run(env={"TANDEM_MODEL_DIR": str(tmp_path / "models")})
    line = assert_one_clear_line(code, err, "delete the corrupt cached file")
    # Whichever model the runtime tried first is named, with its full path.
    named = [p for p in cached if f"delete the corrupt cached file {p} " in line]
    assert len(named) == 1, line
