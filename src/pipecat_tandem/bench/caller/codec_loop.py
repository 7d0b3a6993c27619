"""The video path of a call, offline: aiortc's VP8 or H.264 codec, then the server's cues.

:func:`through_vp8` sends frames through libvpx with the settings of aiortc's
``Vp8Encoder`` (realtime, CBR at a target bitrate, noise sensitivity; only its
wall-clock speed adaptation is fixed, so a result repeats) and aiortc's
:class:`Vp8Decoder`, keeps the decoded frames the server would sample (its camera
input reads at most ``server_fps``), and converts them to RGB like the transport.
:func:`through_h264` does the same with libx264 at the settings of aiortc's
``H264Encoder`` (baseline profile, ``zerolatency``), aiortc's RTP packetization and
depacketization, and aiortc's :class:`H264Decoder` (FFmpeg's h264): the other
codec a browser offers, and the one some pick first. :func:`through` picks one by name.
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
from aiortc.codecs.h264 import H264Decoder, H264Encoder, h264_depayload
from aiortc.codecs.opus import OpusDecoder, OpusEncoder
from aiortc.codecs.vpx import Vp8Decoder
from aiortc.jitterbuffer import JitterFrame

from pipecat_tandem.fusion.cue_view import CueView
from pipecat_tandem.fusion.cues import Cue, CueDetector, SpeechEnergyDetector
from pipecat_tandem.fusion.dmel import DMelEncoder
from pipecat_tandem.fusion.patches import PatchEmbedder
from pipecat_tandem.fusion.resample import StreamResampler

_VIDEO_CLOCK = Fraction(1, 90000)

#: The video codecs of the offline path, by name (aiortc offers both in a call).
CODECS = ("vp8", "h264")

#: aiortc's ``H264Encoder`` keeps its target bitrate in this range (aiortc 1.16).
H264_BITRATES = (500_000, 3_000_000)


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


def _h264_encoder(width: int, height: int, bitrate: int) -> av.VideoCodecContext:
    """A libx264 encoder with the settings of aiortc's ``H264Encoder`` (1.16), made repeatable.

    The one change: one thread. aiortc leaves FFmpeg's default, a thread per core, and
    ``zerolatency`` cuts each frame into a slice per thread, so the bitstream (and
    a cue at a threshold) would depend on the machine's cores.
    """
    codec = av.CodecContext.create("libx264", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height = width, height
    codec.bit_rate = bitrate
    codec.pix_fmt = "yuv420p"
    codec.framerate = Fraction(30, 1)
    codec.time_base = Fraction(1, 30)
    codec.options = {"level": "31", "tune": "zerolatency"}
    codec.profile = "Baseline"
    codec.thread_count = 1
    return codec


def _yuv(t: float, rgb: np.ndarray) -> av.VideoFrame:
    """A sender's frame at ``t`` s: ``rgb`` as the camera track hands it to the encoder."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    frame = frame.reformat(format="yuv420p")
    frame.pts = int(round(t / _VIDEO_CLOCK))
    frame.time_base = _VIDEO_CLOCK
    return frame


def through(
    frames: Iterable[tuple[float, np.ndarray]],
    codec: str = "vp8",
    *,
    bitrate: int = 500_000,
    server_fps: float = 5.0,
) -> Iterator[tuple[float, np.ndarray]]:
    """:func:`through_vp8` or :func:`through_h264`, by ``codec`` (one of :data:`CODECS`).

    Raises:
        ValueError: ``codec`` is not one of :data:`CODECS`.
    """
    if codec == "vp8":
        return through_vp8(frames, bitrate=bitrate, server_fps=server_fps)
    if codec == "h264":
        return through_h264(frames, bitrate=bitrate, server_fps=server_fps)
    raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")


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
    return _kept(_vp8_decoded(frames, bitrate), server_fps)


def _vp8_decoded(
    frames: Iterable[tuple[float, np.ndarray]], bitrate: int
) -> Iterator[tuple[float, av.VideoFrame]]:
    encoder: av.VideoCodecContext | None = None
    decoder = Vp8Decoder()
    for t, rgb in frames:
        frame = _yuv(t, rgb)
        if encoder is None:
            encoder = _vp8_encoder(frame.width, frame.height, bitrate)
        data = b"".join(bytes(p) for p in encoder.encode(frame))
        timestamp = int(round(t * 90000))
        for decoded in decoder.decode(JitterFrame(data, timestamp)):
            assert isinstance(decoded, av.VideoFrame)
            yield t, decoded


def through_h264(
    frames: Iterable[tuple[float, np.ndarray]],
    *,
    bitrate: int = 1_000_000,
    server_fps: float = 5.0,
) -> Iterator[tuple[float, np.ndarray]]:
    """Encode, packetize, depacketize, decode and sample frames as an H.264 call does.

    Args:
        frames: ``(time, RGB uint8 image)`` in time order, at the sender's rate.
        bitrate: The encoder's target bitrate, kept in :data:`H264_BITRATES` as aiortc
            keeps it (a 250 kbit/s VP8 sender is a 500 kbit/s H.264 one).
        server_fps: The server keeps at most this many decoded frames per second.

    Returns:
        ``(time, RGB)`` of each decoded frame the server keeps, at its send time.
    """
    bitrate = min(max(bitrate, H264_BITRATES[0]), H264_BITRATES[1])
    return _kept(_h264_decoded(frames, bitrate), server_fps)


def _h264_decoded(
    frames: Iterable[tuple[float, np.ndarray]], bitrate: int
) -> Iterator[tuple[float, av.VideoFrame]]:
    encoder: av.VideoCodecContext | None = None
    packetizer, decoder = H264Encoder(), H264Decoder()
    sent: dict[int, float] = {}  # RTP timestamp -> send time (the decoder may hold a frame)
    for t, rgb in frames:
        frame = _yuv(t, rgb)
        if encoder is None:
            encoder = _h264_encoder(frame.width, frame.height, bitrate)
        for packet in encoder.encode(frame):
            payloads, timestamp = packetizer.pack(packet)  # aiortc's RTP payloads
            sent[timestamp] = t
            data = b"".join(h264_depayload(p) for p in payloads)  # the receiver's
            for decoded in decoder.decode(JitterFrame(data, timestamp)):
                assert isinstance(decoded, av.VideoFrame) and decoded.pts is not None
                yield sent.pop(decoded.pts), decoded


def _kept(
    decoded: Iterable[tuple[float, av.VideoFrame]], server_fps: float
) -> Iterator[tuple[float, np.ndarray]]:
    """The decoded frames the server keeps (at most ``server_fps`` a second), as RGB."""
    next_keep = -1.0
    for t, frame in decoded:
        if t + 1e-9 < next_keep:
            continue  # decoded (the codec needs every frame) but not sampled
        next_keep = t + 1.0 / server_fps
        yield t, frame.to_ndarray(format="rgb24")


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
        # What the fusion processor gives its cue detectors: the frame at the cues' scale.
        cues += detector.update(silence, np.zeros(0), [view.embed(rgb)], [t])
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
