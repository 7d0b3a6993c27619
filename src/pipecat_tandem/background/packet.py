#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The context packet: everything a background job receives.

Not a standalone query but the whole situation: a full copy of the live
conversation (every message, tool call and tool result, in pipecat's universal
OpenAI-shaped format), the task as the interaction model phrased it, the recent
transcript with timings, the latest camera frame, recent cues, the other jobs in
flight, timestamps and the delivery policy. It is a plain value that serializes
to JSON (format ``tandem.packet/1``) so it can cross a process boundary.
"""

from __future__ import annotations

import base64
import copy
import json
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

PACKET_VERSION = "tandem.packet/1"


@dataclass
class TranscriptEntry:
    """One finalized utterance with its session-time span.

    Parameters:
        role: ``user`` or ``assistant``.
        text: What was said.
        start: Session time the utterance started (seconds).
        end: Session time it ended (seconds).
    """

    role: str
    text: str
    start: float
    end: float


@dataclass
class CameraSnapshot:
    """The latest camera frame, raw RGB.

    Parameters:
        width: Pixels.
        height: Pixels.
        time: Session time the frame was captured.
        rgb: ``width * height * 3`` bytes, row-major RGB.
        source: Transport source name (``camera``, ``screenVideo``...).
    """

    width: int
    height: int
    time: float
    rgb: bytes
    source: str = "camera"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (pixels base64-encoded)."""
        return {
            "width": self.width,
            "height": self.height,
            "time": self.time,
            "source": self.source,
            "rgb_b64": base64.b64encode(self.rgb).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CameraSnapshot:
        """Inverse of :meth:`to_dict`."""
        return cls(
            width=int(data["width"]),
            height=int(data["height"]),
            time=float(data["time"]),
            rgb=base64.b64decode(data["rgb_b64"]),
            source=str(data.get("source", "camera")),
        )


@dataclass
class JobSummary:
    """Another job in flight, as seen by a new job.

    Parameters:
        job_id: Its id.
        task: Its task.
        state: Its state name.
        running_for: Seconds since it was submitted.
    """

    job_id: str
    task: str
    state: str
    running_for: float


@dataclass
class ContextPacket:
    """What a background job receives. See the module docstring.

    Parameters:
        job_id: The job's id.
        task: The task as the interaction model (or a policy) phrased it.
        policy: Delivery policy name.
        created_at: Session time of the delegation.
        wall_time: ISO-8601 wall-clock time of the delegation (for date tools).
        deadline_s: Seconds the job may run.
        messages: Deep copy of the conversation (universal LLM context format).
        transcript: Recent finalized utterances with timings.
        camera: The latest camera frame, if any.
        cues: Recent cue events (``{"kind", "time", "value"}``).
        other_jobs: The other jobs in flight.
        follow_ups: Follow-up instructions added while the job runs.
        version: Format version.
    """

    job_id: str
    task: str
    policy: str = "when_idle"
    created_at: float = 0.0
    wall_time: str = ""
    deadline_s: float = 60.0
    messages: list[dict[str, Any]] = field(default_factory=list)
    transcript: list[TranscriptEntry] = field(default_factory=list)
    camera: CameraSnapshot | None = None
    cues: list[dict[str, Any]] = field(default_factory=list)
    other_jobs: list[JobSummary] = field(default_factory=list)
    follow_ups: list[str] = field(default_factory=list)
    version: str = PACKET_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict form."""
        data = asdict(self)
        data["camera"] = self.camera.to_dict() if self.camera else None
        return data

    def to_json(self) -> str:
        """Serialize to a JSON string."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContextPacket:
        """Rebuild a packet from :meth:`to_dict` output.

        Raises:
            ValueError: On an unknown format version or a missing field.
        """
        if data.get("version") != PACKET_VERSION:
            raise ValueError(f"unsupported context packet version {data.get('version')!r}")
        try:
            return cls(
                job_id=str(data["job_id"]),
                task=str(data["task"]),
                policy=str(data.get("policy", "when_idle")),
                created_at=float(data.get("created_at", 0.0)),
                wall_time=str(data.get("wall_time", "")),
                deadline_s=float(data.get("deadline_s", 60.0)),
                messages=list(data.get("messages", [])),
                transcript=[TranscriptEntry(**t) for t in data.get("transcript", [])],
                camera=CameraSnapshot.from_dict(data["camera"]) if data.get("camera") else None,
                cues=list(data.get("cues", [])),
                other_jobs=[JobSummary(**j) for j in data.get("other_jobs", [])],
                follow_ups=[str(f) for f in data.get("follow_ups", [])],
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"malformed context packet: {e}") from e

    @classmethod
    def from_json(cls, text: str) -> ContextPacket:
        """Parse :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))


def copy_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """Deep-copy pipecat context messages into JSON-safe dicts.

    Standard messages (OpenAI-shaped dicts, including ``tool_calls`` and ``tool``
    results) are kept as they are; provider-specific messages
    (``LLMSpecificMessage``) become ``{"llm_specific": llm, "message": ...}``.
    Values JSON cannot hold are stringified rather than dropped.
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, dict):
            item: dict[str, Any] = copy.deepcopy(m)
        elif hasattr(m, "llm") and hasattr(m, "message"):
            item = {"llm_specific": str(m.llm), "message": copy.deepcopy(m.message)}
        else:
            item = {"role": "unknown", "content": str(m)}
        out.append(json.loads(json.dumps(item, default=str)))
    return out


class PacketBuilder:
    """Collects the session state a packet needs; builds packets on demand. No I/O.

    Args:
        transcript_window_s: How far back the transcript in a packet reaches.
        max_transcript: Upper bound on kept utterances.
        max_cues: Upper bound on kept cues.
    """

    def __init__(
        self, *, transcript_window_s: float = 120.0, max_transcript: int = 200, max_cues: int = 50
    ) -> None:
        self._window = transcript_window_s
        self._transcript: deque[TranscriptEntry] = deque(maxlen=max_transcript)
        self._cues: deque[dict[str, Any]] = deque(maxlen=max_cues)
        self._camera: CameraSnapshot | None = None

    @property
    def camera(self) -> CameraSnapshot | None:
        """The latest camera frame seen."""
        return self._camera

    @property
    def transcript(self) -> list[TranscriptEntry]:
        """All kept utterances, oldest first."""
        return list(self._transcript)

    def add_utterance(self, role: str, text: str, start: float, end: float) -> None:
        """Record a finalized utterance."""
        text = text.strip()
        if text:
            self._transcript.append(TranscriptEntry(role, text, start, end))

    def add_cue(self, kind: str, time: float, value: float = 0.0) -> None:
        """Record a cue."""
        self._cues.append({"kind": kind, "time": time, "value": value})

    def set_camera(self, snapshot: CameraSnapshot) -> None:
        """Remember the latest camera frame."""
        self._camera = snapshot

    def build(
        self,
        *,
        job_id: str,
        task: str,
        policy: str,
        now: float,
        wall_time: str,
        deadline_s: float,
        messages: list[Any],
        other_jobs: list[JobSummary],
    ) -> ContextPacket:
        """Snapshot the session into a new packet (messages are deep-copied)."""
        since = now - self._window
        return ContextPacket(
            job_id=job_id,
            task=task,
            policy=policy,
            created_at=now,
            wall_time=wall_time,
            deadline_s=deadline_s,
            messages=copy_messages(messages),
            transcript=[t for t in self._transcript if t.end >= since],
            camera=self._camera,
            cues=[c for c in self._cues if c["time"] >= since],
            other_jobs=other_jobs,
        )
