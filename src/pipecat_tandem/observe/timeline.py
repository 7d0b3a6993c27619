#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The session timeline picture, drawn from a session event log (JSONL).

One lane each for user speech, bot speech and cues, then one lane per
background job from delegation through progress to delivery. Job segments are
coloured by state (running, ready and waiting for a gap, delivered); markers
show progress notes, results, deliveries, merges, stale drops and failures; a
vertical band marks each turn gap where a delivery landed. Rendered as a PNG
(Pillow) or a self-contained HTML page (inline SVG, hover titles, no external
resources).

Pure: no pipecat imports, no clock; everything comes from the events. Robust to
real logs: malformed lines are skipped and counted, events are sorted by time,
spans left open end at the last event, and huge logs are capped (lanes and
markers) with a note on the picture.

The colours are fixed module constants (RGB tuples) so tests and readers can
rely on them.
"""

from __future__ import annotations

import bisect
import html
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

RGB = tuple[int, int, int]

BACKGROUND_COLOR: RGB = (255, 255, 255)
TEXT_COLOR: RGB = (33, 37, 41)
AXIS_COLOR: RGB = (108, 117, 125)
GRID_COLOR: RGB = (236, 238, 240)
LANE_LINE_COLOR: RGB = (206, 212, 218)
USER_SPEECH_COLOR: RGB = (52, 120, 246)
"""User speech spans."""
BOT_SPEECH_COLOR: RGB = (46, 160, 67)
"""Bot speech spans."""
CUE_COLOR: RGB = (111, 66, 193)
"""Cue markers."""
RUNNING_COLOR: RGB = (255, 193, 7)
"""A job working (queued or running)."""
READY_COLOR: RGB = (253, 126, 20)
"""A job's result ready, waiting for a gap."""
DELIVERED_COLOR: RGB = (32, 201, 151)
"""A job's result being delivered (until the bot stops speaking)."""
GAP_BAND_COLOR: RGB = (234, 230, 252)
"""The turn gap in which a delivery landed (vertical band across all lanes)."""
PROGRESS_COLOR: RGB = (73, 80, 87)
RESULT_READY_COLOR: RGB = (214, 51, 132)
DELIVERY_MARKER_COLOR: RGB = (0, 84, 60)
"""The moment of a delivery (vertical bar in the job's lane)."""
MERGED_COLOR: RGB = (102, 16, 242)
STALE_COLOR: RGB = (134, 142, 150)
FAILED_COLOR: RGB = (220, 53, 69)
INTERRUPTED_COLOR: RGB = (176, 42, 55)
OTHER_COLOR: RGB = (173, 181, 189)

MAX_JOB_LANES = 40
"""Jobs beyond this many (in order of appearance) are left out, with a note."""

MAX_MARKERS_PER_LANE = 2000
"""Markers beyond this many in one lane are left out, with a note."""

MAX_LINE_CHARS = 1_000_000
"""Longer log lines are counted as malformed."""

MAX_ABS_TIME = 1e9
"""Event times beyond ±this many seconds (about 31 years) are counted as malformed."""

# Layout, in pixels.
LABEL_WIDTH = 190
RIGHT_PAD = 24
TITLE_HEIGHT = 34
NOTE_HEIGHT = 16
LANE_HEIGHT = 30
BAR_PAD = 6
AXIS_HEIGHT = 30
LEGEND_ROW_HEIGHT = 20
LEGEND_ITEM_WIDTH = 170
MIN_WIDTH = 400
MAX_WIDTH = 20_000

