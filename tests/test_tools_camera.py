import cv2
import numpy as np
import pytest

from pipecat_tandem.background.packet import CameraSnapshot, ContextPacket
from pipecat_tandem.background.tools import ToolEnv, ToolError, analyze_frame, camera_tool
from pipecat_tandem.background.tools.camera import (
    BRIGHT_ABOVE,
    DARK_BELOW,
    MAX_SIDE,
    detect_faces,
    face_cascade,
)


def snap(img, t=0.0):
    return CameraSnapshot(width=img.shape[1], height=img.shape[0], time=t, rgb=img.tobytes())


def solid(rgb, size=(120, 160)):
    img = np.zeros((*size, 3), np.uint8)
    img[...] = rgb
    return img


@pytest.mark.parametrize(
    ("value", "level"),
    [
        (10, "dark"),
        (int(DARK_BELOW) + 5, "normal"),
        (128, "normal"),
        (int(BRIGHT_ABOVE) + 5, "bright"),
        (250, "bright"),
    ],
)
def test_brightness(value, level):
    out = analyze_frame(snap(solid((value, value, value))))
    assert out["brightness"] == {"mean": float(value), "level": level}


def test_brightness_uses_luma_weights():
    # Pure green looks much brighter than pure blue (Rec.601: 0.587 vs 0.114).
    green = analyze_frame(snap(solid((0, 255, 0))))["brightness"]["mean"]
    blue = analyze_frame(snap(solid((0, 0, 255))))["brightness"]["mean"]
    assert green == pytest.approx(149.7, abs=0.1)
    assert blue == pytest.approx(29.1, abs=0.1)


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((220, 30, 30), "red"),
        ((240, 140, 20), "orange"),
        ((230, 220, 30), "yellow"),
        ((30, 200, 40), "green"),
        ((30, 200, 210), "cyan"),
        ((30, 40, 220), "blue"),
        ((140, 40, 220), "purple"),
        ((230, 60, 170), "pink"),
        ((10, 10, 10), "black"),
        ((245, 245, 245), "white"),
        ((128, 128, 128), "gray"),
    ],
)
def test_dominant_colour(rgb, name):
    out = analyze_frame(snap(solid(rgb)))["dominant_color"]
    assert out["name"] == name
    assert out["fraction"] == 1.0
    assert out["rgb"] == "#{:02x}{:02x}{:02x}".format(*rgb)


def test_dominant_colour_is_the_majority():
    img = solid((30, 40, 220))
    img[:, :50] = (220, 30, 30)  # 50 of 160 columns red, the rest blue
    out = analyze_frame(snap(img))["dominant_color"]
    assert out["name"] == "blue"
    assert out["fraction"] == pytest.approx(110 / 160, abs=0.01)


def test_motion_unknown_with_one_frame():
    assert analyze_frame(snap(solid((90, 90, 90))))["motion"]["level"] == "unknown"


def test_motion_between_frames():
    still = analyze_frame(snap(solid((90, 90, 90)), 1.0), snap(solid((90, 90, 90)), 0.5))
    assert still["motion"]["level"] == "none"
    assert still["motion"]["seconds_between_frames"] == 0.5
    moved_img = solid((90, 90, 90))
    moved_img[40:80, 60:100] = 255  # a bright square appeared
    moved = analyze_frame(snap(moved_img), snap(solid((90, 90, 90))))["motion"]
    assert moved["level"] == "slight"
    assert moved["changed_fraction"] == pytest.approx(1600 / 19200, abs=0.01)
    flipped = analyze_frame(snap(solid((240, 240, 240))), snap(solid((10, 10, 10))))["motion"]
    assert flipped["level"] == "strong"


def test_motion_with_a_previous_frame_of_another_size():
    out = analyze_frame(snap(solid((90, 90, 90))), snap(solid((90, 90, 90), size=(60, 80))))
    assert out["motion"]["level"] == "none"


def test_face_cascade_loads_and_finds_no_face_in_noise():
    assert not face_cascade().empty()
    noise = np.random.default_rng(7).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert detect_faces(noise) == []
    assert analyze_frame(snap(noise))["faces"] == {"count": 0, "boxes": []}


def test_tiny_frames_are_fine():
    out = analyze_frame(snap(solid((200, 10, 10), size=(1, 1))))
    assert out["faces"]["count"] == 0
    assert out["dominant_color"]["name"] == "red"


def test_large_frame_is_downscaled_for_analysis():
    out = analyze_frame(snap(solid((250, 250, 250), size=(1080, 1920))))
    assert out["brightness"]["level"] == "bright"
    assert (out["width"], out["height"]) == (1920, 1080)


