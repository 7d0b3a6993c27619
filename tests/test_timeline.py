import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pipecat_tandem.observe.timeline import (
    BACKGROUND_COLOR,
    BOT_SPEECH_COLOR,
    DELIVERED_COLOR,
    DELIVERY_MARKER_COLOR,
    GAP_BAND_COLOR,
    MAX_JOB_LANES,
    MAX_MARKERS_PER_LANE,
    READY_COLOR,
    RUNNING_COLOR,
    USER_SPEECH_COLOR,
    build_timeline,
    layout_for,
    load_events,
    render_timeline,
    render_timeline_html,
    render_timeline_png,
)

EVENTS = [
    {"t": 0.5, "kind": "user_started", "job_id": None},
    {"t": 2.0, "kind": "user_stopped", "job_id": None},
    {"t": 2.3, "kind": "transcript", "job_id": None, "role": "user", "text": "17% of 2340?"},
    {
        "t": 2.4,
        "kind": "delegated",
        "job_id": "job-1",
        "task": "17% of 2340",
        "policy": "when_idle",
    },
    {"t": 2.5, "kind": "job_state", "job_id": "job-1", "state": "running", "detail": ""},
    {"t": 2.6, "kind": "bot_started", "job_id": None},
    {"t": 3.0, "kind": "progress", "job_id": "job-1", "text": "calling calculator"},
    {"t": 3.2, "kind": "delegated", "job_id": "job-2", "task": "<script>alert(1)</script>"},
    {"t": 4.0, "kind": "bot_stopped", "job_id": None},
    {"t": 4.2, "kind": "cue", "job_id": None, "cue": "visual_change", "value": 0.8},
    {"t": 5.0, "kind": "user_started", "job_id": None},
    {"t": 5.5, "kind": "result_ready", "job_id": "job-1", "is_final": True, "stale": False},
    {"t": 7.0, "kind": "user_stopped", "job_id": None},
    {
        "t": 7.9,
        "kind": "delivered",
        "job_id": None,
        "job_ids": ["job-1"],
        "mode": "weave",
        "delivery": "delivered",
        "user_speaking": False,
        "bot_speaking": False,
    },
    {"t": 8.1, "kind": "bot_started", "job_id": None},
    {"t": 9.5, "kind": "bot_stopped", "job_id": None},
    {"t": 10.0, "kind": "failed", "job_id": "job-2", "error": "timeout"},
    {"t": 12.0, "kind": "cue", "job_id": None, "cue": "end", "value": 0},
]
USER, BOT, CUES, JOB1, JOB2 = range(5)


@pytest.fixture
def log_path(tmp_path):
    path = tmp_path / "session.jsonl"
    lines = [json.dumps(e) for e in EVENTS]
    lines[3:3] = ["not json", "", '{"t": "soon", "kind": "cue"}', "[1, 2]", '{"kind": "cue"}']
    path.write_text("\n".join(lines) + "\n")
    return path


def pixel(image, lay, t, lane):
    return image.getpixel((round(lay.x(t)), lay.lane_center(lane)))


def test_load_events_skips_and_counts_malformed_lines(log_path):
    events = load_events(log_path)
    assert len(events) == len(EVENTS)
    assert events.malformed == 4
    assert events.malformed_lines == [4, 6, 7, 8]
    assert "4 malformed event(s) skipped" in build_timeline(events).notes


def test_load_events_missing_file(tmp_path):
    with pytest.raises(OSError):
        load_events(tmp_path / "missing.jsonl")


def test_png_size_and_pixel_colours(tmp_path):
    out = render_timeline_png(EVENTS, tmp_path / "t.png", width=1400)
    lay = layout_for(build_timeline(EVENTS), width=1400)
    image = Image.open(out).convert("RGB")
    assert image.size == (1400, lay.height)
    assert [lane.key for lane in build_timeline(EVENTS).lanes] == [
        "user",
        "bot",
        "cues",
        "job:job-1",
        "job:job-2",
    ]
    assert pixel(image, lay, 1.25, USER) == USER_SPEECH_COLOR
    assert pixel(image, lay, 6.0, USER) == USER_SPEECH_COLOR
    assert pixel(image, lay, 3.5, USER) == BACKGROUND_COLOR  # between user spans, no gap
    assert pixel(image, lay, 3.3, BOT) == BOT_SPEECH_COLOR
    assert pixel(image, lay, 7.45, USER) == GAP_BAND_COLOR  # the gap the delivery used
    assert pixel(image, lay, 4.5, JOB1) == RUNNING_COLOR
    assert pixel(image, lay, 6.5, JOB1) == READY_COLOR
    assert pixel(image, lay, 7.9, JOB1) == DELIVERY_MARKER_COLOR
    assert pixel(image, lay, 8.8, JOB1) == DELIVERED_COLOR  # until the bot stops
    assert pixel(image, lay, 10.5, JOB1) == BACKGROUND_COLOR
    assert pixel(image, lay, 6.0, JOB2) == RUNNING_COLOR
    assert pixel(image, lay, 11.3, JOB2) == BACKGROUND_COLOR  # failed at 10 s


