#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Validation of SmallWebRTC signalling requests (pure, no I/O).

The server speaks pipecat's SmallWebRTC offer protocol, so pipecat's own JS
client works against it:

* ``POST /api/offer`` with ``{"sdp", "type": "offer", "pc_id"?, "restart_pc"?,
  "request_data"?|"requestData"?}`` answers ``{"sdp", "type": "answer", "pc_id"}``;
* ``PATCH /api/offer`` with ``{"pc_id", "candidates": [{"candidate", "sdp_mid",
  "sdp_mline_index"}]}`` adds trickled ICE candidates.

Everything a client sends is checked here before any peer connection is
touched; a bad request becomes a :class:`SignallingError` carrying the HTTP
status and a message meant for the client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: Largest request body accepted. Real offers are 2–10 KB; a browser offering
#: every codec with simulcast stays well under 64 KB.
MAX_BODY_BYTES = 64 * 1024
#: Most ICE candidates accepted in one PATCH.
MAX_CANDIDATES = 64
_MAX_PC_ID = 128
_MAX_CANDIDATE_CHARS = 1024


class SignallingError(Exception):
    """A signalling request the server refuses.

    Args:
        status: The HTTP status to answer with (400, 404, 503...).
        message: What is wrong, for the client.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class OfferRequest:
    """A validated SDP offer.

    Parameters:
        sdp: The SDP text.
        type: Always ``"offer"``.
        pc_id: The peer connection to renegotiate, if any.
        restart_pc: Whether to restart that peer connection.
        request_data: Opaque data sent by the client (kept, not interpreted).
    """

    sdp: str
    type: str = "offer"
    pc_id: str | None = None
    restart_pc: bool = False
    request_data: Any = None


@dataclass(frozen=True)
class CandidatePatch:
    """One trickled ICE candidate (empty ``candidate`` = end of candidates)."""

    candidate: str
    sdp_mid: str | None
    sdp_mline_index: int | None


@dataclass(frozen=True)
class PatchRequest:
    """A validated ICE candidate PATCH.

    Parameters:
        pc_id: The peer connection the candidates belong to.
        candidates: The candidates, in order.
    """

    pc_id: str
    candidates: list[CandidatePatch] = field(default_factory=list)


def _load_object(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise SignallingError(400, f"request body too large ({len(body)} > {MAX_BODY_BYTES} bytes)")
    if not body.strip():
        raise SignallingError(400, "empty request body; expected a JSON object")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SignallingError(400, f"request body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise SignallingError(400, f"expected a JSON object, got {type(data).__name__}")
    return data


def _pc_id(value: Any, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise SignallingError(400, "missing 'pc_id'")
        return None
    if not isinstance(value, str) or len(value) > _MAX_PC_ID or not value.isprintable():
        raise SignallingError(400, "'pc_id' must be a short printable string")
    return value


def parse_offer(body: bytes) -> OfferRequest:
    """Validate a ``POST /api/offer`` body.

    Args:
        body: The raw request body.

    Returns:
        The offer.

    Raises:
        SignallingError: 400 if the body is too large or is not a JSON
            object with a plausible SDP offer.
    """
    data = _load_object(body)
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise SignallingError(400, "missing or empty 'sdp' string")
    if not sdp.lstrip().startswith("v=0"):
        raise SignallingError(400, "'sdp' is not a session description (must start with 'v=0')")
    if "m=" not in sdp:
        raise SignallingError(400, "'sdp' has no media section ('m=' line)")
    kind = data.get("type")
    if kind != "offer":
        raise SignallingError(400, f"'type' must be 'offer', got {kind!r}")
    restart = data.get("restart_pc", False)
    if restart is None:
        restart = False
    if not isinstance(restart, bool):
        raise SignallingError(400, "'restart_pc' must be a boolean")
    request_data = data.get("request_data", data.get("requestData"))
    return OfferRequest(
        sdp=sdp,
        type="offer",
        pc_id=_pc_id(data.get("pc_id"), required=False),
        restart_pc=restart,
        request_data=request_data,
    )


def parse_patch(body: bytes) -> PatchRequest:
    """Validate a ``PATCH /api/offer`` body.

    Args:
        body: The raw request body.

    Returns:
        The candidate patch.

    Raises:
        SignallingError: 400 if too large or malformed.
    """
    data = _load_object(body)
    pc_id = _pc_id(data.get("pc_id"), required=True)
    assert pc_id is not None
    raw = data.get("candidates")
    if not isinstance(raw, list):
        raise SignallingError(400, "'candidates' must be a list")
    if len(raw) > MAX_CANDIDATES:
        raise SignallingError(400, f"too many candidates ({len(raw)} > {MAX_CANDIDATES})")
    candidates: list[CandidatePatch] = []
    for i, c in enumerate(raw):
        if not isinstance(c, dict):
            raise SignallingError(400, f"candidate {i} must be an object")
        text = c.get("candidate", "")
        if text is None:
            text = ""
        if not isinstance(text, str) or len(text) > _MAX_CANDIDATE_CHARS:
            raise SignallingError(400, f"candidate {i}: 'candidate' must be a short string")
        if text.startswith("candidate:"):
            text = text[len("candidate:") :]
        if text and len(text.split()) < 8:
            raise SignallingError(400, f"candidate {i}: malformed candidate line {text!r}")
        mid = c.get("sdp_mid", c.get("sdpMid"))
        if mid is not None and not isinstance(mid, str):
            raise SignallingError(400, f"candidate {i}: 'sdp_mid' must be a string")
        index = c.get("sdp_mline_index", c.get("sdpMLineIndex"))
        if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
            raise SignallingError(400, f"candidate {i}: 'sdp_mline_index' must be an integer")
        candidates.append(CandidatePatch(candidate=text, sdp_mid=mid, sdp_mline_index=index))
    return PatchRequest(pc_id=pc_id, candidates=candidates)