@pytest.mark.parametrize(
    ("snapshot", "message"),
    [
        (CameraSnapshot(width=2, height=2, time=0, rgb=b"abc"), "expected 12"),
        (CameraSnapshot(width=0, height=2, time=0, rgb=b""), "bad camera frame size"),
        (CameraSnapshot(width=-1, height=2, time=0, rgb=b""), "bad camera frame size"),
        (CameraSnapshot(width=MAX_SIDE + 1, height=1, time=0, rgb=b""), "bad camera frame size"),
        (CameraSnapshot(width=2, height=2, time=0, rgb="x" * 12), "must be bytes"),  # type: ignore[arg-type]
        (CameraSnapshot(width=2, height=2, time=0, rgb=b"\x00" * 13), "expected 12"),
    ],
)
def test_malformed_frames(snapshot, message):
    with pytest.raises(ToolError, match=message):
        analyze_frame(snapshot)


def test_tool_without_a_frame_says_so():
    tool = camera_tool()
    expected = {"result": {"available": False, "message": "no camera frame available"}}
    assert tool.call({}, ToolEnv()) == expected
    assert tool.call({}, ToolEnv(packet=ContextPacket(job_id="j", task="t"))) == expected


def test_tool_with_frames():
    frame = snap(solid((10, 10, 10)), t=4.0)
    packet = ContextPacket(job_id="j", task="is it dark?", created_at=4.5, camera=frame)
    out = camera_tool().call({}, ToolEnv(packet=packet))["result"]
    assert out["available"] is True
    assert out["summary"] == "dark image, mostly black, 0 faces, motion unknown"
    assert out["age_at_request_s"] == 0.5
    moved = camera_tool().call(
        {}, ToolEnv(packet=packet, previous_camera=snap(solid((250, 250, 250)), t=3.0))
    )["result"]
    assert moved["motion"]["level"] == "strong"
    bad = ContextPacket(job_id="j", task="t", camera=CameraSnapshot(2, 2, 0.0, b"abc"))
    assert "expected 12" in camera_tool().call({}, ToolEnv(packet=bad))["error"]


def drawn_face(size=240):
    """A cartoon face: skin oval, dark eyes and brows, nose, mouth on a dark background."""
    img = np.full((size, size, 3), 60, np.uint8)
    c, s = size // 2, size / 240
    cv2.ellipse(img, (c, c), (int(70 * s), int(92 * s)), 0, 0, 360, (205, 170, 150), -1)
    for dx in (-30, 30):
        eye = (c + int(dx * s), c - int(22 * s))
        cv2.ellipse(img, eye, (int(16 * s), int(8 * s)), 0, 0, 360, (40, 30, 30), -1)
        brow = [
            (c + int((dx - 18) * s), c - int(40 * s)),
            (c + int((dx + 18) * s), c - int(40 * s)),
        ]
        cv2.line(img, brow[0], brow[1], (60, 40, 30), max(1, int(5 * s)))
    cv2.ellipse(
        img, (c, c + int(10 * s)), (int(8 * s), int(18 * s)), 0, 0, 360, (185, 150, 130), -1
    )
    cv2.ellipse(img, (c, c + int(45 * s)), (int(26 * s), int(9 * s)), 0, 0, 360, (120, 50, 50), -1)
    return img


def test_a_drawn_face_is_found():
    out = analyze_frame(snap(drawn_face()))
    assert out["faces"]["count"] == 1
    x, y, w, h = out["faces"]["boxes"][0]
    assert abs((x + w / 2) - 120) < 20 and abs((y + h / 2) - 120) < 25 and 100 < w < 240
    assert out["summary"].endswith("1 face, motion unknown")


def test_face_boxes_are_in_full_frame_coordinates():
    frame = np.full((960, 1280, 3), 60, np.uint8)
    frame[100:580, 600:1080] = drawn_face(480)  # detection runs on a 640-wide copy
    (box,) = detect_faces(frame)
    x, y, w, h = box
    assert abs((x + w / 2) - 840) < 40 and abs((y + h / 2) - 340) < 50 and w > 250


def test_a_dim_face_is_found():
    frame = np.full((480, 640, 3), 60, np.uint8)
    frame[50:290, 300:540] = drawn_face(240)
    dim = (frame * 0.15).astype(np.uint8)
    assert analyze_frame(snap(dim))["brightness"]["level"] == "dark"
    assert len(detect_faces(dim)) == 1
