#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Put the tandem agent into a LiveKit room as one participant.

    LIVEKIT_URL=wss://my.livekit LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... \\
        python examples/livekit_room.py --room standup

The bot mints itself a short-lived token that admits it to that room only, hears
and sees the other participants and sends them the live job view as data
messages. It leaves when the last participant does.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from pipecat_tandem.transports.livekit_room import LiveKitRoomConfig, run_livekit_session
from pipecat_tandem.transports.tandem_session import TandemSessionFactory


def config_from_args(argv: list[str] | None = None, env=os.environ) -> LiveKitRoomConfig:
    """Room and credentials from flags and ``LIVEKIT_*`` variables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--room", required=True)
    parser.add_argument("--token", default=None)
    args = parser.parse_args(argv)
    try:
        return LiveKitRoomConfig.from_sources(
            url=args.url, room=args.room, token=args.token, env=env
        )
    except ValueError as e:
        parser.error(str(e))
        raise


async def main(argv: list[str] | None = None, factory=None) -> None:
    config = config_from_args(argv)
    await run_livekit_session(config, factory=factory or TandemSessionFactory(), progress=print)


if __name__ == "__main__":
    asyncio.run(main())