SPAN_COLORS: dict[str, RGB] = {
    "user": USER_SPEECH_COLOR,
    "bot": BOT_SPEECH_COLOR,
    "running": RUNNING_COLOR,
    "ready": READY_COLOR,
    "delivered": DELIVERED_COLOR,
}
MARKER_COLORS: dict[str, RGB] = {
    "cue": CUE_COLOR,
    "progress": PROGRESS_COLOR,
    "result_ready": RESULT_READY_COLOR,
    "delivered": DELIVERY_MARKER_COLOR,
    "merged": MERGED_COLOR,
    "dropped_stale": STALE_COLOR,
    "failed": FAILED_COLOR,
    "delivery_interrupted": INTERRUPTED_COLOR,
    "other": OTHER_COLOR,
}
LEGEND: list[tuple[str, str, RGB]] = [
    ("span", "user speech", USER_SPEECH_COLOR),
    ("span", "bot speech", BOT_SPEECH_COLOR),
    ("span", "job running", RUNNING_COLOR),
    ("span", "result waiting for a gap", READY_COLOR),
    ("span", "delivering", DELIVERED_COLOR),
    ("span", "gap used for a delivery", GAP_BAND_COLOR),
    ("cue", "cue", CUE_COLOR),
    ("progress", "progress", PROGRESS_COLOR),
    ("result_ready", "result ready", RESULT_READY_COLOR),
    ("delivered", "delivered", DELIVERY_MARKER_COLOR),
    ("merged", "merged", MERGED_COLOR),
    ("dropped_stale", "dropped (stale)", STALE_COLOR),
    ("failed", "failed / error", FAILED_COLOR),
    ("delivery_interrupted", "delivery interrupted", INTERRUPTED_COLOR),
]


class EventList(list[dict[str, Any]]):
    """Events loaded from a log, with how many lines were skipped as malformed."""

    malformed: int = 0
    malformed_lines: list[int]

    def __init__(self, events: Iterable[dict[str, Any]] = (), malformed_lines: Iterable[int] = ()):
        super().__init__(events)
        self.malformed_lines = list(malformed_lines)
        self.malformed = len(self.malformed_lines)


def _valid_event(obj: Any) -> bool:
    if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
        return False
    t = obj.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float):
        return False
    return math.isfinite(t) and abs(t) <= MAX_ABS_TIME


def load_events(path: str | Path) -> EventList:
    """Read a JSONL session log.

    Lines that are not JSON objects with a finite numeric ``t`` and a string
    ``kind`` are skipped and counted (``result.malformed``); blank lines are ignored.

    Raises:
        OSError: If the file cannot be opened.
    """
    events: list[dict[str, Any]] = []
    bad: list[int] = []
    with Path(path).open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if len(line) > MAX_LINE_CHARS:
                bad.append(number)
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                bad.append(number)
                continue
            if _valid_event(obj):
                events.append(obj)
            else:
                bad.append(number)
    return EventList(events, bad)


@dataclass
class Span:
    """A coloured interval in a lane; ``title`` is the hover text."""

    start: float
    end: float
    kind: str
    title: str


@dataclass
class Marker:
    """A point event in a lane."""

    t: float
    kind: str
    title: str


@dataclass
class Lane:
    """One row of the picture."""

    key: str
    label: str
    title: str = ""
    spans: list[Span] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    dropped_markers: int = 0

    def mark(self, t: float, kind: str, title: str) -> None:
        """Add a marker unless the lane is full (then count it)."""
        if len(self.markers) < MAX_MARKERS_PER_LANE:
            self.markers.append(Marker(t, kind, title))
        else:
            self.dropped_markers += 1


@dataclass
class Timeline:
    """What the renderers draw: a time range, lanes, delivery gap bands and notes."""

    t0: float
    t1: float
    lanes: list[Lane]
    bands: list[Span]
    notes: list[str]


def _fmt(t: float) -> str:
    return f"{t:.2f}s"


