"""``tandem timeline`` fails with one clear line, never a traceback (issue 13, defect 9's rest)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

from pipecat_tandem import cli

EVENTS = [
    {"t": 0.0, "kind": "user_started", "job_id": None},
    {"t": 1.0, "kind": "user_stopped", "job_id": None},
    {"t": 1.2, "kind": "bot_started", "job_id": None},
    {"t": 2.0, "kind": "bot_stopped", "job_id": None},
]


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "session.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return path


def _fails_with_one_line(argv, capsys, needle: str, code: int = 1) -> str:
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    return lines[0]


@pytest.mark.parametrize("suffix", [".png", ".html"])
def test_output_in_a_missing_folder(log, tmp_path, capsys, suffix):
    out = tmp_path / "nope" / f"t{suffix}"
    line = _fails_with_one_line(["timeline", str(log), "-o", str(out)], capsys, "cannot write")
    assert "no such directory" in line and not out.exists()


def test_output_under_a_file_or_onto_a_directory(log, tmp_path, capsys):
    _fails_with_one_line(
        ["timeline", str(log), "-o", str(log / "t.png")], capsys, "is not a directory"
    )
    folder = tmp_path / "x.png"
    folder.mkdir()
    _fails_with_one_line(["timeline", str(log), "-o", str(folder)], capsys, "it is a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_output_in_a_read_only_folder(log, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        _fails_with_one_line(
            ["timeline", str(log), "-o", str(ro / "t.png")], capsys, "is not writable"
        )
    finally:
        ro.chmod(0o700)


def test_a_write_that_fails_while_rendering(log, tmp_path, capsys, monkeypatch):
    from pipecat_tandem.observe import timeline

    def full(events, out_path, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(timeline, "render_timeline", full)
    line = _fails_with_one_line(
        ["timeline", str(log), "-o", str(tmp_path / "t.png")], capsys, "cannot write"
    )
    assert line.endswith("No space left on device")


def test_empty_and_garbage_logs(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _fails_with_one_line(
        ["timeline", str(empty), "-o", str(tmp_path / "t.png")], capsys, "holds no events"
    )
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(
        b'not json\n{"t":"abc","kind":5}\n[1,2]\n{"kind":"user_started"}\n'
        b'{"t":1e999,"kind":"x"}\n\xff\xfe\x00binary\n'
    )
    line = _fails_with_one_line(
        ["timeline", str(garbage), "-o", str(tmp_path / "t.png")], capsys, "holds no events"
    )
    assert "(6 malformed line(s) skipped)" in line


def test_the_real_command_prints_no_traceback(log, tmp_path):
    out = tmp_path / "missing-dir" / "t.png"
    proc = subprocess.run(
        [sys.executable, "-m", "pipecat_tandem", "timeline", str(log), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"tandem: cannot write {out}: no such directory" in proc.stderr


def test_a_good_log_still_renders(log, tmp_path, capsys):
    out = tmp_path / "t.png"
    assert cli.main(["timeline", str(log), "-o", str(out)]) == 0
    assert out.stat().st_size > 0
