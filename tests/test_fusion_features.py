#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""dMel and hMLP patch embedding properties (pure numpy, no event loop)."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from pipecat_tandem.fusion import DMelEncoder, PatchEmbedder, patch_distances


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # Small matrices: OpenBLAS threads on 2 shared cores are ~10x slower (docs/bench/fusion.md).
    with threadpool_limits(limits=1):
        yield


def _noise(n, amp, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(rng.standard_normal(n) * amp, -32768, 32767).astype(np.int16)


def test_dmel_shape_dtype_range():
    enc = DMelEncoder(sample_rate=16000, n_mels=80, n_levels=16)
    codes = enc.encode(_noise(3200, 3000))
    assert codes.shape == (20, 80)
    assert codes.dtype == np.uint8
    assert codes.max() < 16
    assert enc.hop == 160 and enc.window == 400 and enc.hop_seconds == pytest.approx(0.01)


def test_dmel_partial_hop_and_empty():
    enc = DMelEncoder()
    assert enc.encode(np.zeros(159, np.int16)).shape == (0, 80)
    assert enc.encode(np.zeros(0, np.int16)).shape == (0, 80)
    assert enc.encode(np.zeros(479, np.int16)).shape == (2, 80)


def test_dmel_silence_lowest_and_louder_higher():
    enc = DMelEncoder()
    assert enc.encode(np.zeros(3200, np.int16)).max() == 0
    means = [enc.encode(_noise(3200, a)).mean() for a in (10, 100, 1000, 10000)]
    assert all(b > a for a, b in zip(means, means[1:], strict=False))
    # Per channel too: a louder copy of the same signal never gets lower codes.
    x = _noise(3200, 500, seed=3)
    quiet, loud = enc.encode(x), enc.encode((x.astype(np.int32) * 8).astype(np.int16))
    assert np.all(loud >= quiet) and loud.mean() > quiet.mean()


def test_dmel_deterministic_and_streaming_equals_batch():
    enc = DMelEncoder()
    x = _noise(16000, 2000, seed=1)
    a = enc.encode(x)
    assert np.array_equal(a, enc.encode(x))
    stream = enc.stream()
    b = np.concatenate([stream.push(x[i : i + 777]) for i in range(0, x.size, 777)])
    assert np.array_equal(a, b)
    stream.reset()
    assert np.array_equal(stream.push(x[:3200]), a[:20])


@pytest.mark.parametrize(
    "bad",
    [np.zeros(3200, np.float32), np.zeros((2, 1600), np.int16), [[1, 2]], np.zeros(10, np.int32)],
)
def test_dmel_rejects_malformed(bad):
    with pytest.raises(ValueError):
        DMelEncoder().encode(bad)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_rate": 1000},
        {"n_levels": 1},
        {"n_levels": 300},
        {"n_mels": 0},
        {"floor_db": 0.0, "ceil_db": -1.0},
    ],
)
def test_dmel_rejects_bad_config(kwargs):
    with pytest.raises(ValueError):
        DMelEncoder(**kwargs)


def _img(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_patch_shapes_including_odd_sizes():
    emb = PatchEmbedder(patch=40, dim=192, seed=0)
    for h, w in [(480, 640), (481, 641), (79, 120), (40, 40), (39, 640)]:
        out = emb.embed(_img(h, w))
        assert out.shape == ((h // 40) * (w // 40), 192)
        assert out.dtype == np.float32
        assert np.all(np.isfinite(out))


def test_patch_deterministic_per_seed():
    img = _img(120, 160)
    a = PatchEmbedder(seed=0).embed(img)
    assert np.array_equal(a, PatchEmbedder(seed=0).embed(img))
    assert not np.array_equal(a, PatchEmbedder(seed=1).embed(img))


def test_patch_is_local_and_raster_ordered():
    emb = PatchEmbedder()
    img = _img(80, 120, seed=2)
    base = emb.embed(img)
    changed = img.copy()
    changed[40:80, 80:120] = 255 - changed[40:80, 80:120]  # patch (row 1, col 2) only
    out = emb.embed(changed)
    diff = np.abs(out - base).sum(axis=1)
    assert np.flatnonzero(diff > 0).tolist() == [1 * 3 + 2]


def test_identical_frames_zero_change_and_different_frames_positive():
    emb = PatchEmbedder()
    a = emb.embed(_img(240, 320, seed=4))
    assert patch_distances(a, a.copy()).max() == 0.0
    b = emb.embed(_img(240, 320, seed=5))
    d = patch_distances(a, b)
    assert d.min() > 0.0 and d.max() <= 1.0


def test_patch_weights_roundtrip_and_validation(tmp_path):
    emb = PatchEmbedder(seed=7, hidden=16, dim=64)
    path = tmp_path / "stem.npz"
    emb.save(path)
    loaded = PatchEmbedder(weights=path)
    img = _img(80, 80)
    assert loaded.dim == 64 and np.array_equal(loaded.embed(img), emb.embed(img))
    data = dict(np.load(path))
    data["w2"] = data["w2"][:, :3]
    bad = tmp_path / "bad.npz"
    np.savez(bad, **data)
    with pytest.raises(ValueError, match="w2"):
        PatchEmbedder(weights=bad)
    data = dict(np.load(path))
    data["w1"] = data["w1"] * np.nan
    np.savez(bad, **data)
    with pytest.raises(ValueError, match="NaN"):
        PatchEmbedder(weights=bad)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((40, 40, 4), np.uint8),
        np.zeros((40, 40), np.uint8),
        np.zeros((40, 40, 3), np.float32),
    ],
)
def test_patch_rejects_non_rgb(bad):
    with pytest.raises(ValueError):
        PatchEmbedder().embed(bad)


def test_patch_rejects_bad_config():
    with pytest.raises(ValueError):
        PatchEmbedder(patch=30)  # not a multiple of 2 * pool
    with pytest.raises(ValueError):
        PatchEmbedder(dim=0)
