#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""The optimized paths of the fusion code agree with plain reference computations."""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from pipecat_tandem.fusion import (
    DMelEncoder,
    PatchEmbedder,
    SpeechEnergyDetector,
    StreamResampler,
    to_mono,
)
from pipecat_tandem.fusion.dmel import mel_filterbank
from pipecat_tandem.fusion.periodicity import spectral_period, spectral_period_of
from pipecat_tandem.fusion.repetition import RepetitionCounter
from pipecat_tandem.processors.encoder_free_fusion_processor import EncoderFreeFusionProcessor


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def _reference_dmel(enc: DMelEncoder, x: np.ndarray) -> np.ndarray:
    """The textbook computation: float64 framing, numpy FFT, log10, floor, clip."""
    left = enc.window - enc.hop
    n_hops = x.size // enc.hop
    sig = np.concatenate([np.zeros(left), x[: n_hops * enc.hop].astype(np.float64)])
    win = np.hanning(enc.window + 2)[1:-1]
    win = win / np.sqrt(np.sum(win**2)) / 32768.0
    frames = np.stack([sig[i * enc.hop : i * enc.hop + enc.window] for i in range(n_hops)])
    power = np.abs(np.fft.rfft(frames * win, n=enc.n_fft, axis=1)) ** 2
    fb = mel_filterbank(sample_rate=enc.sample_rate, n_fft=enc.n_fft, n_mels=enc.n_mels)
    db = 10.0 * np.log10(power @ fb.T.astype(np.float64) + 1e-12)
    codes = np.floor((db - enc.floor_db) * enc.n_levels / (enc.ceil_db - enc.floor_db))
    return np.clip(codes, 0, enc.n_levels - 1).astype(np.uint8)


def test_dmel_matches_reference_within_rounding():
    rng = np.random.default_rng(0)
    enc = DMelEncoder()
    for amp in (0, 3, 300, 3000, 30000):
        x = np.clip(rng.standard_normal(8000) * amp, -32768, 32767).astype(np.int16)
        got, ref = enc.encode(x).astype(int), _reference_dmel(enc, x).astype(int)
        assert np.abs(got - ref).max() <= 1  # float32 vs float64 at a level boundary
        assert np.mean(got != ref) < 0.002


def _reference_embed(emb: PatchEmbedder, img: np.ndarray) -> np.ndarray:
    """The stem as written in the module docstring, float64, no folding."""
    p = {k: v.astype(np.float64) for k, v in emb._p.items()}
    gh, gw = emb.grid(*img.shape[:2])
    side = emb.patch // emb.pool
    x = img[: gh * emb.patch, : gw * emb.patch].astype(np.float64) / 255.0 - 0.5
    x = x.reshape(gh * side, emb.pool, gw * side, emb.pool, 3).mean(axis=(1, 3))
    s = emb.sub
    x = x.reshape(gh, 2, s, gw, 2, s, 3).transpose(0, 3, 1, 4, 2, 5, 6)

    def ln_gelu(y, g, c):
        y = (y - y.mean(axis=1, keepdims=True)) / np.sqrt(y.var(axis=1, keepdims=True) + 1e-5)
        y = y * g + c
        return y / (1.0 + np.exp(-1.702 * y))

    y = ln_gelu(x.reshape(-1, s * s * 3) @ p["w1"] + p["b1"], p["g1"], p["c1"])
    return y.reshape(-1, 4 * emb.hidden) @ p["w2"] + p["b2"]


def test_patch_embedding_matches_float64_reference():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)
    stems = [PatchEmbedder(), PatchEmbedder(pool=1, hidden=16, dim=48, seed=3)]
    stems += [PatchEmbedder(pool=5, hidden=8, dim=32, seed=4)]  # one resize, not halvings
    for emb in stems:
        ref = _reference_embed(emb, img)
        got = emb.embed(img)
        # cv2's area averages round the pooled pixels to uint8 (<= 0.5 / 255 per pixel
        # and pass; the default 4×4 pool is two 2×2 passes).
        assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max()
        assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.999


def test_patch_buffers_survive_size_changes_and_threads():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    emb = PatchEmbedder()
    ea, eb = emb.embed(a), emb.embed(b)
    assert np.array_equal(emb.embed(a), ea)  # buffers re-made for the new size
    assert np.array_equal(PatchEmbedder().embed(b), eb)
    assert np.array_equal(emb.embed(a[:, ::-1]), PatchEmbedder().embed(a[:, ::-1].copy()))
    results: list[bool] = []

    def work():
        results.extend(np.array_equal(emb.embed(a), ea) for _ in range(5))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 15
    assert emb.embed(a) is not emb.embed(a)  # callers own the returned arrays


