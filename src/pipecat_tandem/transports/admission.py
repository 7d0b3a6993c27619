#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Per-client admission of offers, so no caller can hold the service hostage (pure, no I/O).

The embedded models serve one call at a time, and a session whose client has
not connected yields them to the next caller only after a grace period
(``CONNECT_GRACE_S``). A client that re-posts an offer it never means to
connect, every few seconds, would therefore keep every other caller out; one
that posts offers as fast as it can would keep the CPU busy building peer
connections and pipelines. :class:`OfferAdmission` bounds both, per client,
on a sliding window of the server clock:

* at most ``max_offers`` offers per ``window_s`` (a person makes a few calls a
  minute at most);
* at most ``max_unconnected`` sessions per ``window_s`` that ended without
  their client ever connecting (a real client connects within a second or
  two of its answer).

A refused offer is not counted, so ``Retry-After`` is exact: the moment the
oldest counted offer (or never-connected session) leaves the window. Clients
are keyed by address, IPv6 by its /64 network (one host usually holds a
whole /64). Behind a reverse proxy every caller shares the proxy's address;
raise the limits there (or pass ``offer_limits=None`` to ``TandemServer``).
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque
from dataclasses import dataclass, field

from pipecat_tandem.clock import MonotonicClock, SessionClock


@dataclass(frozen=True)
class OfferLimits:
    """How many offers one client may post.

    Parameters:
        max_offers: Offers accepted per client within ``window_s``.
        window_s: The sliding window, in seconds.
        max_unconnected: Sessions per client within ``window_s`` that may end
            without their client ever connecting.
        max_clients: Clients remembered at once (memory bound; the least
            recently seen are forgotten first).
    """

    max_offers: int = 30
    window_s: float = 60.0
    max_unconnected: int = 3
    max_clients: int = 4096

    def __post_init__(self) -> None:
        """Refuse limits that would admit nothing or never forget.

        Raises:
            ValueError: If a count is below 1 or the window is not a positive,
                finite number of seconds.
        """
        for name in ("max_offers", "max_unconnected", "max_clients"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        window = self.window_s
        if isinstance(window, bool) or not isinstance(window, int | float):
            raise ValueError(f"window_s must be a number of seconds, got {window!r}")
        if not math.isfinite(window) or window <= 0:
            raise ValueError(f"window_s must be positive and finite, got {window!r}")


@dataclass(frozen=True)
class Admission:
    """The answer to one offer.

    Parameters:
        allowed: Whether the offer may go on.
        retry_after_s: When refused, seconds until the same client would be let in.
        reason: When refused, why (for the client).
    """

    allowed: bool
    retry_after_s: float = 0.0
    reason: str = ""

    @property
    def retry_after_header(self) -> str:
        """``retry_after_s`` as an HTTP ``Retry-After`` value (whole seconds, at least 1)."""
        return str(max(1, math.ceil(self.retry_after_s)))


def client_key(address: str | None) -> str:
    """The key a client's offers are counted under.

    Args:
        address: The peer address of the HTTP request (``request.remote``).

    Returns:
        An IPv4 address as is (also when written IPv4-mapped in IPv6), an
        IPv6 address as its /64 network, anything else (a Unix socket, no
        address) as the raw text or ``"unknown"``.
    """
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class _Client:
    offers: deque[float] = field(default_factory=deque)
    unconnected: deque[float] = field(default_factory=deque)

    def prune(self, before: float) -> None:
        for times in (self.offers, self.unconnected):
            while times and times[0] <= before:
                times.popleft()

    def empty(self) -> bool:
        return not self.offers and not self.unconnected


class OfferAdmission:
    """Counts each client's offers and never-connected sessions; refuses past the limits.

    Args:
        limits: The limits (defaults: 30 offers and 3 never-connected
            sessions a minute per client).
        clock: The time base (the server's monotonic clock by default; tests
            pass a ``ManualClock``).

    Example::

        admission = OfferAdmission(OfferLimits(max_offers=2, window_s=10), clock=clock)
        admission.admit("10.0.0.7").allowed  # True
        admission.admit("10.0.0.7").allowed  # True
        admission.admit("10.0.0.7")  # Admission(allowed=False, retry_after_s=10.0, ...)
    """

    def __init__(self, limits: OfferLimits | None = None, *, clock: SessionClock | None = None):
        self.limits = limits or OfferLimits()
        self._clock = clock or MonotonicClock()
        # Insertion order doubles as recency: a client is moved to the end when seen.
        self._clients: dict[str, _Client] = {}

    @property
    def tracked_clients(self) -> int:
        """How many clients are remembered now."""
        return len(self._clients)

    def _client(self, key: str, now: float) -> _Client:
        client = self._clients.pop(key, None) or _Client()
        client.prune(now - self.limits.window_s)
        self._clients[key] = client
        if len(self._clients) > self.limits.max_clients:
            self._forget_some(now, keep=key)
        return client

    def _forget_some(self, now: float, *, keep: str) -> None:
        before = now - self.limits.window_s
        for key in list(self._clients):
            c = self._clients[key]
            c.prune(before)
            if c.empty() and key != keep:
                del self._clients[key]
        # Still too many active clients: forget the least recently seen (``keep``
        # was just moved to the end, so it is the last to go).
        while len(self._clients) > self.limits.max_clients:
            del self._clients[next(iter(self._clients))]

    def admit(self, client: str) -> Admission:
        """Decide on one offer from ``client``; an admitted offer is counted.

        Args:
            client: The client's key (see :func:`client_key`).

        Returns:
            Whether the offer may go on and, if not, when to come back.
        """
        now = self._clock.now()
        record = self._client(client, now)
        window = self.limits.window_s
        if len(record.unconnected) >= self.limits.max_unconnected:
            return Admission(
                allowed=False,
                retry_after_s=record.unconnected[0] + window - now,
                reason=(
                    f"{len(record.unconnected)} offers from this client never connected in the "
                    f"last {window:g} s; connect with the answer you were given, or wait"
                ),
            )
        if len(record.offers) >= self.limits.max_offers:
            return Admission(
                allowed=False,
                retry_after_s=record.offers[0] + window - now,
                reason=(
                    f"too many offers from this client ({len(record.offers)} in the last "
                    f"{window:g} s, at most {self.limits.max_offers})"
                ),
            )
        record.offers.append(now)
        return Admission(allowed=True)

    def never_connected(self, client: str) -> None:
        """Count a session of ``client`` that ended before its client connected.

        Args:
            client: The client's key (see :func:`client_key`).
        """
        now = self._clock.now()
        self._client(client, now).unconnected.append(now)
