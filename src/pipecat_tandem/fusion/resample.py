#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Streaming PCM conversion to 16 kHz mono: channel downmix and rate conversion.

:class:`StreamResampler` keeps state between chunks, so a stream cut into 10 or 20 ms
transport frames is converted without seams (a stateless per-chunk resampler would
leave a dip at every chunk border, which dMel would see as a 50 Hz flutter).

Method: a windowed-sinc low-pass FIR (Blackman, cutoff at 0.45 × the lower rate)
when the rate goes down, then linear interpolation at the output instants. The FIR's
group delay is compensated (output sample ``j`` is the input at time ``j / out_rate``
exactly), so the last ``(taps - 1) / 2`` input samples of a chunk (0.31 ms at 48 kHz)
are held back until the next chunk arrives; :meth:`StreamResampler.process` returns
slightly fewer samples for the first chunk and catches up afterwards.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["StreamResampler", "to_mono"]


def to_mono(pcm: bytes, *, num_channels: int) -> npt.NDArray[np.int16] | npt.NDArray[np.float32]:
    """Decode interleaved int16 PCM bytes and average the channels.

    Mono input comes back as a read-only ``int16`` view of ``pcm`` (no copy: this is the
    common 16 kHz mono transport case, and :meth:`StreamResampler.process` passes it
    through untouched); several channels come back as their ``float32`` mean.

    Raises:
        ValueError: If the byte length is not a whole number of int16 frames.
    """
    if num_channels < 1:
        raise ValueError(f"num_channels must be >= 1, got {num_channels}")
    if len(pcm) % (2 * num_channels):
        raise ValueError(
            f"{len(pcm)} bytes is not a whole number of {num_channels}-channel int16 frames"
        )
    x = np.frombuffer(pcm, dtype=np.int16)
    if num_channels == 1:
        return x
    return x.reshape(-1, num_channels).astype(np.float32).mean(axis=1, dtype=np.float32)


def _lowpass(taps: int, cutoff: float) -> npt.NDArray[np.float32]:
    n = np.arange(taps) - (taps - 1) / 2.0
    h = 2.0 * cutoff * np.sinc(2.0 * cutoff * n) * np.blackman(taps)
    return (h / h.sum()).astype(np.float32)


class StreamResampler:
    """Convert one continuous mono stream from ``in_rate`` to ``out_rate``.

    Example::

        rs = StreamResampler(in_rate=48000)
        out = rs.process(chunk_float32)  # int16, ~len(chunk) / 3 samples
    """

    def __init__(self, *, in_rate: int, out_rate: int = 16000, taps: int = 31) -> None:
        """Create a resampler.

        Args:
            in_rate: Input sample rate in Hz.
            out_rate: Output sample rate in Hz.
            taps: FIR length used when downsampling (odd).

        Raises:
            ValueError: On a non-positive rate or an even/short tap count.
        """
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError("sample rates must be positive")
        if taps < 3 or taps % 2 == 0:
            raise ValueError("taps must be odd and >= 3")
        self.in_rate, self.out_rate = in_rate, out_rate
        self._h = _lowpass(taps, 0.45 * out_rate / in_rate) if in_rate > out_rate else None
        self._hist = np.zeros(taps - 1 if self._h is not None else 0, dtype=np.float32)
        self._last = np.float32(0.0)  # last filtered input sample, for interpolation
        self._delay = (taps - 1) // 2 if self._h is not None else 0
        self._n_in = 0
        self._n_out = 0

    def process(self, x: npt.ArrayLike) -> npt.NDArray[np.int16]:
        """Convert the next chunk; returns every output sample it completes.

        ``int16`` input at an unchanged rate is returned as is (no copy).
        """
        arr = np.asarray(x)
        if self.in_rate == self.out_rate and arr.dtype == np.int16 and arr.ndim == 1:
            self._n_in += arr.size
            self._n_out += arr.size
            return arr
        sig = np.asarray(arr, dtype=np.float32).reshape(-1)
        if sig.size == 0:
            return np.zeros(0, dtype=np.int16)
        if self.in_rate == self.out_rate:
            self._n_in += sig.size
            self._n_out += sig.size
            return np.clip(np.rint(sig), -32768, 32767).astype(np.int16)
        if self._h is not None:
            buf = np.concatenate([self._hist, sig])
            filt = np.convolve(buf, self._h, mode="valid").astype(np.float32)
            self._hist = buf[buf.size - self._hist.size :]
        else:
            filt = sig
        # filt[k] is the filtered value centred on input sample n_in + k - delay;
        # g[0] is the previous chunk's last filtered value (centred one sample earlier).
        g = np.concatenate([[self._last], filt])
        end = self._n_in + sig.size - 1 - self._delay  # last input instant available
        j_hi = (end * self.out_rate) // self.in_rate
        j = np.arange(self._n_out, j_hi + 1, dtype=np.int64)
        pos = j * (self.in_rate / self.out_rate) - (self._n_in - 1 - self._delay)
        y = np.interp(pos, np.arange(g.size, dtype=np.float64), g)
        self._n_in += sig.size
        self._n_out = j_hi + 1
        self._last = filt[-1]
        return np.clip(np.rint(y), -32768, 32767).astype(np.int16)