def _speech_lane(key: str, label: str, events: list[dict[str, Any]], t0: float, t1: float) -> Lane:
    lane = Lane(key, label)
    start_kind, stop_kind = f"{key}_started", f"{key}_stopped"
    open_at: float | None = None
    for e in events:
        if e["kind"] == start_kind and open_at is None:
            open_at = e["t"]
        elif e["kind"] == stop_kind:
            if open_at is None:  # speaking when the log began
                lane.spans.append(
                    Span(t0, e["t"], key, f"{label} until {_fmt(e['t'])} (start not in log)")
                )
            else:
                lane.spans.append(
                    Span(open_at, e["t"], key, f"{label} {_fmt(open_at)}–{_fmt(e['t'])}")
                )
            open_at = None
    if open_at is not None:
        lane.spans.append(Span(open_at, t1, key, f"{label} from {_fmt(open_at)} (no stop in log)"))
    role = "user" if key == "user" else "assistant"
    spans = lane.spans
    # The first span (in order) with start <= t <= end + 2, found in log time:
    # span ends never decrease (stops come in time order; an open span ends at
    # t1), so the spans whose end + 2 reaches t are a suffix; the first of them
    # qualifies if it started by t, else only a later span that starts at t0 (a
    # stop whose start is not in the log) can, as other starts only grow.
    headless = [i for i, span in enumerate(spans) if span.start <= t0]
    for e in events:
        if e["kind"] == "transcript" and e.get("role") == role and e.get("text"):
            t = e["t"]
            # A transcript lands shortly after its speech ends.
            i = bisect.bisect_left(spans, t, key=lambda span: span.end + 2.0)
            if i < len(spans) and spans[i].start > t:
                h = bisect.bisect_left(headless, i)
                i = headless[h] if h < len(headless) else len(spans)
            if i < len(spans):
                spans[i].title += f": “{str(e['text'])[:200]}”"
    return lane


class _JobTrack:
    """Follows one job's events into spans and markers."""

    def __init__(self, job_id: str) -> None:
        self.lane = Lane(f"job:{job_id}", job_id, title=f"job {job_id}")
        self.state: str | None = None
        self.since = 0.0
        # A spoken delivery lasts until the bot next stops talking.
        self.delivered_until: float | None = None

    def go(self, t: float, state: str | None, why: str) -> None:
        if self.state is not None and t > self.since:
            title = f"{self.state} {_fmt(self.since)}–{_fmt(t)} {why}".strip()
            self.lane.spans.append(Span(self.since, t, self.state, title))
        self.state, self.since = state, t
        self.delivered_until = None

    def settle(self, t: float) -> None:
        """End a finished delivery span before handling an event at ``t``."""
        if self.state == "delivered" and self.delivered_until is not None:
            if self.delivered_until <= t:
                self.go(self.delivered_until, None, "")

    def close(self, t: float) -> None:
        self.settle(t)
        end = t if self.delivered_until is None else min(t, self.delivered_until)
        self.go(end, None, "(end of log)" if end == t and self.state != "delivered" else "")


def _job_event(track: _JobTrack, e: dict[str, Any], kind: str) -> None:
    t = e["t"]
    lane = track.lane
    if kind == "delegated":
        task = str(e.get("task", ""))
        # From the job id each time: a log that repeats a job's delegation (a
        # retried or hostile log) must not grow the label with every copy.
        job_id = lane.key[4:]
        lane.label = f"{job_id}: {task[:200]}" if task else job_id
        lane.title = f"job {lane.key[4:]} ({e.get('policy', 'when_idle')}): {task[:300]}"
        if track.state is None:
            track.go(t, "running", "")
    elif kind == "job_state":
        state = str(e.get("state", ""))
        detail = str(e.get("detail", ""))[:200]
        if state in ("queued", "running") and track.state is None:
            track.go(t, "running", "")
        elif state in ("failed", "cancelled", "stale"):
            track.go(t, None, f"→ {state}")
            lane.mark(t, "failed" if state == "failed" else "dropped_stale", f"{state} {detail}")
    elif kind == "progress":
        lane.mark(t, "progress", f"progress {_fmt(t)}: {str(e.get('text', ''))[:200]}")
    elif kind == "result_ready":
        final = bool(e.get("is_final", True))
        stale = " (stale)" if e.get("stale") else ""
        lane.mark(t, "result_ready", f"{'final' if final else 'partial'} result {_fmt(t)}{stale}")
        if final and track.state in (None, "running"):
            track.go(t, "ready", "")
    elif kind == "delivered":
        how = f"{e.get('delivery', 'delivered')} ({e.get('mode', '?')}) at {_fmt(t)}"
        lane.mark(t, "delivered", how)
        track.go(t, "delivered", "")
    elif kind == "delivery_interrupted":
        lane.mark(t, "delivery_interrupted", f"delivery interrupted at {_fmt(t)}")
        track.go(t, "ready", "(interrupted)")
    elif kind == "merged":
        lane.mark(t, "merged", f"merged into {e.get('into', 'another delivery')} at {_fmt(t)}")
    elif kind in ("dropped_stale", "dropped_session_end"):
        lane.mark(t, "dropped_stale", f"{kind.replace('_', ' ')} at {_fmt(t)}")
        track.go(t, None, "(dropped)")
    elif kind == "failed":
        lane.mark(t, "failed", f"failed at {_fmt(t)}: {str(e.get('error', ''))[:200]}")
        track.go(t, None, "(failed)")
    else:
        lane.mark(t, "other", f"{kind} at {_fmt(t)}")


