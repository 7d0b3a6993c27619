"""Start-up failures of ``tandem run``: detected early, one clear line, a non-zero exit.

Model cache checks run on small fake models (never the real cache); the ``tandem
run`` cases start the real command as a subprocess and need no network: each
fails before any model is loaded, or on fake (sparse) cached files.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import json
import os
from pathlib import Path

import pytest

from pipecat_tandem.errors import ModelUnavailableError
from pipecat_tandem.models import requantize, weights
from pipecat_tandem.models.requantize import RequantizedModel, ensure_requantized
from pipecat_tandem.models.weights import SplitModel, ensure_model

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
    with pytest.raises(ModelUnavailableError, match="set TANDEM_MODEL_DIR to a writable"):
        ensure_requantized(fake_gguf_model, cache_dir=cache, progress=quiet)


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
