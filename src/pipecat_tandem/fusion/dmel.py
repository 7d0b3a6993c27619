#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""dMel: discretized log-mel filterbank codes, the encoder-free audio "tokens".

After Bai et al. 2024, "dMel: Speech Tokenization made Simple" (arXiv 2407.15835):
log-mel filterbank energies with every channel quantized into a few levels. There is
no learned encoder; a downstream model embeds each code with a "bag of embeddings".

Framing (16 kHz defaults):

* **hop** 10 ms (160 samples): one code vector per hop. Hop ``i`` covers samples
  ``[i * hop, (i + 1) * hop)`` of the input.
* **window** 25 ms (400 samples, Hann), *causal*: the window of hop ``i`` ends at the
  end of that hop, so a code never depends on future audio. :meth:`DMelEncoder.encode`
  zero-pads the missing left context; :class:`DMelStream` carries it over from the
  previous call, so consecutive micro-turns give the same codes as one long call.
* **FFT** 512 points; 80 triangular mel filters (HTK mel scale, 0 Hz to Nyquist),
  area-normalized so each band reports the *mean* power of its bins.

Quantization: band power in dB relative to int16 full scale is mapped linearly from
``[floor_db, ceil_db]`` (default ``[-90, +10]``, 6.25 dB per level with 16 levels) onto
``0 .. n_levels - 1`` and clipped. The range is fixed (not data-dependent, unlike the
paper's dataset min/max) so codes mean the same thing in every session: digital
silence and int16 rounding noise give code 0, louder input gives higher codes.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["DMelEncoder", "DMelStream"]


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(*, sample_rate: int, n_fft: int, n_mels: int) -> npt.NDArray[np.float32]:
    """Triangular HTK-mel filters, ``(n_mels, n_fft // 2 + 1)``, each row summing to 1.

    Narrow low bands can fall between FFT bins; those get the nearest bin so that no
    band is empty (an empty band would always read as silence).
    """
    n_bins = n_fft // 2 + 1
    freqs = np.linspace(0.0, sample_rate / 2.0, n_bins)
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(np.array(sample_rate / 2.0)), n_mels + 2))
    fb = np.zeros((n_mels, n_bins), dtype=np.float64)
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / max(mid - lo, 1e-9)
        down = (hi - freqs) / max(hi - mid, 1e-9)
        fb[m] = np.clip(np.minimum(up, down), 0.0, None)
        if fb[m].sum() <= 0.0:
            fb[m, int(np.argmin(np.abs(freqs - mid)))] = 1.0
    fb /= fb.sum(axis=1, keepdims=True)
    return fb.astype(np.float32)


