#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A look at the latest camera frame: brightness, colour, motion and faces.

Works on the raw RGB :class:`~pipecat_tandem.background.packet.CameraSnapshot`
in the job's context packet, with numpy and OpenCV only (no model download):

- brightness: mean Rec.601 luma, labelled ``dark``/``normal``/``bright``;
- dominant colour: each pixel is named (black/white/gray by value and
  saturation, else by hue) and the most common name wins;
- motion: needs an earlier frame (``ToolEnv.previous_camera`` or the
  ``previous`` argument of :func:`analyze_frame`); with one frame it is reported
  as ``unknown``;
- faces: OpenCV's bundled frontal-face Haar cascade, on a local-contrast
  (CLAHE) grayscale copy, so dim faces are found too. Like any Viola–Jones
  detector it can fire on face-like blobs, so the count is a hint, not proof.

No frame in the packet is an ordinary answer (``available: False``), not an error.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from pipecat_tandem.background.packet import CameraSnapshot
from pipecat_tandem.background.tools.base import Tool, ToolEnv, ToolError

DARK_BELOW = 50.0
"""Mean luma (0–255) under which a frame is ``dark``."""

BRIGHT_ABOVE = 200.0
"""Mean luma (0–255) over which a frame is ``bright``."""

MOTION_PIXEL_DELTA = 25
"""Gray-level change for a pixel to count as changed."""

MAX_SIDE = 8192
"""Largest accepted frame side, in pixels."""

ANALYSIS_SIDE = 160
"""Brightness, colour and motion are computed on a copy downscaled to this side."""

FACE_SIDE = 640
"""Face detection runs on a copy downscaled to this side."""

CASCADE_PATH = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
"""OpenCV's bundled frontal-face cascade."""

# Hue ranges in degrees (upper bound exclusive) → colour name; red wraps around 0.
_HUES: list[tuple[float, str]] = [
    (15, "red"),
    (40, "orange"),
    (70, "yellow"),
    (165, "green"),
    (195, "cyan"),
    (255, "blue"),
    (290, "purple"),
    (345, "pink"),
    (360, "red"),
]
COLOR_NAMES: tuple[str, ...] = ("black", "white", "gray", *dict.fromkeys(n for _, n in _HUES))
"""Every colour name the tool reports."""

_cascade: cv2.CascadeClassifier | None = None
_cascade_lock = threading.Lock()


def face_cascade() -> cv2.CascadeClassifier:
    """The bundled face cascade, loaded once.

    Raises:
        ToolError: If OpenCV's cascade file is missing or unreadable.
    """
    global _cascade
    with _cascade_lock:
        if _cascade is None:
            cascade = cv2.CascadeClassifier(CASCADE_PATH)
            if cascade.empty():
                raise ToolError(f"face detector unavailable: cannot load {CASCADE_PATH}")
            _cascade = cascade
        return _cascade


def snapshot_to_array(snapshot: CameraSnapshot) -> np.ndarray:
    """View a snapshot's bytes as an ``(height, width, 3)`` uint8 array.

    Raises:
        ToolError: On bad dimensions or a byte count that does not match them.
    """
    w, h = snapshot.width, snapshot.height
    if (
        not isinstance(w, int)
        or not isinstance(h, int)
        or not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE)
    ):
        raise ToolError(f"bad camera frame size {w}x{h} (1..{MAX_SIDE} pixels per side)")
    if not isinstance(snapshot.rgb, bytes | bytearray | memoryview):
        raise ToolError("camera frame pixels must be bytes")
    if len(snapshot.rgb) != w * h * 3:
        raise ToolError(
            f"camera frame has {len(snapshot.rgb)} bytes, expected {w * h * 3} for {w}x{h} RGB"
        )
    return np.frombuffer(snapshot.rgb, dtype=np.uint8).reshape(h, w, 3)


