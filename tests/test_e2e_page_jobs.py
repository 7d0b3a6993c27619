"""The page's jobs panel is an RTVI client: drawn from tandem-job events, cancelled by a click.

Headless Chromium with a fake microphone, in a loopback-only network namespace
(as ``test_e2e_browser.py``), against ``tandem run``'s server and its real
session factory on scripted models: the spoken turn starts a report job that
never finishes; the page shows it running with a Cancel button; the click
sends ``tandem-cancel-job`` over the data channel, the server answers, and
the card turns cancelled.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipecat_tandem.transports.tandem_session import TandemSessionFactory
from pipecat_tandem.transports.webrtc_server import TandemServer
from tests.support import bot_services
from tests.support.media import speech_pcm, write_wav
from tests.test_e2e_browser import CHROMIUM, FLAGS, REPO, in_loopback_only_netns

pytestmark = pytest.mark.e2e


async def page_scenario(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    wav = write_wav(tmp_path / "mic.wav", speech_pcm("Please write me a report."), 16000)
    factory = TandemSessionFactory(perception=False, build_services=bot_services.build_reporter)
    srv = TandemServer(factory=factory, port=0)
    await srv.start()
    assert await srv.wait_warm()
    started = time.monotonic()
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=CHROMIUM, args=FLAGS + [f"--use-file-for-fake-audio-capture={wav}"]
            )
            page = await browser.new_page(bypass_csp=True)
            await page.goto(f"http://127.0.0.1:{srv.port}/")
            await page.wait_for_function(
                "document.getElementById('health').textContent === 'models ready'"
            )
            await page.click("#connect")
            print(f"page ready {time.monotonic() - started:.1f}s")
            card = "#jobs li.job .badge.running"
            await page.wait_for_selector(card, timeout=20000)
            print(f"job running on the page {time.monotonic() - started:.1f}s")
            events = await page.evaluate("window.tandemState.jobEvents.map(e => e.event)")
            assert events[:2] == ["delegated", "running"], events
            assert "report" in await page.inner_text("#jobs li.job .task")
            await page.click("#jobs li.job button.cancel")
            await page.wait_for_selector("#jobs li.job .badge.cancelled", timeout=10000)
            await page.wait_for_function(
                "Object.values(window.tandemState.replies).every(r => r.type)", timeout=5000
            )
            replies = await page.evaluate("Object.values(window.tandemState.replies)")
            assert [r["type"] for r in replies] == ["server-response"], replies
            assert await page.is_hidden("#jobs li.job button.cancel")
            assert "cancelled on the page" in await page.inner_text("#jobs li.job .notes")
            await page.click("#connect")
            await browser.close()
    finally:
        await srv.stop()


def test_page_jobs_panel_and_cancel_over_rtvi(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: run scripts/install-system-deps.sh")
    pytest.importorskip("playwright")
    if in_loopback_only_netns():
        asyncio.run(page_scenario(tmp_path))
        return
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root (unshare -n) to run Chromium in a loopback-only network namespace")
    test_id = f"{Path(__file__).relative_to(REPO)}::test_page_jobs_panel_and_cancel_over_rtvi"
    cmd = (
        "ip link set lo up && exec "
        f"{sys.executable} -m pytest -q -x -p no:cacheprovider {test_id} "
        f"--basetemp={tmp_path / 'inner'}"
    )
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", cmd], cwd=REPO, capture_output=True, text=True, timeout=240
    )
    output = result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 0, output
    assert "1 passed" in result.stdout, output
