"""Headless Chromium with a fake camera and microphone, in a loopback-only network.

The test re-executes itself inside a fresh network namespace that has only
``lo`` (``unshare -n``), so any request to the outside world fails: the page
must load with zero external requests, connect, and play the bot's audio.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipecat_tandem.transports.webrtc_server import TandemServer
from tests.support.fake_services import FakeSessionFactory
from tests.support.media import speech_pcm, write_wav, write_y4m

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/lib/chromium/chromium"
REPO = Path(__file__).resolve().parents[1]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def in_loopback_only_netns() -> bool:
    # /sys/class/net is not remounted by unshare; ask the kernel instead.
    return [name for _, name in socket.if_nameindex()] == ["lo"]


async def browser_scenario(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    wav = write_wav(tmp_path / "mic.wav", speech_pcm("Hello bot. Can you hear me?"), 16000)
    y4m = write_y4m(tmp_path / "cam.y4m", frames=30)
    factory = FakeSessionFactory(reply="Hello from the bot.")
    srv = TandemServer(factory=factory, port=0, record_dir=tmp_path / "rec")
    await srv.start()
    assert await srv.wait_warm()
    origin = f"http://127.0.0.1:{srv.port}"
    requests: list[str] = []
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=CHROMIUM,
                args=FLAGS
                + [
                    f"--use-file-for-fake-audio-capture={wav}",
                    f"--use-file-for-fake-video-capture={y4m}",
                ],
            )
            # The page CSP forbids eval, which playwright needs for its polling predicates.
            page = await browser.new_page(bypass_csp=True)
            page.on("request", lambda r: requests.append(r.url))
            await page.goto(origin + "/")
            await page.wait_for_function(
                "document.getElementById('health').textContent === 'models ready'"
            )
            await page.click("#connect")
            await page.wait_for_function("window.tandemState.connected === true", timeout=15000)
            # The bot's audio arrives and plays (energy > 0), and the live view fills in.
            await page.wait_for_function(
                """async () => {
                    const pc = window.tandemPeer();
                    if (!pc) return false;
                    const stats = await pc.getStats();
                    let energy = 0;
                    stats.forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'audio')
                        energy = s.totalAudioEnergy || 0; });
                    return energy > 0.01;
                }""",
                timeout=20000,
                polling=250,
            )
            await page.wait_for_function(
                "window.tandemState.messages.some(m => m.type === 'bot_text')", timeout=20000
            )
            transcript = await page.inner_text("#transcript")
            assert "Hello from the bot." in transcript
            outbound = await page.evaluate(
                """async () => { let n = 0; (await window.tandemPeer().getStats()).forEach(s => {
                    if (s.type === 'outbound-rtp') n += s.packetsSent || 0; }); return n; }"""
            )
            assert outbound > 0
            await page.click("#connect")  # disconnect
            await browser.close()
    finally:
        await srv.stop()
    external = [u for u in requests if not u.startswith(origin) and not u.startswith("data:")]
    assert not external, external
    assert any(u.endswith("/static/app.js") for u in requests)
    assert factory.finished, "the session was not torn down"


def test_chromium_page_offline(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: run scripts/install-system-deps.sh")
    pytest.importorskip("playwright")
    if in_loopback_only_netns():
        asyncio.run(browser_scenario(tmp_path))
        return
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root (unshare -n) to run Chromium in a loopback-only network namespace")
    test_id = f"{Path(__file__).relative_to(REPO)}::test_chromium_page_offline"
    cmd = (
        "ip link set lo up && exec "
        f"{sys.executable} -m pytest -q -x -p no:cacheprovider {test_id} "
        f"--basetemp={tmp_path / 'inner'}"
    )
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", cmd],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 0, output
    assert "1 passed" in result.stdout, output