def _job_ids(e: dict[str, Any]) -> list[str]:
    ids = e.get("job_ids")
    if isinstance(ids, list) and ids:
        return [str(i) for i in ids if i is not None]
    return [str(e["job_id"])] if e.get("job_id") not in (None, "") else []


def _delivery_band(e: dict[str, Any], speaking: dict[str, bool], last_stop: float) -> Span:
    """The quiet stretch before a delivery: since both user and bot last stopped.

    Args:
        e: The ``delivered`` event.
        speaking: Whether the user and the bot were speaking after every event
            up to ``e``'s time (ties included).
        last_stop: The latest ``user_stopped``/``bot_stopped`` time by then.
    """
    t = e["t"]
    quiet = not (
        speaking["user"] or speaking["bot"] or e.get("user_speaking") or e.get("bot_speaking")
    )
    start = last_stop if quiet and last_stop > -math.inf else t
    title = f"gap {_fmt(start)}–{_fmt(t)}: delivery of {', '.join(_job_ids(e)) or '?'}"
    return Span(start, t, "gap", title)


def _delivery_bands(events: list[dict[str, Any]]) -> list[Span]:
    """The gap band of each ``delivered`` event, in order (events sorted by time).

    One pass: the speaking state is followed event by event, and the deliveries
    at one time get the state after every event at that time.
    """
    bands: list[Span] = []
    speaking = {"user": False, "bot": False}
    last_stop = -math.inf
    pending: list[dict[str, Any]] = []
    for i, other in enumerate(events):
        who, _, what = other["kind"].partition("_")
        if who in speaking and what in ("started", "stopped"):
            speaking[who] = what == "started"
            if what == "stopped":
                last_stop = max(last_stop, other["t"])
        if other["kind"] == "delivered":
            pending.append(other)
        if pending and (i + 1 == len(events) or events[i + 1]["t"] > other["t"]):
            bands.extend(_delivery_band(e, speaking, last_stop) for e in pending)
            pending.clear()
    return bands


def build_timeline(events: Iterable[Any]) -> Timeline:
    """Turn events (any order, possibly with junk) into lanes, bands and notes."""
    raw = list(events)
    valid = sorted((e for e in raw if _valid_event(e)), key=lambda e: e["t"])
    notes: list[str] = []
    malformed = getattr(events, "malformed", 0) + (len(raw) - len(valid))
    if malformed:
        notes.append(f"{malformed} malformed event(s) skipped")
    if not valid:
        notes.append("empty event log: nothing to show")
        lanes = [Lane("user", "user speech"), Lane("bot", "bot speech"), Lane("cues", "cues")]
        return Timeline(0.0, 1.0, lanes, [], notes)
    t0, t1 = float(valid[0]["t"]), float(valid[-1]["t"])
    if t1 - t0 < 1e-6:
        t1 = t0 + 1.0
    lanes = [_speech_lane("user", "user speech", valid, t0, t1)]
    lanes.append(_speech_lane("bot", "bot speech", valid, t0, t1))
    cues = Lane("cues", "cues")
    tracks: dict[str, _JobTrack] = {}
    hidden: set[str] = set()
    bands = _delivery_bands(valid)
    bot_stops = [e["t"] for e in valid if e["kind"] == "bot_stopped"]
    for e in valid:
        kind = e["kind"]
        if kind == "cue":
            cues.mark(
                e["t"], "cue", f"cue {e.get('cue', '?')}={e.get('value', '')} at {_fmt(e['t'])}"
            )
        elif kind == "error" and not _job_ids(e):
            cues.mark(
                e["t"], "failed", f"error at {_fmt(e['t'])}: {str(e.get('message', ''))[:200]}"
            )
        for job_id in _job_ids(e):
            if job_id not in tracks:
                if len(tracks) >= MAX_JOB_LANES:
                    hidden.add(job_id)
                    continue
                tracks[job_id] = _JobTrack(job_id)
            track = tracks[job_id]
            track.settle(e["t"])
            _job_event(track, e, kind)
            if kind == "delivered":
                silent = e.get("mode") == "silent"
                later = bisect.bisect_right(bot_stops, e["t"])
                end = e["t"] if silent else (bot_stops[later] if later < len(bot_stops) else None)
                track.delivered_until = end
    for track in tracks.values():
        track.close(t1)
    lanes.append(cues)
    lanes.extend(track.lane for track in tracks.values())
    if hidden:
        notes.append(f"{len(hidden)} more job(s) not shown (at most {MAX_JOB_LANES} job lanes)")
    dropped = sum(lane.dropped_markers for lane in lanes)
    if dropped:
        notes.append(f"{dropped} marker(s) not shown (at most {MAX_MARKERS_PER_LANE} per lane)")
    return Timeline(t0, t1, lanes, bands, notes)