def test_width_changes_the_picture(tmp_path):
    out = render_timeline_png(EVENTS, tmp_path / "t.png", width=800)
    assert Image.open(out).size[0] == 800
    with pytest.raises(ValueError, match="width"):
        render_timeline_png(EVENTS, tmp_path / "t.png", width=10)


def test_html_is_self_contained_with_lanes_and_hover_titles(tmp_path):
    text = render_timeline_html(EVENTS, tmp_path / "t.html").read_text()
    for lane in ("user", "bot", "cues", "job:job-1", "job:job-2"):
        assert f'data-lane="{lane}"' in text
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "&lt;script&gt;" in text  # task text is escaped
    assert "<title>progress 3.00s: calling calculator</title>" in text
    assert "user speech 0.50s–2.00s: “17% of 2340?”" in text
    assert "#3478f6" in text  # USER_SPEECH_COLOR


def test_render_timeline_picks_the_format(tmp_path):
    png = render_timeline(EVENTS, tmp_path / "a.PNG")
    assert Image.open(png).format == "PNG"
    html_path = render_timeline(EVENTS, tmp_path / "a.htm")
    assert html_path.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError, match="use .png or .html"):
        render_timeline(EVENTS, tmp_path / "a.svg")
    with pytest.raises(ValueError, match="use .png or .html"):
        render_timeline(EVENTS, tmp_path / "noext")