class _LoopOnly(SpeechEnergyDetector):
    def _fast_path(self, energy, t):
        return t.size == 0


def test_speech_fast_path_equals_per_hop_loop():
    rng = np.random.default_rng(3)
    fast, slow = SpeechEnergyDetector(), _LoopOnly()
    level = np.repeat(rng.choice([1, 2, 9, 12], size=60), 23)[:1200]  # 0.23 s segments
    codes = np.clip(level[:, None] + rng.integers(0, 3, (1200, 80)), 0, 15).astype(np.uint8)
    times = np.arange(1200) * 0.01
    got, want = [], []
    for i in range(0, 1200, 20):
        got += fast.update(codes[i : i + 20], times[i : i + 20])
        want += slow.update(codes[i : i + 20], times[i : i + 20])
    assert len(want) > 4
    assert [(c.kind, round(c.time, 6)) for c in got] == [(c.kind, round(c.time, 6)) for c in want]
    assert fast.floor == pytest.approx(slow.floor) and fast.speaking == slow.speaking


def test_tracked_subspace_period_matches_exact():
    rng = np.random.default_rng(4)
    n, period, fps = 90, 1.7, 5.0
    t = np.arange(n) / fps
    phase = 2 * np.pi * t / period
    feats = (
        np.outer(np.sin(phase), rng.standard_normal(32)) * 5
        + np.outer(np.cos(2 * phase), rng.standard_normal(32)) * 2
        + rng.standard_normal((n, 32)) * 0.3
    )
    rc = RepetitionCounter(refresh=1000)  # track from the first exact basis on
    for i in range(n):
        rc._series.append(feats[i], float(t[i]))
        if i >= 7:
            tracked = spectral_period_of(rc._components(), rc._series.times)
    exact = spectral_period(feats, t)
    assert tracked[0] == pytest.approx(period, rel=0.03)
    assert tracked[0] == pytest.approx(exact[0], rel=1e-3)
    assert tracked[1] == pytest.approx(exact[1], abs=1e-3)


def test_mono_passthrough_and_resampler_int16_path():
    pcm = (np.arange(320) - 160).astype(np.int16)
    mono = to_mono(pcm.tobytes(), num_channels=1)
    assert mono.dtype == np.int16 and np.array_equal(mono, pcm)
    rs = StreamResampler(in_rate=16000)
    assert np.array_equal(rs.process(mono), pcm)
    assert np.array_equal(rs.process(mono.astype(np.float32)), pcm)  # float path agrees


def test_fusion_processor_rejects_bad_blas_threads():
    with pytest.raises(ValueError):
        EncoderFreeFusionProcessor(blas_threads=0)


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


@pytest.mark.parametrize("outside", [1, 2])
def test_fusion_runs_blas_at_its_limit_and_restores_only_what_it_raised(outside, monkeypatch):
    from threadpoolctl import ThreadpoolController

    from pipecat_tandem.frames import MicroTurnFrame

    seen: list[list[int]] = []
    sets: list[int] = []
    proc = EncoderFreeFusionProcessor(blas_threads=1)
    work = proc._fuse_unlimited
    monkeypatch.setattr(
        proc, "_fuse_unlimited", lambda f: (seen.append(_blas_threads()), work(f))[1]
    )
    img = np.zeros((240, 320, 3), np.uint8)
    frame = MicroTurnFrame(
        index=0, start=0.0, duration=0.2, audio=bytes(6400), sample_rate=16000,
        images=[(0.1, 320, 240, img.tobytes())],
    )  # fmt: skip
    with threadpool_limits(limits=outside, user_api="blas"):
        libs = ThreadpoolController().select(user_api="blas").lib_controllers
        assert libs, "numpy's OpenBLAS is always there"
        kind = type(libs[0])
        real_set = kind.set_num_threads
        monkeypatch.setattr(
            kind, "set_num_threads", lambda s, n: (sets.append(n), real_set(s, n))[1]
        )
        proc._fuse(frame)
        monkeypatch.undo()
        assert _blas_threads() == [outside] * len(libs)  # as it was
    assert seen and set(seen[0]) == {1}
    # At the limit already, nothing is set or restored; above it, each library
    # is set to the limit and back (the old code set and restored both always).
    assert sets == ([] if outside == 1 else [1] * len(libs) + [2] * len(libs))
