"""What the caller's camera looks at: rooms, a person, and what the person does.

Pure drawing (numpy and OpenCV, no I/O, no clock): a :class:`Scene` renders the
*light arriving at the lens* at a time ``t`` seconds after it started, before the
camera's sensor (noise, auto-exposure: :mod:`pipecat_tandem.bench.caller.camera`)
and the VP8 encoder have had their say.

* :class:`Room` — a lit room (wall, door, shelf, window; seeded layout and colours)
  with, optionally, a small object moving in a corner (a fly, a cursor, a pet's
  tail): what must *not* be called a change.
* :class:`Slide` — a different picture: a bright screen with lines of text (the
  "screen changes" moment).
* :class:`Person` — a body-shaped figure in a room that can walk in from the side,
  stand (breathing, a little sway), wave (the forearm swinging about the elbow), or
  squat ``n`` times (the whole body going down and up, knees bending), each rep a
  little different in length like a person's.
* :class:`Dimmed` — any scene with the lights turned down (``lights off``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

Size = tuple[int, int]  # width, height


class Scene(Protocol):
    """Something the camera can look at."""

    def render(self, t: float, size: Size) -> np.ndarray:
        """The scene ``t`` seconds after it started, RGB uint8 ``(height, width, 3)``."""
        ...


def _rgb(values: np.ndarray) -> tuple[float, float, float]:
    r, g, b = (float(v) for v in values)
    return r, g, b


def _scaled(size: Size, x: float, y: float) -> tuple[int, int]:
    return int(round(x * size[0])), int(round(y * size[1]))


@dataclass
class Room:
    """A lit room seen from a desk, with an optional small object moving in a corner.

    Attributes:
        seed: Picks the layout and colours.
        small_object: Draw a small object (about 2 % of the width) moving in the
            top-left corner the whole time.
    """

    seed: int = 0
    small_object: bool = True
    _cache: dict[Size, np.ndarray] = field(default_factory=dict, repr=False)

    def background(self, size: Size) -> np.ndarray:
        """The room without the moving object (cached per size)."""
        img = self._cache.get(size)
        if img is not None:
            return img
        w, h = size
        rng = np.random.default_rng(self.seed)
        wall = rng.uniform(90, 170, 3)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        light = 1.0 + 0.25 * (1 - xx / w) - 0.15 * (yy / h)  # a lamp on the left
        img = np.clip(wall[None, None, :] * light[..., None], 0, 255).astype(np.uint8)
        floor = rng.uniform(50, 110, 3)
        img[int(0.78 * h) :, :] = floor.astype(np.uint8)
        door = _rgb(rng.uniform(40, 220, 3))
        dx = rng.uniform(0.55, 0.75)
        cv2.rectangle(img, _scaled(size, dx, 0.18), _scaled(size, dx + 0.16, 0.78), door, -1)
        cv2.rectangle(
            img, _scaled(size, 0.05, 0.45), _scaled(size, 0.35, 0.5), _rgb(floor * 0.6), -1
        )
        for i in range(5):  # books on the shelf
            x0 = 0.06 + 0.055 * i
            cv2.rectangle(
                img,
                _scaled(size, x0, 0.33),
                _scaled(size, x0 + 0.04, 0.45),
                _rgb(rng.uniform(30, 230, 3)),
                -1,
            )
        cv2.rectangle(img, _scaled(size, 0.8, 0.1), _scaled(size, 0.95, 0.35), (235, 240, 250), -1)
        img = np.asarray(cv2.GaussianBlur(img, (3, 3), 0))  # a lens is never perfectly sharp
        self._cache[size] = img
        return img

    def render(self, t: float, size: Size) -> np.ndarray:
        """See :class:`Scene`."""
        img = self.background(size).copy()
        if self.small_object:
            w, h = size
            r = max(3, int(0.012 * w))
            # A Lissajous path inside the top-left 15 % of the frame.
            cx = int(0.03 * w + 0.09 * w * (0.5 + 0.5 * math.sin(1.7 * t)))
            cy = int(0.04 * h + 0.09 * h * (0.5 + 0.5 * math.sin(2.3 * t + 1.0)))
            cv2.circle(img, (cx, cy), r, (240, 60, 40), -1)
        return img


@dataclass
class Slide:
    """A bright screen with a title bar and lines of text."""

    seed: int = 1

    def render(self, t: float, size: Size) -> np.ndarray:
        """See :class:`Scene`."""
        w, h = size
        rng = np.random.default_rng(self.seed)
        img = np.full((h, w, 3), rng.uniform(200, 250, 3), np.uint8)
        cv2.rectangle(img, (0, 0), (w, int(0.18 * h)), _rgb(rng.uniform(20, 90, 3)), -1)
        for i in range(7):
            y = int((0.28 + 0.09 * i) * h)
            length = rng.uniform(0.4, 0.85)
            cv2.rectangle(
                img, (int(0.08 * w), y), (int(length * w), y + max(3, h // 60)), (40, 40, 40), -1
            )
        return img


@dataclass
class Dimmed:
    """``scene`` with the light at ``level`` (0.05 = lights off, a little daylight left)."""

    scene: Scene
    level: float = 0.06

    def render(self, t: float, size: Size) -> np.ndarray:
        """See :class:`Scene`."""
        return (self.scene.render(t, size).astype(np.float32) * self.level).astype(np.uint8)


@dataclass
class Squats:
    """``n`` squats starting at ``start`` s, each ``period`` s ± ``jitter`` (seeded)."""

    n: int
    start: float = 0.0
    period: float = 2.2
    jitter: float = 0.15
    depth: float = 0.22  # how far the hips go down, as a share of the frame height
    seed: int = 0

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.durations = [
            self.period * (1 + rng.uniform(-self.jitter, self.jitter)) for _ in range(self.n)
        ]

    @property
    def end(self) -> float:
        """When the last rep is back up."""
        return self.start + sum(self.durations)

    def phase(self, t: float) -> float:
        """How deep in a squat the body is at ``t``: 0 standing, 1 at the bottom."""
        s = t - self.start
        if s <= 0:
            return 0.0
        for d in self.durations:
            if s < d:
                return 0.5 - 0.5 * math.cos(2 * math.pi * s / d)
            s -= d
        return 0.0


@dataclass
class Wave:
    """Waving from ``start`` s for ``seconds`` at ``hz`` (the forearm swings ± ``angle``°)."""

    start: float
    seconds: float = 3.0
    hz: float = 1.6
    angle: float = 35.0

    def swing(self, t: float) -> float | None:
        """The forearm's angle from vertical (degrees) at ``t``, or ``None`` when not waving."""
        s = t - self.start
        if not 0 <= s < self.seconds:
            return None
        ramp = min(1.0, s / 0.3, (self.seconds - s) / 0.3)  # the arm comes up and goes down
        return ramp * self.angle * math.sin(2 * math.pi * self.hz * s)


