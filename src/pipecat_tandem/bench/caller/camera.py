"""The caller's camera: a scene seen through a webcam sensor, sent as a video track.

:class:`Sensor` is what a cheap webcam does to the light before the encoder sees
it: auto-exposure (the gain follows the scene's brightness with a lag, so turning
the lights off goes dark, then grainy and grey as the gain climbs), sensor noise that
grows with the gain, and a faint mains flicker. :class:`SceneCamera` is an aiortc
video track that renders a :class:`~pipecat_tandem.bench.caller.scenes.Scene`
through a sensor in real time; the peer connection encodes it with VP8 like a
browser's camera. :meth:`SceneCamera.show` cuts to another scene and tells when the
first frame of it went out, on the caller's clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from aiortc import MediaStreamTrack

from pipecat_tandem.bench.caller.scenes import Scene, Size

_VIDEO_CLOCK = Fraction(1, 90000)
_NOISE_BANK = 13  # precomputed noise images (a prime: never in step with a motion period)


@dataclass
class Sensor:
    """Auto-exposure, noise and flicker of a webcam (deterministic for a seed).

    Attributes:
        target: Mean level the auto-exposure aims for (0-255).
        adapt_s: Time constant of the auto-exposure.
        gain_range: The gain's limits (a dark room stays darker than ``target``).
        read_noise: Noise standard deviation at gain 1 (levels).
        flicker: Relative brightness ripple of the lights (at 0.5 Hz beats).
        seed: Seeds the noise.
    """

    target: float = 115.0
    adapt_s: float = 0.7
    gain_range: tuple[float, float] = (0.5, 4.0)
    read_noise: float = 2.5
    flicker: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        self._gain: float | None = None
        self._last_t: float | None = None
        self._bank: np.ndarray | None = None
        self._rng = np.random.default_rng(self.seed)
        self._k = 0

    @property
    def gain(self) -> float:
        """The current exposure gain (1.0 before the first frame)."""
        return self._gain or 1.0

    def _noise(self, shape: tuple[int, ...]) -> np.ndarray:
        if self._bank is None or self._bank.shape[1:] != shape:
            self._bank = self._rng.standard_normal((_NOISE_BANK, *shape)).astype(np.float32)
        self._k += 1
        return self._bank[self._k % _NOISE_BANK]

    def expose(self, light: np.ndarray, t: float) -> np.ndarray:
        """What the sensor makes of ``light`` (RGB uint8) at time ``t`` (seconds)."""
        x = light.astype(np.float32)
        mean = float(x.mean()) + 1.0
        lo, hi = self.gain_range
        wanted = min(hi, max(lo, self.target / mean))
        if self._gain is None or self._last_t is None:
            self._gain = wanted  # a camera opens already adapted to its room
        else:
            k = 1.0 - np.exp(-max(0.0, t - self._last_t) / self.adapt_s)
            self._gain *= float((wanted / self._gain) ** k)
        self._last_t = t
        gain = self._gain * (1.0 + self.flicker * np.sin(2 * np.pi * 0.5 * t))
        x *= gain
        # Noise grows with the gain (the sensor's signal is amplified with it).
        x += self._noise(x.shape) * (self.read_noise * max(1.0, self._gain))
        return np.clip(x, 0, 255).astype(np.uint8)


class SceneCamera(MediaStreamTrack):
    """A video track showing scenes through a :class:`Sensor`, paced in real time.

    Args:
        scene: What the camera looks at first.
        fps: Frames per second sent.
        size: ``(width, height)`` of the frames.
        sensor: The sensor model (a default one when not given).
    """

    kind = "video"

    def __init__(
        self,
        scene: Scene,
        *,
        fps: float = 15.0,
        size: Size = (640, 480),
        sensor: Sensor | None = None,
    ) -> None:
        super().__init__()
        if fps <= 0 or size[0] < 16 or size[1] < 16:
            raise ValueError(f"need fps > 0 and a size of at least 16x16, got {fps}, {size}")
        self.fps, self.size = fps, size
        self.sensor = sensor or Sensor()
        self._scene = scene
        self._scene_t0: float | None = None  # when the current scene's first frame went out
        self._pending: asyncio.Future[float] | None = None
        self._start: float | None = None
        self._count = 0

    @property
    def started_at(self) -> float | None:
        """When the first frame went out (monotonic seconds)."""
        return self._start

    def show(self, scene: Scene) -> asyncio.Future[float]:
        """Cut to ``scene`` at the next frame; resolves to when that frame went out."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
        self._scene, self._scene_t0, self._pending = scene, None, done
        return done

    def scene_time(self, now: float | None = None) -> float:
        """Seconds since the current scene's first frame (0 before it went out)."""
        if self._scene_t0 is None:
            return 0.0
        return (time.monotonic() if now is None else now) - self._scene_t0

    async def recv(self) -> av.VideoFrame:
        """The next frame, no earlier than its place in real time."""
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._count / self.fps - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        now = time.monotonic()
        if self._scene_t0 is None:
            self._scene_t0 = now
            if self._pending is not None and not self._pending.done():
                self._pending.set_result(now)
        image = self.sensor.expose(
            self._scene.render(now - self._scene_t0, self.size), now - self._start
        )
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = int(round(self._count / self.fps / _VIDEO_CLOCK))
        frame.time_base = _VIDEO_CLOCK
        self._count += 1
        return frame


def film(
    scenes: list[tuple[float, Scene]], *, fps: float, size: Size, sensor: Sensor | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """Frames of a shot list, offline: ``(time, RGB image)`` at ``fps``.

    Args:
        scenes: ``(seconds, scene)`` in order; each scene is shown for its seconds.
        fps: Frames per second.
        size: ``(width, height)``.
        sensor: The sensor (a default one when not given).
    """
    sensor = sensor or Sensor()
    k, t0 = 0, 0.0
    for seconds, scene in scenes:
        while k / fps < t0 + seconds - 1e-9:
            t = k / fps
            yield t, sensor.expose(scene.render(t - t0, size), t)
            k += 1
        t0 += seconds