class DMelEncoder:
    """Encode 16-bit PCM into dMel codes (see the module docstring for the framing).

    Example::

        enc = DMelEncoder()
        codes = enc.encode(pcm_int16)  # uint8, (len(pcm) // 160, 80), values < 16
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        n_mels: int = 80,
        n_levels: int = 16,
        hop_ms: float = 10.0,
        window_ms: float = 25.0,
        floor_db: float = -90.0,
        ceil_db: float = 10.0,
    ) -> None:
        """Create an encoder.

        Args:
            sample_rate: Input rate in Hz (8000..48000).
            n_mels: Number of mel channels.
            n_levels: Quantization levels per channel (2..256, codes are ``uint8``).
            hop_ms: Hop length in milliseconds.
            window_ms: Analysis window length in milliseconds (>= hop).
            floor_db: Band power (dBFS) mapped to code 0 and below.
            ceil_db: Band power (dBFS) mapped to the top code and above.

        Raises:
            ValueError: On an out-of-range parameter.
        """
        if not 8000 <= sample_rate <= 48000:
            raise ValueError(f"sample_rate must be within 8000..48000 Hz, got {sample_rate}")
        if not 1 <= n_mels <= 256:
            raise ValueError(f"n_mels must be within 1..256, got {n_mels}")
        if not 2 <= n_levels <= 256:
            raise ValueError(f"n_levels must be within 2..256, got {n_levels}")
        if not floor_db < ceil_db:
            raise ValueError("floor_db must be below ceil_db")
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.n_levels = n_levels
        self.hop = int(round(sample_rate * hop_ms / 1000.0))
        self.window = int(round(sample_rate * window_ms / 1000.0))
        if self.hop < 1 or self.window < self.hop:
            raise ValueError("need 0 < hop_ms <= window_ms")
        self.n_fft = 1 << (self.window - 1).bit_length()
        self.floor_db = float(floor_db)
        self.ceil_db = float(ceil_db)
        win = np.hanning(self.window + 2)[1:-1]  # periodic-ish Hann without zero endpoints
        # Power normalization: a full-scale white noise reads ~-5 dB in every band.
        self._win = (win / np.sqrt(np.sum(win**2)) / 32768.0).astype(np.float32)
        self._fb_t = np.ascontiguousarray(
            mel_filterbank(sample_rate=sample_rate, n_fft=self.n_fft, n_mels=n_mels).T
        )
        self._scale = n_levels / (self.ceil_db - self.floor_db)
        # Quantization: code = floor((10 log10(p + 1e-12) - floor_db) * scale), clipped;
        # computed as ln(p + 1e-12) * a + b with cv2's SIMD log (4x numpy's log10).
        self._qa = np.float32(10.0 / np.log(10.0) * self._scale)
        self._qb = np.float32(-self.floor_db * self._scale)

    @property
    def hop_seconds(self) -> float:
        """Hop length in seconds."""
        return self.hop / self.sample_rate

    def _check(self, pcm: npt.ArrayLike, name: str) -> npt.NDArray[np.int16]:
        arr = np.asarray(pcm)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
        if arr.dtype != np.int16:
            raise ValueError(f"{name} must be int16 PCM, got dtype {arr.dtype}")
        return arr

    def encode(self, pcm: npt.ArrayLike, *, context: npt.ArrayLike | None = None) -> np.ndarray:
        """Encode PCM into codes, one row per whole hop (a trailing partial hop is ignored).

        Args:
            pcm: 1-D ``int16`` samples at ``sample_rate``.
            context: Optional samples that immediately precede ``pcm`` (only the last
                ``window - hop`` are used); zeros are assumed when missing.

        Returns:
            ``uint8`` array ``(len(pcm) // hop, n_mels)`` with values ``< n_levels``.

        Raises:
            ValueError: If ``pcm`` or ``context`` is not a 1-D ``int16`` array.
        """
        x = self._check(pcm, "pcm")
        n_hops = x.shape[0] // self.hop
        if n_hops == 0:
            return np.zeros((0, self.n_mels), dtype=np.uint8)
        left = self.window - self.hop
        sig = np.empty(left + n_hops * self.hop, dtype=np.float32)
        sig[:left] = 0.0
        if context is not None and left:
            ctx = self._check(context, "context")[-left:]
            sig[left - ctx.shape[0] : left] = ctx
        sig[left:] = x[: n_hops * self.hop]
        # Overlapping frames as a strided view of the signal (no copy), windowed into a
        # zero-padded FFT buffer.
        frames = np.ndarray(
            (n_hops, self.window), dtype=np.float32, buffer=sig, strides=(4 * self.hop, 4)
        )
        buf = np.zeros((n_hops, self.n_fft), dtype=np.float32)
        np.multiply(frames, self._win, out=buf[:, : self.window])
        # cv2's real row DFT (2x numpy's here) in CCS packing:
        # [Re0, Re1, Im1, ..., Re(n/2 - 1), Im(n/2 - 1), Re(n/2)].
        spec = np.asarray(cv2.dft(buf, flags=cv2.DFT_ROWS))
        np.square(spec, out=spec)
        n = self.n_fft
        power = np.empty((n_hops, n // 2 + 1), dtype=np.float32)
        power[:, 0] = spec[:, 0]
        np.add(spec[:, 1 : n - 1 : 2], spec[:, 2:n:2], out=power[:, 1 : n // 2])
        power[:, n // 2] = spec[:, n - 1]
        mel = power @ self._fb_t
        mel += np.float32(1e-12)
        cv2.log(mel, dst=mel)
        mel *= self._qa
        mel += self._qb
        # Clipped to [0, n_levels - 1], truncation is the floor.
        np.clip(mel, 0.0, self.n_levels - 1, out=mel)
        return mel.astype(np.uint8)

    def stream(self) -> DMelStream:
        """A stateful encoder that carries context and partial hops between calls."""
        return DMelStream(self)


class DMelStream:
    """Streaming wrapper: consecutive :meth:`push` calls equal one long :meth:`encode`.

    Example::

        stream = DMelEncoder().stream()
        for chunk in micro_turn_chunks:
            codes = stream.push(chunk)
    """

    def __init__(self, encoder: DMelEncoder) -> None:
        """Wrap ``encoder``; the stream starts from silence."""
        self.encoder = encoder
        self._ctx = np.zeros(0, dtype=np.int16)  # last (window - hop) encoded samples
        self._pending = np.zeros(0, dtype=np.int16)  # samples short of a whole hop
        self._hops_done = 0

    @property
    def hops_done(self) -> int:
        """Hops emitted since the last reset."""
        return self._hops_done

    def reset(self) -> None:
        """Forget the carried context (use after a discontinuity)."""
        self._ctx = np.zeros(0, dtype=np.int16)
        self._pending = np.zeros(0, dtype=np.int16)
        self._hops_done = 0

    def push(self, pcm: npt.ArrayLike) -> np.ndarray:
        """Encode the next samples; returns the codes of every hop completed by them.

        Raises:
            ValueError: If ``pcm`` is not a 1-D ``int16`` array.
        """
        enc = self.encoder
        x = enc._check(pcm, "pcm")
        body = np.concatenate([self._pending, x]) if self._pending.size else x
        n = (body.shape[0] // enc.hop) * enc.hop
        codes = enc.encode(body[:n], context=self._ctx if self._ctx.size else None)
        left = enc.window - enc.hop
        if n and left:
            if n >= left:
                self._ctx = body[n - left : n].copy()
            else:
                self._ctx = np.concatenate([self._ctx, body[:n]])[-left:]
        self._pending = body[n:].copy()
        self._hops_done += n // enc.hop
        return codes