@dataclass
class Person:
    """A figure in ``room``: walks in, then stands, waves or squats.

    Attributes:
        room: What is behind the person.
        enter_at: When the person starts walking in from the right edge (``None``:
            already standing there from the start).
        enter_s: How long walking in takes.
        x: Where the person stands, as a share of the width.
        wave: An optional wave.
        squats: Optional squats.
        seed: Picks the clothes.
    """

    room: Room
    enter_at: float | None = None
    enter_s: float = 1.2
    x: float = 0.45
    wave: Wave | None = None
    squats: Squats | None = None
    seed: int = 3

    def render(self, t: float, size: Size) -> np.ndarray:
        """See :class:`Scene`."""
        img = self.room.render(t, size)
        w, h = size
        cx = self.x
        if self.enter_at is not None:
            if t < self.enter_at:
                return img
            k = min(1.0, (t - self.enter_at) / self.enter_s)
            cx = 1.15 + (self.x - 1.15) * (1 - (1 - k) ** 2)  # walks in, slows down
        # Standing still is never perfectly still: breathing and a little sway.
        cx += 0.003 * math.sin(2 * math.pi * 0.23 * t)
        squat = self.squats.phase(t) if self.squats else 0.0
        arm = self.wave.swing(t) if self.wave else None
        self._draw(img, size, cx * w, squat, arm, breath=0.002 * math.sin(2 * math.pi * 0.25 * t))
        return img

    def _draw(
        self, img: np.ndarray, size: Size, cx: float, squat: float, arm: float | None, breath: float
    ) -> None:
        w, h = size
        rng = np.random.default_rng(self.seed)
        shirt, trousers = _rgb(rng.uniform(20, 120, 3)), _rgb(rng.uniform(10, 80, 3))
        skin = (200, 160, 130)
        u = h / 480.0  # the figure is drawn for 480 px and scaled
        ankle_y = 0.9 * h
        leg = 95 * u
        drop = squat * 0.22 * h
        hip_y = ankle_y - 2 * leg + drop + breath * h
        # Knees bend outwards as the hips drop (the thigh and shin keep their length).
        half = max(0.0, (2 * leg - (ankle_y - hip_y)) / 2)
        knee_out = math.sqrt(max(0.0, leg**2 - (leg - half) ** 2))
        knee_y = (hip_y + ankle_y) / 2
        for side in (-1, 1):
            hip = (int(cx + side * 16 * u), int(hip_y))
            knee = (int(cx + side * (18 * u + knee_out)), int(knee_y))
            ankle = (int(cx + side * 20 * u), int(ankle_y))
            cv2.line(img, hip, knee, trousers, max(2, int(22 * u)))
            cv2.line(img, knee, ankle, trousers, max(2, int(20 * u)))
        torso_top = hip_y - 120 * u
        cv2.rectangle(
            img,
            (int(cx - 34 * u), int(torso_top)),
            (int(cx + 34 * u), int(hip_y + 5 * u)),
            shirt,
            -1,
        )
        cv2.circle(img, (int(cx), int(torso_top - 30 * u)), int(26 * u), skin, -1)
        shoulder_y = torso_top + 12 * u
        # Left arm hangs (or reaches forward in a squat, for balance).
        reach = squat * 50 * u
        hand_y = int(shoulder_y + 95 * u - reach)
        width = max(2, int(15 * u))
        left = (int(cx - 34 * u), int(shoulder_y))
        cv2.line(img, left, (int(cx - 44 * u - reach), hand_y), shirt, width)
        if arm is None:
            right = (int(cx + 34 * u), int(shoulder_y))
            cv2.line(img, right, (int(cx + 44 * u + reach), hand_y), shirt, width)
            return
        elbow = (int(cx + 70 * u), int(shoulder_y - 5 * u))
        cv2.line(img, (int(cx + 34 * u), int(shoulder_y)), elbow, shirt, max(2, int(15 * u)))
        a = math.radians(arm)
        hand = (int(elbow[0] + 70 * u * math.sin(a)), int(elbow[1] - 70 * u * math.cos(a)))
        cv2.line(img, elbow, hand, skin, max(2, int(13 * u)))
        cv2.circle(img, hand, int(13 * u), skin, -1)