@dataclass(frozen=True)
class TimelineLayout:
    """Where things go on the picture (shared by the PNG and HTML renderers).

    Parameters:
        width: Picture width in pixels.
        t0: Time at the left edge of the plot.
        t1: Time at the right edge of the plot.
        lanes: Number of lanes.
        notes: Number of note lines under the title.
    """

    width: int
    t0: float
    t1: float
    lanes: int
    notes: int

    @property
    def plot_left(self) -> int:
        """Left edge of the plot area."""
        return LABEL_WIDTH

    @property
    def plot_right(self) -> int:
        """Right edge of the plot area."""
        return self.width - RIGHT_PAD

    @property
    def lanes_top(self) -> int:
        """Top of the first lane."""
        return TITLE_HEIGHT + self.notes * NOTE_HEIGHT

    @property
    def lanes_bottom(self) -> int:
        """Bottom of the last lane."""
        return self.lanes_top + self.lanes * LANE_HEIGHT

    @property
    def legend_columns(self) -> int:
        """Legend items per row."""
        return max(1, (self.width - 20) // LEGEND_ITEM_WIDTH)

    @property
    def height(self) -> int:
        """Picture height in pixels."""
        rows = math.ceil(len(LEGEND) / self.legend_columns)
        return self.lanes_bottom + AXIS_HEIGHT + rows * LEGEND_ROW_HEIGHT + 10

    def x(self, t: float) -> float:
        """The x coordinate of session time ``t``."""
        span = self.plot_right - self.plot_left
        return self.plot_left + (t - self.t0) / (self.t1 - self.t0) * span

    def lane_top(self, index: int) -> int:
        """Top y of lane ``index``."""
        return self.lanes_top + index * LANE_HEIGHT

    def lane_center(self, index: int) -> int:
        """Middle y of lane ``index``."""
        return self.lane_top(index) + LANE_HEIGHT // 2

    def ticks(self) -> list[float]:
        """Times of the axis ticks (a 1-2-5 step, about one per 90 px)."""
        duration = self.t1 - self.t0
        wanted = max(1, (self.plot_right - self.plot_left) // 90)
        raw = duration / wanted
        magnitude = 10 ** math.floor(math.log10(raw))
        step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
        first = math.ceil(self.t0 / step - 1e-9) * step
        count = int((self.t1 - first) / step + 1e-9) + 1
        return [round(first + i * step, 9) for i in range(count)]


def layout_for(timeline: Timeline, *, width: int = 1400) -> TimelineLayout:
    """The layout a timeline gets at ``width``.

    Raises:
        ValueError: If ``width`` is outside 400..20000 pixels.
    """
    if isinstance(width, bool) or not isinstance(width, int) or not MIN_WIDTH <= width <= MAX_WIDTH:
        raise ValueError(f"width must be an integer from {MIN_WIDTH} to {MAX_WIDTH} pixels")
    return TimelineLayout(width, timeline.t0, timeline.t1, len(timeline.lanes), len(timeline.notes))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    # ASCII only: the bundled default font has no typographic ellipsis.
    if draw.textlength(text, font=font) <= width:
        return text
    # The longest prefix that fits, by bisection: trimming a character at a time
    # measured a long label once per character (quadratic in its length).
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid] + "...", font=font) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "..."


