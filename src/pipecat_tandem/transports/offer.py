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

import ipaddress
import json
import os
import re
import traceback
from dataclasses import dataclass, field
from typing import Any

#: Largest request body accepted. Real offers are 2–10 KB; a browser offering
#: every codec with simulcast stays well under 64 KB.
MAX_BODY_BYTES = 64 * 1024
#: Most ICE candidates accepted in one PATCH.
MAX_CANDIDATES = 64
#: Deepest JSON nesting accepted (a real request nests 3 or 4 levels).
MAX_JSON_DEPTH = 32
_MAX_PC_ID = 128
_MAX_CANDIDATE_CHARS = 1024
# aiortc's own media-line pattern (aiortc.sdp.SessionDescription.parse).
_MEDIA_LINE = re.compile(r"^m=([^ ]+) ([0-9]+) ([A-Z/]+) (.+)$")
_FORBIDDEN_PAYLOAD_TYPES = range(72, 77)  # aiortc.rtp.FORBIDDEN_PAYLOAD_TYPES (RTCP clash)
_CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")
_MDNS_NAME = re.compile(r"^[A-Za-z0-9-]{1,63}\.local$")


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
    except RecursionError:
        raise SignallingError(
            400, f"request body is nested too deeply (at most {MAX_JSON_DEPTH} levels)"
        ) from None
    if not isinstance(data, dict):
        raise SignallingError(400, f"expected a JSON object, got {type(data).__name__}")
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise SignallingError(
            400, f"request body is nested too deeply ({depth} > {MAX_JSON_DEPTH} levels)"
        )
    return data


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


def describe_error(error: BaseException) -> str:
    """A non-empty description of ``error`` for a client.

    aiortc's SDP parser fails on many malformed lines with a bare ``assert`` (an
    ``AssertionError`` with no message); then the failing source line stands in.

    Args:
        error: The exception.

    Returns:
        ``str(error)`` if it says anything, else the exception type and where
        it was raised.
    """
    text = str(error).strip()
    if text:
        return text
    name = type(error).__name__
    frames = traceback.extract_tb(error.__traceback__) if error.__traceback__ else []
    if not frames:
        return f"{name} (no details)"
    last = frames[-1]
    where = f"{os.path.basename(last.filename)}:{last.lineno}"
    check = f" `{last.line.strip()}`" if last.line else ""
    return f"{name}{check} failed in {last.name} ({where})"


def check_sdp_media_lines(sdp: str) -> None:
    """Check every ``m=`` line as aiortc will parse it, with a message that names it.

    Args:
        sdp: The SDP text.

    Raises:
        SignallingError: 400 naming the first malformed media line.
    """
    number = 0
    for line in sdp.splitlines():
        if not line.startswith("m="):
            continue
        number += 1
        shown = line if len(line) <= 80 else line[:77] + "..."
        match = _MEDIA_LINE.match(line)
        if match is None:
            what = "is empty" if not line[2:].strip() else "is malformed"
            raise SignallingError(
                400,
                f"SDP media line {number} ({shown!r}) {what}: expected "
                "'m=<media> <port> <PROTOCOL> <format> ...', e.g. "
                "'m=audio 9 UDP/TLS/RTP/SAVPF 111'",
            )
        if match.group(1) in ("audio", "video"):
            for fmt in match.group(4).split():
                if not fmt.isdigit() or int(fmt) > 255:
                    raise SignallingError(
                        400,
                        f"SDP media line {number} ({shown!r}): payload type {fmt!r} "
                        "is not an integer from 0 to 255",
                    )
                if int(fmt) in _FORBIDDEN_PAYLOAD_TYPES:
                    raise SignallingError(
                        400,
                        f"SDP media line {number} ({shown!r}): payload type {fmt} "
                        "is reserved (72-76 clash with RTCP)",
                    )
    if number == 0:
        raise SignallingError(400, "'sdp' has no media section ('m=' line)")


def _port_problem(value: str, what: str) -> str | None:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        return f"{what} {value!r} is not a port number from 1 to 65535"
    return None


def _address_problem(value: str, what: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if _MDNS_NAME.match(value):
            return None
        return f"{what} {value!r} is not an IP address or an mDNS '.local' name"
    return None


def candidate_problem(text: str) -> str | None:
    """What is wrong with an ICE candidate line, if anything (RFC 8839 grammar).

    Args:
        text: The candidate without its ``candidate:`` prefix, e.g.
            ``"1 1 udp 2130706431 127.0.0.1 5000 typ host"``.

    Returns:
        ``None`` for a plausible candidate, else a message naming the bad field.
    """
    bits = text.split()
    if len(bits) < 8:
        return f"malformed candidate line {text!r} (expected at least 8 fields)"
    foundation, component, transport, priority, address, port, typ, kind = bits[:8]
    if len(foundation) > 32:
        return f"foundation {foundation[:40]!r} is longer than 32 characters"
    if not component.isdigit() or not 1 <= int(component) <= 256:
        return f"component {component!r} is not an integer from 1 to 256"
    if transport.lower() not in ("udp", "tcp"):
        return f"transport {transport!r} is not 'udp' or 'tcp'"
    if not priority.isdigit() or not 1 <= int(priority) <= 2**32 - 1:
        return f"priority {priority!r} is not an integer from 1 to {2**32 - 1}"
    problem = _address_problem(address, "connection address") or _port_problem(port, "port")
    if problem:
        return problem
    if typ != "typ":
        return f"expected 'typ' as the 7th field, got {typ!r}"
    if kind not in _CANDIDATE_TYPES:
        return f"candidate type {kind!r} is not one of {', '.join(_CANDIDATE_TYPES)}"
    extensions = bits[8:]
    for name, value in zip(extensions[::2], extensions[1::2], strict=False):
        problem = None
        if name == "raddr":
            problem = _address_problem(value, "related address")
        elif name == "rport":
            problem = None if value == "0" else _port_problem(value, "related port")
        elif name == "tcptype" and value not in ("active", "passive", "so"):
            problem = f"tcptype {value!r} is not active, passive or so"
        if problem:
            return problem
    return None


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
    check_sdp_media_lines(sdp)
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
        if text:
            problem = candidate_problem(text)
            if problem:
                raise SignallingError(400, f"candidate {i}: {problem}")
        mid = c.get("sdp_mid", c.get("sdpMid"))
        if mid is not None and not isinstance(mid, str):
            raise SignallingError(400, f"candidate {i}: 'sdp_mid' must be a string")
        index = c.get("sdp_mline_index", c.get("sdpMLineIndex"))
        if index is not None and (
            not isinstance(index, int) or isinstance(index, bool) or index < 0
        ):
            raise SignallingError(
                400, f"candidate {i}: 'sdp_mline_index' must be a non-negative integer"
            )
        candidates.append(CandidatePatch(candidate=text, sdp_mid=mid, sdp_mline_index=index))
    return PatchRequest(pc_id=pc_id, candidates=candidates)
