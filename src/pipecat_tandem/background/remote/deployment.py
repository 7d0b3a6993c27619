#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Where a deployment's remote jobs live in Redis: URL, channel, stream, group. No I/O.

Every name is derived from one deployment name, so two deployments (or two
tests) on one Redis never see each other's jobs or bus messages: pipecat's bus
delivers every message on a channel to every process on it, and its
deserializer imports the types a message names, so a channel must be shared
only by trusted processes of one deployment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse

#: URL schemes ``redis.asyncio.Redis.from_url`` accepts.
REDIS_SCHEMES = ("redis", "rediss", "unix")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_redis_url(url: object) -> str:
    """Validate a Redis URL without connecting.

    Args:
        url: ``redis://[:password@]host[:port][/db]``, ``rediss://...`` or
            ``unix:///path/to/socket``.

    Returns:
        The URL, stripped.

    Raises:
        ValueError: Not a Redis URL (one sentence saying what is expected).
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("empty Redis URL; expected redis://HOST[:PORT][/DB]")
    text = url.strip()
    parsed = urlparse(text)
    if parsed.scheme not in REDIS_SCHEMES:
        raise ValueError(
            f"{text!r} is not a Redis URL; expected redis://HOST[:PORT][/DB] "
            "(or rediss://, unix:///PATH)"
        )
    if parsed.scheme == "unix":
        if not parsed.path:
            raise ValueError(f"{text!r}: a unix:// URL needs a socket path")
        return text
    if not parsed.hostname:
        raise ValueError(f"{text!r}: no host; expected redis://HOST[:PORT][/DB]")
    try:
        port = parsed.port
    except ValueError:
        raise ValueError(f"{text!r}: the port is not a number in 0..65535") from None
    if port == 0:
        raise ValueError(f"{text!r}: port 0 is not a Redis server's port")
    db = parsed.path.strip("/")
    if db and not db.isdigit():
        raise ValueError(f"{text!r}: the database must be a number (redis://HOST:PORT/0)")
    return text


@dataclass(frozen=True)
class RedisDeployment:
    """One deployment's Redis names.

    Parameters:
        url: The Redis server (see :func:`check_redis_url`).
        name: The deployment (letters, digits, ``_.-``; at most 64 characters).
    """

    url: str
    name: str = "tandem"

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", check_redis_url(self.url))
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"bad deployment name {self.name!r}: use 1-64 letters, digits, '_', '.' or '-'"
            )

    @property
    def channel(self) -> str:
        """The pipecat bus channel: progress, results, cancels and follow-ups."""
        return f"tandem:{self.name}:bus"

    @property
    def stream(self) -> str:
        """The job queue (a Redis stream)."""
        return f"tandem:{self.name}:jobs"

    @property
    def group(self) -> str:
        """The workers' consumer group on :attr:`stream`."""
        return "workers"

    def cancel_key(self, wire_id: str) -> str:
        """Key marking a job as cancelled (read by a worker before it starts the job)."""
        return f"tandem:{self.name}:cancelled:{wire_id}"

    @property
    def safe_url(self) -> str:
        """The URL with any password replaced by ``***`` (for logs and errors)."""
        parsed = urlparse(self.url)
        if parsed.password is None:
            return self.url
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)
        return parsed._replace(netloc=netloc).geturl()