def _draw_marker(draw: ImageDraw.ImageDraw, kind: str, x: float, top: int) -> None:
    color = MARKER_COLORS.get(kind, OTHER_COLOR)
    cy = top + LANE_HEIGHT // 2
    if kind == "delivered":
        draw.rectangle([round(x) - 1, top + 2, round(x) + 1, top + LANE_HEIGHT - 3], fill=color)
    elif kind == "delivery_interrupted":
        draw.rectangle([round(x) - 1, top + 4, round(x) + 1, top + LANE_HEIGHT - 5], fill=color)
    elif kind == "result_ready":
        draw.polygon([(x, cy - 6), (x + 6, cy), (x, cy + 6), (x - 6, cy)], fill=color)
    elif kind in ("failed", "dropped_stale"):
        draw.line([(x - 5, cy - 5), (x + 5, cy + 5)], fill=color, width=2)
        draw.line([(x - 5, cy + 5), (x + 5, cy - 5)], fill=color, width=2)
    elif kind == "merged":
        draw.rectangle([x - 4, cy - 4, x + 4, cy + 4], fill=color)
    elif kind == "cue":
        draw.polygon([(x, cy - 6), (x + 5, cy + 4), (x - 5, cy + 4)], fill=color)
    else:
        draw.ellipse([x - 3, cy - 3, x + 3, cy + 3], fill=color)


