"""The video path of a call, offline: aiortc's VP8 encoder and decoder, then the server's cues.

:func:`through_vp8` sends frames through libvpx with the settings of aiortc's
``Vp8Encoder`` (realtime, CBR at a target bitrate, noise sensitivity; only its
wall-clock speed adaptation is fixed, so a result repeats) and aiortc's
:class:`Vp8Decoder`, keeps the decoded frames the server would sample (its camera
input reads at most ``server_fps``), and converts them to RGB like the transport.
:func:`perceive` runs the server's perception on them: the patch embedder, the
cues' view of it and the cue detectors, fed as the fusion processor feeds them.
This is what calibrating the cues on "what arrives through WebRTC" means without a
network or a clock: the same codec with the same settings, faster than real time.
Repeatable run to run at 320×240; at 1280×720 two runs of one clip (one on a
loaded machine) once decoded differently from 1 s on, so a clip whose cue sits at
a threshold can come out either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction

import av
import numpy as np
from aiortc.codecs.opus import OpusDecoder, OpusEncoder
from aiortc.codecs.vpx import Vp8Decoder
from aiortc.jitterbuffer import JitterFrame

from pipecat_tandem.fusion.cue_view import CueView
from pipecat_tandem.fusion.cues import Cue, CueDetector, SpeechEnergyDetector
from pipecat_tandem.fusion.dmel import DMelEncoder
from pipecat_tandem.fusion.patches import PatchEmbedder
from pipecat_tandem.fusion.resample import StreamResampler

_VIDEO_CLOCK = Fraction(1, 90000)


def _vp8_encoder(width: int, height: int, bitrate: int) -> av.VideoCodecContext:
    """A libvpx encoder with the settings of aiortc's ``Vp8Encoder`` (aiortc 1.16), made repeatable.

    The one change: ``cpu-used`` 6 instead of -6 and one thread. A negative value lets
    libvpx trade quality for speed by the wall clock, so the same frames encode
    differently on a busy machine; a test must give one answer.
    """
    codec = av.CodecContext.create("libvpx", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height = width, height
    codec.bit_rate = bitrate
    codec.pix_fmt = "yuv420p"
    codec.gop_size = 3000
    codec.qmin, codec.qmax = 2, 56
    codec.options = {
        "bufsize": str(bitrate),
        "cpu-used": "6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "noise-sensitivity": "4",
        "overshoot-pct": "15",
        "partitions": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
    }
    codec.thread_count = 1
    return codec


def through_vp8(
    frames: Iterable[tuple[float, np.ndarray]],
    *,
    bitrate: int = 500_000,
    server_fps: float = 5.0,
) -> Iterator[tuple[float, np.ndarray]]:
    """Encode, decode and sample frames as a call does; yields ``(time, RGB)``.

    Args:
        frames: ``(time, RGB uint8 image)`` in time order, at the sender's rate.
        bitrate: The encoder's target bitrate (aiortc keeps it in 250 k - 1.5 M).
        server_fps: The server keeps at most this many decoded frames per second.
    """
    encoder: av.VideoCodecContext | None = None
    decoder = Vp8Decoder()
    next_keep = -1.0
    for t, rgb in frames:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = int(round(t / _VIDEO_CLOCK))
        frame.time_base = _VIDEO_CLOCK
        if encoder is None:
            encoder = _vp8_encoder(frame.width, frame.height, bitrate)
        data = b"".join(bytes(p) for p in encoder.encode(frame))
        timestamp = int(round(t * 90000))
        for decoded in decoder.decode(JitterFrame(data, timestamp)):
            if t + 1e-9 < next_keep:
                continue  # decoded (the codec needs every frame) but not sampled
            next_keep = t + 1.0 / server_fps
            assert isinstance(decoded, av.VideoFrame)
            yield t, decoded.to_ndarray(format="rgb24")


def perceive(
    frames: Iterable[tuple[float, np.ndarray]],
    detector: CueDetector | None = None,
    embedder: PatchEmbedder | None = None,
) -> list[Cue]:
    """The cues the server's perception finds in ``frames`` (``(time, RGB)``).

    No audio: only the video cues (``visual_change``, motion, periodicity, repetitions).
    """
    detector = detector or CueDetector()
    embedder = embedder or PatchEmbedder()
    view = CueView(embedder)
    cues: list[Cue] = []
    silence = np.zeros((0, detector.speech.n_mels), np.uint8)
    for t, rgb in frames:
        cues += detector.update(silence, np.zeros(0), [view.embed(rgb, embedder.embed(rgb))], [t])
    return cues


def through_opus(pcm: np.ndarray, sample_rate: int = 48000) -> np.ndarray:
    """Mono int16 ``pcm`` at 48 kHz through aiortc's Opus encoder and decoder, at 16 kHz.

    What the server's ingest gets of the caller's microphone: Opus at a call's
    settings (voip, 96 kbit/s), decoded, then resampled to 16 kHz.
    """
    if sample_rate != 48000 or pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError("through_opus takes mono int16 samples at 48 kHz")
    encoder, decoder = OpusEncoder(), OpusDecoder()
    resampler = StreamResampler(in_rate=48000, out_rate=16000)
    out: list[np.ndarray] = []
    for k in range(0, len(pcm) - 959, 960):
        frame = av.AudioFrame.from_ndarray(pcm[None, k : k + 960], format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = k
        frame.time_base = Fraction(1, 48000)
        payloads, timestamp = encoder.encode(frame)
        for payload in payloads:
            for decoded in decoder.decode(JitterFrame(payload, timestamp)):
                assert isinstance(decoded, av.AudioFrame)
                stereo = decoded.to_ndarray().reshape(-1, 2)
                out.append(resampler.process(stereo[:, 0]))
    return np.concatenate(out) if out else np.zeros(0, np.int16)


def hear_speech(pcm16k: np.ndarray, detector: SpeechEnergyDetector | None = None) -> list[Cue]:
    """The speech cues the server's perception finds in 16 kHz ``pcm16k`` (200 ms at a time)."""
    detector = detector or SpeechEnergyDetector()
    encoder = DMelEncoder()
    stream = encoder.stream()
    cues: list[Cue] = []
    hops = 0  # the stream's hops are contiguous from the first sample
    for k in range(0, len(pcm16k), 3200):
        codes = stream.push(pcm16k[k : k + 3200])
        times = (hops + np.arange(codes.shape[0])) * encoder.hop_seconds
        hops += codes.shape[0]
        cues += detector.update(codes, times)
    return cues
