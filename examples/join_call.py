#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Join a WebRTC video call with the tandem agent (what ``tandem run`` does).

    python examples/join_call.py            # embedded offline models
    python examples/join_call.py --interaction openai:gpt-4.1-mini --background local

Then open http://127.0.0.1:7860/, allow camera and microphone, and talk. Ask for
something slow ("plan a three-day trip to Lisbon") and watch the job on the right
while the conversation goes on; its result is woven in at the next natural pause.
"""

from __future__ import annotations

import argparse
import asyncio

from pipecat_tandem.transports.tandem_session import TandemSessionFactory
from pipecat_tandem.transports.webrtc_server import TandemServer


async def serve(factory, *, host: str = "127.0.0.1", port: int = 7860) -> TandemServer:
    """Start the server (returns once listening; models warm in the background)."""
    server = TandemServer(factory=factory, host=host, port=port, max_sessions=1)
    await server.start()
    return server


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interaction", default=None)
    parser.add_argument("--background", default=None)
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)
    factory = TandemSessionFactory(interaction=args.interaction, background=args.background)
    server = await serve(factory, port=args.port)
    print(f"open http://127.0.0.1:{server.port}/ (Ctrl-C to stop)")
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