def render_timeline_png(events: Iterable[Any], out_path: str | Path, *, width: int = 1400) -> Path:
    """Draw the timeline as a PNG with Pillow.

    Args:
        events: Event dicts (e.g. from :func:`load_events`), any order.
        out_path: Where to write the ``.png``.
        width: Picture width in pixels (the height follows from the lanes).

    Returns:
        The written path.
    """
    timeline = build_timeline(events)
    lay = layout_for(timeline, width=width)
    image = Image.new("RGB", (lay.width, lay.height), BACKGROUND_COLOR)
    draw = ImageDraw.Draw(image)
    font, small = _font(13), _font(11)
    title = f"session timeline {_fmt(timeline.t0)} to {_fmt(timeline.t1)}"
    draw.text((10, 9), title, fill=TEXT_COLOR, font=_font(15))
    for i, note in enumerate(timeline.notes):
        draw.text((10, TITLE_HEIGHT + i * NOTE_HEIGHT), note, fill=FAILED_COLOR, font=small)
    top, bottom = lay.lanes_top, lay.lanes_bottom
    for band in timeline.bands:
        x0, x1 = lay.x(band.start), lay.x(band.end)
        draw.rectangle([x0 - 2, top, max(x1, x0) + 2, bottom - 1], fill=GAP_BAND_COLOR)
    ticks = lay.ticks()
    for t in ticks:
        x = round(lay.x(t))
        draw.line([(x, top), (x, bottom)], fill=GRID_COLOR)
    for i, lane in enumerate(timeline.lanes):
        y = lay.lane_top(i)
        label = _fit(draw, lane.label, font, LABEL_WIDTH - 16)
        draw.text((10, y + 8), label, fill=TEXT_COLOR, font=font)
        draw.line(
            [(lay.plot_left, y + LANE_HEIGHT - 1), (lay.plot_right, y + LANE_HEIGHT - 1)],
            fill=LANE_LINE_COLOR,
        )
        for span in lane.spans:
            x0, x1 = lay.x(span.start), max(lay.x(span.end), lay.x(span.start) + 2)
            color = SPAN_COLORS.get(span.kind, OTHER_COLOR)
            draw.rectangle([x0, y + BAR_PAD, x1, y + LANE_HEIGHT - BAR_PAD - 1], fill=color)
        # Deliveries last, so they stay visible on top of other markers.
        for marker in sorted(lane.markers, key=lambda m: m.kind == "delivered"):
            _draw_marker(draw, marker.kind, lay.x(marker.t), y)
    draw.line([(lay.plot_left, bottom), (lay.plot_right, bottom)], fill=AXIS_COLOR)
    for t in ticks:
        x = round(lay.x(t))
        draw.line([(x, bottom), (x, bottom + 5)], fill=AXIS_COLOR)
        text = f"{t:g}s"
        draw.text(
            (x - draw.textlength(text, font=small) / 2, bottom + 8),
            text,
            fill=AXIS_COLOR,
            font=small,
        )
    legend_top = bottom + AXIS_HEIGHT
    for n, (kind, text, color) in enumerate(LEGEND):
        row, col = divmod(n, lay.legend_columns)
        x, y = 10 + col * LEGEND_ITEM_WIDTH, legend_top + row * LEGEND_ROW_HEIGHT
        if kind == "span":
            draw.rectangle([x, y + 4, x + 18, y + 14], fill=color, outline=LANE_LINE_COLOR)
        else:
            _draw_marker(draw, kind, x + 9, y + 9 - LANE_HEIGHT // 2)
        draw.text((x + 24, y + 2), text, fill=TEXT_COLOR, font=small)
    out = Path(out_path)
    image.save(out, format="PNG")
    return out


def _hex(color: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


def _svg_marker(kind: str, x: float, top: int, title: str) -> str:
    cy = top + LANE_HEIGHT // 2
    tip, cls = f"<title>{html.escape(title)}</title>", f'class="m {kind}"'
    if kind in ("delivered", "delivery_interrupted"):
        pad = 2 if kind == "delivered" else 4
        box = f'x="{x - 1.5:.1f}" y="{top + pad}" width="3" height="{LANE_HEIGHT - 2 * pad}"'
        return f"<rect {cls} {box}>{tip}</rect>"
    if kind in ("result_ready", "cue"):
        pts = (
            f"{x:.1f},{cy - 6} {x + 6:.1f},{cy} {x:.1f},{cy + 6} {x - 6:.1f},{cy}"
            if kind == "result_ready"
            else f"{x:.1f},{cy - 6} {x + 5:.1f},{cy + 4} {x - 5:.1f},{cy + 4}"
        )
        return f'<polygon {cls} points="{pts}">{tip}</polygon>'
    if kind in ("failed", "dropped_stale"):
        d = f"M{x - 5:.1f},{cy - 5}L{x + 5:.1f},{cy + 5}M{x - 5:.1f},{cy + 5}L{x + 5:.1f},{cy - 5}"
        return f'<path {cls} d="{d}">{tip}</path>'
    if kind == "merged":
        return f'<rect {cls} x="{x - 4:.1f}" y="{cy - 4}" width="8" height="8">{tip}</rect>'
    return f'<circle {cls} cx="{x:.1f}" cy="{cy}" r="3">{tip}</circle>'


def _css() -> str:
    rules = [
        f"body{{font-family:system-ui,sans-serif;color:{_hex(TEXT_COLOR)};"
        f"background:{_hex(BACKGROUND_COLOR)};margin:16px}}",
        f".note{{color:{_hex(FAILED_COLOR)};font-size:13px;margin:2px 0}}",
        f"svg text{{font-size:12px;fill:{_hex(TEXT_COLOR)}}}",
        f"svg text.axis{{font-size:11px;fill:{_hex(AXIS_COLOR)}}}",
        f"line.grid{{stroke:{_hex(GRID_COLOR)}}} line.sep{{stroke:{_hex(LANE_LINE_COLOR)}}}",
        f"line.axis{{stroke:{_hex(AXIS_COLOR)}}} rect.gap{{fill:{_hex(GAP_BAND_COLOR)}}}",
        "path.m{fill:none;stroke-width:2}",
        ".legend{display:flex;flex-wrap:wrap;gap:6px 18px;font-size:12px;margin-top:8px}",
        ".sw{display:inline-block;width:18px;height:10px;margin-right:6px}",
    ]
    rules += [f"rect.s.{k}{{fill:{_hex(c)}}}" for k, c in SPAN_COLORS.items()]
    rules += [f".m.{k}{{fill:{_hex(c)};stroke:{_hex(c)}}}" for k, c in MARKER_COLORS.items()]
    return "\n".join(rules)


def _svg(timeline: Timeline, lay: TimelineLayout) -> str:
    top, bottom = lay.lanes_top, lay.lanes_bottom
    height = bottom - top + AXIS_HEIGHT
    # The page shows the title and notes as HTML, so the SVG starts at the lanes.
    out = [f'<svg width="{lay.width}" height="{height}" viewBox="0 {top} {lay.width} {height}">']
    for band in timeline.bands:
        x0, x1 = lay.x(band.start) - 2, max(lay.x(band.end), lay.x(band.start)) + 2
        box = f'x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{bottom - top}"'
        out.append(f'<rect class="gap" {box}><title>{html.escape(band.title)}</title></rect>')
    ticks = lay.ticks()
    for t in ticks:
        x = lay.x(t)
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}"/>')
    for i, lane in enumerate(timeline.lanes):
        y = lay.lane_top(i)
        label = lane.label if len(lane.label) <= 26 else lane.label[:25] + "…"
        hover = html.escape(lane.title or lane.label)
        out.append(f'<g class="lane" data-lane="{html.escape(lane.key)}">')
        out.append(f'<text x="10" y="{y + 19}"><title>{hover}</title>{html.escape(label)}</text>')
        sep = y + LANE_HEIGHT - 0.5
        out.append(
            f'<line class="sep" x1="{lay.plot_left}" y1="{sep}" x2="{lay.plot_right}" y2="{sep}"/>'
        )
        for span in lane.spans:
            x0 = lay.x(span.start)
            w = max(lay.x(span.end) - x0, 2.0)
            h = LANE_HEIGHT - 2 * BAR_PAD
            box = f'x="{x0:.1f}" y="{y + BAR_PAD}" width="{w:.1f}" height="{h}"'
            tip = html.escape(span.title)
            out.append(f'<rect class="s {span.kind}" {box}><title>{tip}</title></rect>')
        for marker in sorted(lane.markers, key=lambda m: m.kind == "delivered"):
            out.append(_svg_marker(marker.kind, lay.x(marker.t), y, marker.title))
        out.append("</g>")
    axis = f'x1="{lay.plot_left}" y1="{bottom}" x2="{lay.plot_right}" y2="{bottom}"'
    out.append(f'<line class="axis" {axis}/>')
    for t in ticks:
        where = f'x="{lay.x(t):.1f}" y="{bottom + 18}" text-anchor="middle"'
        out.append(f'<text class="axis" {where}>{t:g}s</text>')
    out.append("</svg>")
    return "\n".join(out)


def render_timeline_html(events: Iterable[Any], out_path: str | Path, *, width: int = 1400) -> Path:
    """Write the timeline as one self-contained HTML page (inline SVG + CSS).

    Every span and marker has a hover title. Nothing is loaded from elsewhere:
    no scripts, fonts, stylesheets or images.

    Returns:
        The written path.
    """
    timeline = build_timeline(events)
    lay = layout_for(timeline, width=width)
    legend = []
    for kind, text, color in LEGEND:
        shape = "" if kind == "span" else "border-radius:5px;"
        swatch = f'<span class="sw" style="background:{_hex(color)};{shape}"></span>'
        legend.append(f"<span>{swatch}{html.escape(text)}</span>")
    title = html.escape(f"Session timeline {_fmt(timeline.t0)} – {_fmt(timeline.t1)}")
    page = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title>",
        f"<style>\n{_css()}\n</style></head><body>",
        f"<h3>{title}</h3>",
        *(f'<p class="note">{html.escape(n)}</p>' for n in timeline.notes),
        _svg(timeline, lay),
        f'<div class="legend">{"".join(legend)}</div>',
        "</body></html>",
    ]
    out = Path(out_path)
    out.write_text("\n".join(page) + "\n", encoding="utf-8")
    return out


def render_timeline(events: Iterable[Any], out_path: str | Path, *, width: int = 1400) -> Path:
    """Render to PNG or HTML, chosen by the file suffix (``.png``, ``.html``, ``.htm``).

    Raises:
        ValueError: For any other suffix.
    """
    suffix = Path(out_path).suffix.lower()
    if suffix == ".png":
        return render_timeline_png(events, out_path, width=width)
    if suffix in (".html", ".htm"):
        return render_timeline_html(events, out_path, width=width)
    raise ValueError(f"unsupported timeline format {suffix or '(none)'!r}; use .png or .html")