def test_empty_log(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    events = load_events(tmp_path / "empty.jsonl")
    timeline = build_timeline(events)
    assert timeline.notes == ["empty event log: nothing to show"]
    assert [lane.key for lane in timeline.lanes] == ["user", "bot", "cues"]
    out = render_timeline_png(events, tmp_path / "e.png")
    assert Image.open(out).size == (1400, layout_for(timeline).height)
    assert "nothing to show" in render_timeline_html([], tmp_path / "e.html").read_text()


def test_junk_items_are_skipped_and_counted():
    timeline = build_timeline(
        [
            None,
            "x",
            3,
            {"t": float("nan"), "kind": "cue"},
            {"t": True, "kind": "cue"},
            {"t": 1e300, "kind": "cue"},
            {"t": 1.0, "kind": 5},
            *EVENTS,
        ]
    )
    assert "7 malformed event(s) skipped" in timeline.notes
    assert len(timeline.lanes) == 5


def test_unmatched_start_and_stop():
    timeline = build_timeline(
        [
            {"t": 0.0, "kind": "cue", "cue": "start", "value": 0},
            {"t": 1.0, "kind": "user_stopped"},  # was speaking when the log began
            {"t": 2.0, "kind": "bot_started"},  # never stops
            {"t": 3.0, "kind": "bot_started"},  # duplicate start is ignored
            {"t": 5.0, "kind": "delegated", "job_id": "j", "task": "t"},  # never finishes
            {"t": 6.0, "kind": "cue", "cue": "x", "value": 1},
        ]
    )
    user, bot, _, job = timeline.lanes
    assert [(s.start, s.end) for s in user.spans] == [(0.0, 1.0)]
    assert [(s.start, s.end) for s in bot.spans] == [(2.0, 6.0)]
    assert [(s.kind, s.start, s.end) for s in job.spans] == [("running", 5.0, 6.0)]
    assert "start not in log" in user.spans[0].title


def test_events_out_of_order_give_the_same_timeline():
    shuffled = EVENTS[:]
    random.Random(3).shuffle(shuffled)
    assert build_timeline(shuffled) == build_timeline(EVENTS)


def test_interruption_merge_and_stale():
    timeline = build_timeline(
        [
            {"t": 0.0, "kind": "delegated", "job_id": "a", "task": "A"},
            {"t": 0.1, "kind": "delegated", "job_id": "b", "task": "B"},
            {"t": 0.2, "kind": "delegated", "job_id": "c", "task": "C"},
            {"t": 1.0, "kind": "result_ready", "job_id": "a", "is_final": False},
            {"t": 2.0, "kind": "result_ready", "job_id": "a", "is_final": True},
            {"t": 2.1, "kind": "result_ready", "job_id": "b", "is_final": True},
            {"t": 3.0, "kind": "delivered", "job_ids": ["a", "b"], "mode": "verbatim"},
            {"t": 3.0, "kind": "merged", "job_id": "b", "into": "a"},
            {"t": 3.1, "kind": "bot_started"},
            {"t": 3.5, "kind": "delivery_interrupted", "job_ids": ["a", "b"]},
            {"t": 3.6, "kind": "bot_stopped"},
            {"t": 4.0, "kind": "dropped_stale", "job_id": "c"},
            {
                "t": 5.0,
                "kind": "delivered",
                "job_ids": ["a"],
                "mode": "weave",
                "delivery": "redelivered",
            },
            {"t": 6.0, "kind": "job_state", "job_id": "a", "state": "done"},
        ]
    )
    lanes = {lane.key: lane for lane in timeline.lanes}
    a = lanes["job:a"]
    assert [(s.kind, s.start, s.end) for s in a.spans] == [
        ("running", 0.0, 2.0),
        ("ready", 2.0, 3.0),
        ("delivered", 3.0, 3.5),
        ("ready", 3.5, 5.0),
        ("delivered", 5.0, 6.0),
    ]
    assert [m.kind for m in a.markers] == [
        "result_ready",
        "result_ready",
        "delivered",
        "delivery_interrupted",
        "delivered",
    ]
    assert "merged" in [m.kind for m in lanes["job:b"].markers]
    c = lanes["job:c"]
    assert [(s.kind, s.end) for s in c.spans] == [("running", 4.0)]
    assert [m.kind for m in c.markers] == ["dropped_stale"]
    assert len(timeline.bands) == 2


def test_delivery_while_someone_speaks_gets_a_narrow_band():
    timeline = build_timeline(
        [
            {"t": 0.0, "kind": "delegated", "job_id": "a", "task": "A"},
            {"t": 1.0, "kind": "bot_started"},
            {
                "t": 2.0,
                "kind": "delivered",
                "job_ids": ["a"],
                "mode": "verbatim",
                "bot_speaking": True,
            },
            {"t": 3.0, "kind": "bot_stopped"},
        ]
    )
    (band,) = timeline.bands
    assert (band.start, band.end) == (2.0, 2.0)


def test_huge_log_caps_lanes_and_markers(tmp_path):
    events = [
        {"t": float(i), "kind": "delegated", "job_id": f"job-{i}", "task": "x"}
        for i in range(MAX_JOB_LANES + 25)
    ]
    events += [
        {"t": i / 100, "kind": "cue", "cue": "motion", "value": 1}
        for i in range(MAX_MARKERS_PER_LANE + 10)
    ]
    timeline = build_timeline(events)
    assert len(timeline.lanes) == 3 + MAX_JOB_LANES
    assert "25 more job(s) not shown (at most 40 job lanes)" in timeline.notes
    assert "10 marker(s) not shown (at most 2000 per lane)" in timeline.notes
    out = render_timeline_png(events, tmp_path / "big.png")
    assert Image.open(out).size[1] == layout_for(timeline).height


def test_axis_ticks():
    lay = layout_for(build_timeline(EVENTS))
    ticks = lay.ticks()
    assert ticks[0] >= 0.5 and ticks[-1] <= 12.0
    steps = {round(b - a, 6) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1 and steps.pop() in (0.5, 1, 2)


event_strategy = st.fixed_dictionaries(
    {
        "t": st.one_of(st.floats(-10, 1e4), st.just("x"), st.none()),
        "kind": st.sampled_from(
            [
                "user_started",
                "user_stopped",
                "bot_started",
                "bot_stopped",
                "delegated",
                "job_state",
                "progress",
                "result_ready",
                "delivered",
                "merged",
                "dropped_stale",
                "delivery_interrupted",
                "failed",
                "cue",
                "error",
                "transcript",
                "mystery",
            ]
        ),
        "job_id": st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
    },
    optional={
        "job_ids": st.lists(st.sampled_from(["a", "b", "c", None]), max_size=3),
        "is_final": st.booleans(),
        "state": st.sampled_from(["queued", "running", "done", "failed", "cancelled", "stale"]),
        "mode": st.sampled_from(["weave", "verbatim", "silent"]),
        "text": st.text(max_size=20),
    },
)


@settings(max_examples=150)
@given(st.lists(event_strategy, max_size=40))
def test_any_event_soup_builds_a_consistent_timeline(events):
    timeline = build_timeline(events)
    assert timeline.t0 < timeline.t1
    for lane in timeline.lanes:
        for span in lane.spans:
            assert timeline.t0 <= span.start <= span.end <= timeline.t1
    lay = layout_for(timeline)
    assert lay.height > 0 and lay.ticks()


def _naive_titles_and_bands(events):
    """The quadratic reference the one-pass timeline must agree with."""
    lane_spans, bands = {}, []
    for key in ("user", "bot"):
        spans, open_at = [], None
        for e in events:
            if e["kind"] == f"{key}_started" and open_at is None:
                open_at = e["t"]
            elif e["kind"] == f"{key}_stopped":
                spans.append([open_at if open_at is not None else events[0]["t"], e["t"], []])
                open_at = None
        if open_at is not None:
            spans.append([open_at, events[-1]["t"], []])
        role = "user" if key == "user" else "assistant"
        for e in events:
            if e["kind"] == "transcript" and e.get("role") == role:
                for span in spans:
                    if span[0] <= e["t"] <= span[1] + 2.0:
                        span[2].append(e["text"])
                        break
        lane_spans[key] = [s[2] for s in spans]
    for e in events:
        if e["kind"] != "delivered":
            continue
        speaking, last_stop = {"user": False, "bot": False}, None
        for other in events:
            if other["t"] > e["t"]:
                break
            who, _, what = other["kind"].partition("_")
            if who in speaking and what in ("started", "stopped"):
                speaking[who] = what == "started"
                if what == "stopped":
                    last_stop = other["t"] if last_stop is None else max(last_stop, other["t"])
        quiet = not (speaking["user"] or speaking["bot"])
        bands.append(last_stop if quiet and last_stop is not None else e["t"])
    return lane_spans, bands


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 40),
            st.sampled_from(
                [
                    "user_started",
                    "user_stopped",
                    "bot_started",
                    "bot_stopped",
                    "delivered",
                    "tu",
                    "ta",
                ]
            ),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_one_pass_timeline_agrees_with_the_quadratic_reference(raw):
    # Long logs are laid out in one pass (bisect, running speaking state); on any
    # small log the result must be what the obvious quadratic scan gives.
    events = []
    for n, (t, kind) in enumerate(sorted(raw, key=lambda r: r[0])):
        e = {"t": t / 4, "kind": kind, "job_id": None}
        if kind in ("tu", "ta"):
            e.update(kind="transcript", role="user" if kind == "tu" else "assistant", text=f"w{n}")
        events.append(e)
    timeline = build_timeline(events)
    lanes = {lane.key: lane for lane in timeline.lanes}
    want_titles, want_bands = _naive_titles_and_bands(events)
    for key, titles in want_titles.items():
        got = [s.title for s in lanes[key].spans] if key in lanes else []
        assert len(got) == len(titles)
        for title, words in zip(got, titles, strict=True):
            assert title.count("“") == len(words)
            assert all(f"“{w}”" in title for w in words)
    assert [b.start for b in timeline.bands] == want_bands


class _CountingDraw:
    """Measures text as 7 px a character and counts the measurements."""

    def __init__(self) -> None:
        self.calls = 0

    def textlength(self, text: str, font: object = None) -> float:
        self.calls += 1
        return 7.0 * len(text)


def test_a_long_label_is_fitted_in_a_few_measurements():
    # Regression (issue 13, defect 9): trimming a character at a time measured a
    # label once per character; a 400k-event log took 36 s to draw, now ~3 s.
    from pipecat_tandem.observe.timeline import _fit

    draw = _CountingDraw()
    fitted = _fit(draw, "a" * 20_000, None, 150)  # type: ignore[arg-type]
    assert fitted == "a" * 18 + "..."  # the longest prefix that fits with its dots
    assert draw.calls <= 20
    assert _fit(draw, "short", None, 150) == "short"  # type: ignore[arg-type]


def test_a_delegation_repeated_in_the_log_does_not_grow_the_label():
    events = [
        {"t": float(i), "kind": "delegated", "job_id": "job-1", "task": "find the wifi password"}
        for i in range(500)
    ]
    [job] = [lane for lane in build_timeline(events).lanes if lane.key == "job:job-1"]
    assert job.label == "job-1: find the wifi password"
