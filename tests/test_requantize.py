"""Re-encoding a GGUF model's matrices (models/requantize.py) on small synthetic files."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q

from pipecat_tandem.errors import ModelUnavailableError
from pipecat_tandem.models import requantize
from pipecat_tandem.models.requantize import (
    QWEN_05B_Q4_0,
    RequantizedModel,
    ensure_requantized,
    ensure_weights,
    requantize_gguf,
)
from pipecat_tandem.models.weights import QWEN_05B, SplitModel

from .test_models_weights import make_parts, quiet

RNG = np.random.default_rng(7)
MATRIX = RNG.standard_normal((8, 64)).astype(np.float32)
ODD_ROWS = RNG.standard_normal((4, 48)).astype(np.float32)  # 48 is not a multiple of 32
NORM = RNG.standard_normal(64).astype(np.float32)
EMBED = RNG.standard_normal((16, 64)).astype(np.float32)


def write_gguf(path: Path) -> None:
    """A small model file with the shapes and metadata kinds a real one has."""
    writer = gguf.GGUFWriter(path, arch="qwen2")
    writer.add_name("tiny test model")
    writer.add_uint32("qwen2.block_count", 1)
    writer.add_float32("qwen2.rope.freq_base", 1000000.0)
    writer.add_array("tokenizer.ggml.tokens", ["<a>", "<b>", "hello"])
    writer.add_array("tokenizer.ggml.token_type", [1, 1, 3])
    writer.add_tensor("blk.0.attn_q.weight", MATRIX)  # F32 matrix: converted
    q8 = gguf.quants.quantize(MATRIX * 2, Q.Q8_0)
    writer.add_tensor("blk.0.ffn_up.weight", q8, raw_dtype=Q.Q8_0)  # Q8_0 matrix: converted
    writer.add_tensor("blk.0.odd.weight", ODD_ROWS)  # rows do not fit Q4_0 blocks: copied
    writer.add_tensor("blk.0.attn_norm.weight", NORM)  # 1-D: copied
    writer.add_tensor("token_embd.weight", EMBED)  # kept by name
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def tensors(path: Path) -> dict[str, tuple[Q, np.ndarray]]:
    reader = gguf.GGUFReader(path)
    return {
        t.name: (t.tensor_type, gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1))
        for t in reader.tensors
    }


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "src.gguf"
    write_gguf(path)
    return path


def test_matrices_become_q4_0_and_everything_else_is_kept(source, tmp_path):
    target = tmp_path / "out.gguf"
    digest = requantize_gguf(
        source, target, "Q4_0", keep=frozenset({"token_embd.weight"}), progress=quiet
    )
    assert digest == hashlib.sha256(target.read_bytes()).hexdigest()
    out, before = tensors(target), tensors(source)
    assert out["blk.0.attn_q.weight"][0] is Q.Q4_0
    assert out["blk.0.ffn_up.weight"][0] is Q.Q4_0
    for name in ("blk.0.odd.weight", "blk.0.attn_norm.weight", "token_embd.weight"):
        assert out[name][0] is before[name][0] is Q.F32
        np.testing.assert_array_equal(out[name][1], before[name][1])
    for name in ("blk.0.attn_q.weight", "blk.0.ffn_up.weight"):
        error = np.abs(out[name][1] - before[name][1]).max()
        # Q4_0: 16 levels per block of 32, so within ~1/8 of the block's largest value.
        assert 0 < error <= np.abs(before[name][1]).max() / 7
    # Shapes survive (numpy order), so llama.cpp sees the same model.
    shapes = {t.name: list(t.shape) for t in gguf.GGUFReader(target).tensors}
    assert shapes == {t.name: list(t.shape) for t in gguf.GGUFReader(source).tensors}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_metadata_is_copied_key_for_key(source, tmp_path):
    target = tmp_path / "out.gguf"
    requantize_gguf(source, target, "Q8_0", progress=quiet)
    src, out = gguf.GGUFReader(source), gguf.GGUFReader(target)
    keys = [k for k in src.fields if not k.startswith("GGUF.")]
    assert keys == [k for k in out.fields if not k.startswith("GGUF.")]
    for key in keys:
        assert out.fields[key].contents() == src.fields[key].contents(), key


def test_conversion_is_deterministic(source, tmp_path):
    first = requantize_gguf(source, tmp_path / "a.gguf", "Q4_0", progress=quiet)
    assert requantize_gguf(source, tmp_path / "b.gguf", "Q4_0", progress=quiet) == first


def test_progress_reaches_the_whole_source(source, tmp_path):
    seen: list[tuple[str, int, int]] = []
    requantize_gguf(source, tmp_path / "o.gguf", "Q4_0", progress=lambda *a: seen.append(a))
    converting = [s for s in seen if s[0].startswith("converting")]
    assert converting and converting[-1][1] == converting[-1][2] > 0
    assert [s[1] for s in converting] == sorted(s[1] for s in converting)


@pytest.mark.parametrize("content", [b"", b"GGUF", b"not a model at all" * 100])
def test_a_source_that_is_not_gguf_is_a_clear_error_and_leaves_nothing(tmp_path, content):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    with pytest.raises(ModelUnavailableError, match="not a readable GGUF"):
        requantize_gguf(bad, tmp_path / "out.gguf", "Q4_0", progress=quiet)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.gguf"]


def test_a_truncated_source_is_a_clear_error(source, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(ModelUnavailableError):
        requantize_gguf(cut, tmp_path / "out.gguf", "Q4_0", progress=quiet)
    assert not (tmp_path / "out.gguf").exists()


def test_an_unwritable_target_is_a_clear_error(source, tmp_path):
    with pytest.raises(ModelUnavailableError, match="TANDEM_MODEL_DIR"):
        requantize_gguf(source, tmp_path / "missing" / "out.gguf", "Q4_0", progress=quiet)


@pytest.mark.parametrize("qtype", ["Q4_K", "q4_0", "", "F32", "Q4_0 "])
def test_unsupported_target_types_are_refused(source, tmp_path, qtype):
    with pytest.raises(ModelUnavailableError, match="cannot convert"):
        requantize_gguf(source, tmp_path / "out.gguf", qtype, progress=quiet)


def test_missing_gguf_package_names_what_to_install(source, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_gguf(name, *args, **kwargs):
        if name == "gguf":
            raise ImportError("No module named 'gguf'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gguf)
    with pytest.raises(ModelUnavailableError, match="gguf==0.19.0"):
        requantize_gguf(source, tmp_path / "out.gguf", "Q4_0", progress=quiet)


# --- ensure_requantized: once per cache, verified after ---------------------------------


@pytest.fixture
def split_source(tmp_path, monkeypatch, source) -> SplitModel:
    """The synthetic model shipped as two fake part packages."""
    blob = source.read_bytes()
    site = tmp_path / "site"
    prefix = f"fake-gguf-{os.getpid()}-{id(tmp_path)}-part"
    make_parts(site, prefix, [blob[:1000], blob[1000:]])
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return SplitModel(
        "Fake GGUF", "fake.gguf", prefix, 2, hashlib.sha256(blob).hexdigest(), len(blob)
    )


def labels(calls: list[tuple[str, int, int]]) -> set[str]:
    return {label.split()[0] for label, *_ in calls}


def test_converts_once_then_trusts_its_stamp(split_source, tmp_path):
    model = RequantizedModel(split_source, "fake-q4_0.gguf")
    cache = tmp_path / "cache"
    calls: list = []
    path = ensure_requantized(model, cache_dir=cache, progress=lambda *a: calls.append(a))
    assert path == cache / "fake-q4_0.gguf"
    assert {"assembling", "converting"} <= labels(calls)
    stamp = json.loads((cache / "fake-q4_0.gguf.verified").read_text())
    assert stamp["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert stamp["source_sha256"] == split_source.sha256 and stamp["qtype"] == "Q4_0"
    calls.clear()
    assert ensure_weights(model, cache_dir=cache, progress=lambda *a: calls.append(a)) == path
    assert calls == []  # neither hashed nor converted again


def test_a_touched_file_is_rehashed_not_reconverted(split_source, tmp_path):
    model = RequantizedModel(split_source, "fake-q4_0.gguf")
    cache = tmp_path / "cache"
    path = ensure_requantized(model, cache_dir=cache, progress=quiet)
    os.utime(path, ns=(1, 1))
    calls: list = []
    ensure_requantized(model, cache_dir=cache, progress=lambda *a: calls.append(a))
    assert labels(calls) == {"verifying"}


def test_a_corrupt_file_is_made_again(split_source, tmp_path):
    model = RequantizedModel(split_source, "fake-q4_0.gguf")
    cache = tmp_path / "cache"
    path = ensure_requantized(model, cache_dir=cache, progress=quiet)
    good = path.read_bytes()
    path.write_bytes(good[:-4] + b"\0\0\0\0")  # same size, new mtime
    calls: list = []
    assert ensure_requantized(model, cache_dir=cache, progress=lambda *a: calls.append(a)) == path
    assert "converting" in labels(calls)
    assert path.read_bytes() == good


def test_another_recipe_or_a_missing_stamp_converts_again(split_source, tmp_path):
    cache = tmp_path / "cache"
    path = ensure_requantized(
        RequantizedModel(split_source, "f.gguf"), cache_dir=cache, progress=quiet
    )
    calls: list = []
    ensure_requantized(
        RequantizedModel(split_source, "f.gguf", "Q8_0"),
        cache_dir=cache,
        progress=lambda *a: calls.append(a),
    )
    assert "converting" in labels(calls)
    assert gguf.GGUFReader(path).tensors[0].tensor_type is Q.Q8_0
    (cache / "f.gguf.verified").write_text("{not json")
    calls.clear()
    ensure_requantized(
        RequantizedModel(split_source, "f.gguf", "Q8_0"),
        cache_dir=cache,
        progress=lambda *a: calls.append(a),
    )
    assert "converting" in labels(calls)


def test_missing_source_parts_name_the_package(tmp_path):
    absent = SplitModel("Absent", "absent.gguf", "surely-not-installed-part", 2, "0" * 64)
    with pytest.raises(ModelUnavailableError, match="surely-not-installed-part1"):
        ensure_requantized(
            RequantizedModel(absent, "absent-q4_0.gguf"), cache_dir=tmp_path, progress=quiet
        )
    assert not (tmp_path / "absent-q4_0.gguf").exists()


def test_the_default_interaction_model_is_the_q4_0_conversion_of_the_shipped_0_5b():
    assert QWEN_05B_Q4_0.source is QWEN_05B
    assert QWEN_05B_Q4_0.qtype == "Q4_0" and QWEN_05B_Q4_0.keep == {"token_embd.weight"}
    assert QWEN_05B_Q4_0.filename != QWEN_05B.filename
    assert "Q4_0" in QWEN_05B_Q4_0.name and requantize.CONVERTER_VERSION >= 1