def _downscale(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return img
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def luma(img: np.ndarray) -> np.ndarray:
    """Rec.601 luma of an RGB image, float32 0–255."""
    rgb = img.astype(np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def brightness(img: np.ndarray) -> dict[str, Any]:
    """Mean luma and its label."""
    mean = float(luma(img).mean())
    level = "dark" if mean < DARK_BELOW else "bright" if mean > BRIGHT_ABOVE else "normal"
    return {"mean": round(mean, 1), "level": level}


def color_names(img: np.ndarray) -> np.ndarray:
    """Name every pixel: an array of indices into :data:`COLOR_NAMES`."""
    hsv = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2HSV)
    hue = hsv[..., 0].astype(np.float32) * 2.0  # OpenCV stores hue as degrees / 2
    sat, val = hsv[..., 1], hsv[..., 2]
    names = np.full(img.shape[:2], COLOR_NAMES.index("gray"), dtype=np.int16)
    lower = 0.0
    for upper, name in _HUES:
        names[(hue >= lower) & (hue < upper)] = COLOR_NAMES.index(name)
        lower = upper
    grayish = sat < 50
    names[grayish] = COLOR_NAMES.index("gray")
    names[grayish & (val > 200)] = COLOR_NAMES.index("white")
    names[val < 50] = COLOR_NAMES.index("black")
    return names


def dominant_color(img: np.ndarray) -> dict[str, Any]:
    """The most common colour name, its share of the frame and its mean RGB."""
    names = color_names(img)
    counts = np.bincount(names.ravel(), minlength=len(COLOR_NAMES))
    best = int(counts.argmax())
    mean = img[names == best].mean(axis=0)
    r, g, b = (int(round(float(c))) for c in mean)
    return {
        "name": COLOR_NAMES[best],
        "fraction": round(float(counts[best]) / names.size, 3),
        "rgb": f"#{r:02x}{g:02x}{b:02x}",
    }


def motion(img: np.ndarray, previous: np.ndarray | None) -> dict[str, Any]:
    """How much changed since ``previous`` (both RGB, any size)."""
    if previous is None:
        return {"level": "unknown", "reason": "only one camera frame available"}
    h, w = img.shape[:2]
    if previous.shape[:2] != (h, w):
        previous = cv2.resize(previous, (w, h), interpolation=cv2.INTER_AREA)
    diff = np.abs(luma(img) - luma(previous))
    changed = float((diff > MOTION_PIXEL_DELTA).mean())
    level = "none" if changed < 0.01 else "slight" if changed < 0.1 else "strong"
    return {
        "level": level,
        "changed_fraction": round(changed, 3),
        "mean_delta": round(float(diff.mean()), 1),
    }


def detect_faces(img: np.ndarray) -> list[list[int]]:
    """Frontal faces as ``[x, y, w, h]`` boxes in the image's own pixel coordinates."""
    small = _downscale(img, FACE_SIDE)
    scale = img.shape[1] / small.shape[1]
    gray = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2GRAY)
    # Local contrast (CLAHE), not a global equalizeHist: a large dark background
    # would otherwise swallow the eye/cheek contrast the cascade looks for.
    gray = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(gray)
    if min(gray.shape) < 24:
        return []
    cascade = face_cascade()
    with _cascade_lock:  # one classifier object, used from worker threads
        boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    return [[int(round(v * scale)) for v in box] for box in boxes]


def analyze_frame(
    snapshot: CameraSnapshot, previous: CameraSnapshot | None = None
) -> dict[str, Any]:
    """Describe a camera frame.

    Args:
        snapshot: The frame to look at.
        previous: An earlier frame, for motion; motion is ``unknown`` without it.

    Returns:
        ``{"available": True, "width", "height", "time", "brightness",
        "dominant_color", "motion", "faces", "summary"}``.

    Raises:
        ToolError: On a malformed frame.
    """
    full = snapshot_to_array(snapshot)
    small = _downscale(full, ANALYSIS_SIDE)
    prev = _downscale(snapshot_to_array(previous), ANALYSIS_SIDE) if previous else None
    light, color, moved = brightness(small), dominant_color(small), motion(small, prev)
    faces = detect_faces(full)
    if previous is not None:
        moved["seconds_between_frames"] = round(snapshot.time - previous.time, 3)
    noun = "face" if len(faces) == 1 else "faces"
    movement = "motion unknown" if moved["level"] == "unknown" else f"motion {moved['level']}"
    return {
        "available": True,
        "width": snapshot.width,
        "height": snapshot.height,
        "time": snapshot.time,
        "source": snapshot.source,
        "brightness": light,
        "dominant_color": color,
        "motion": moved,
        "faces": {"count": len(faces), "boxes": faces},
        "summary": (
            f"{light['level']} image, mostly {color['name']}, {len(faces)} {noun}, {movement}"
        ),
    }


def _run(args: Mapping[str, Any], env: ToolEnv) -> dict[str, Any]:
    snapshot = env.packet.camera if env.packet is not None else None
    if snapshot is None:
        return {"available": False, "message": "no camera frame available"}
    result = analyze_frame(snapshot, env.previous_camera)
    if env.packet is not None:
        # How old the frame was when the user asked (frames and packet share one clock).
        result["age_at_request_s"] = round(env.packet.created_at - snapshot.time, 3)
    return result


def camera_tool() -> Tool:
    """The ``look_at_camera`` tool for the background agent."""
    return Tool(
        name="look_at_camera",
        description=(
            "Look at the user's latest camera frame: brightness (dark/normal/bright), "
            "dominant colour, number of faces, and motion when an earlier frame is known."
        ),
        properties={},
        required=[],
        fn=_run,
    )
