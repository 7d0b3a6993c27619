#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""ICE configuration: no traffic leaves the machine unless the operator says so.

By default the server offers host candidates only and contacts no STUN/TURN
server (``ice_servers=[]``; aiortc would otherwise fall back to Google STUN).
When the server is bound to loopback, the host candidates themselves are
restricted to ``127.0.0.1``: aioice never offers loopback addresses on its own,
so without this a loopback-only network namespace yields no candidate at all,
and outside one the bot would advertise the machine's LAN address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence

from pipecat.transports.smallwebrtc.connection import IceServer

_VALID_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}

_original_get_host_addresses: Callable[[bool, bool], list[str]] | None = None


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a bind address or name) only reaches this machine.

    Args:
        host: An IP address or host name as given to ``--host``.

    Returns:
        True for ``127.0.0.0/8``, ``::1`` and the usual localhost names.
    """
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_ice_servers(urls: Iterable[str]) -> list[IceServer]:
    """Turn ``--ice-server`` values into pipecat ``IceServer`` objects.

    A value is ``URL`` or ``URL|USERNAME|CREDENTIAL`` (for TURN).

    Args:
        urls: The raw flag values.

    Returns:
        One ``IceServer`` per value, in order.

    Raises:
        ValueError: If a value is empty, has an unknown scheme or a malformed
            credential part.
    """
    servers: list[IceServer] = []
    for raw in urls:
        value = raw.strip()
        if not value:
            raise ValueError("empty ICE server URL")
        parts = value.split("|")
        if len(parts) not in (1, 3):
            raise ValueError(f"ICE server {value!r}: expected URL or URL|USERNAME|CREDENTIAL")
        url = parts[0]
        if not url.lower().startswith(_VALID_SCHEMES):
            raise ValueError(
                f"ICE server {url!r}: URL must start with one of {', '.join(_VALID_SCHEMES)}"
            )
        if len(parts) == 3:
            servers.append(IceServer(urls=url, username=parts[1], credential=parts[2]))
        else:
            servers.append(IceServer(urls=url))
    return servers


def restrict_host_candidates(addresses: list[str] | None) -> None:
    """Make aioice offer exactly ``addresses`` as host candidates (process-wide).

    aioice gathers host candidates through ``aioice.ice.get_host_addresses``; it
    is a module-level function looked up at gather time, so replacing it before
    a peer connection gathers is enough. Pass ``None`` to restore the original.

    Args:
        addresses: IP addresses to offer (e.g. ``["127.0.0.1"]``), or ``None``.

    Raises:
        ValueError: If an address is not a valid IP address or the list is empty.
    """
    import aioice.ice

    global _original_get_host_addresses
    if _original_get_host_addresses is None:
        _original_get_host_addresses = aioice.ice.get_host_addresses
    if addresses is None:
        aioice.ice.get_host_addresses = _original_get_host_addresses  # type: ignore[assignment]
        return
    if not addresses:
        raise ValueError("at least one host candidate address is required")
    parsed = [ipaddress.ip_address(a) for a in addresses]
    v4 = [str(a) for a in parsed if a.version == 4]
    v6 = [str(a) for a in parsed if a.version == 6]

    def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return (v4 if use_ipv4 else []) + (v6 if use_ipv6 else [])

    aioice.ice.get_host_addresses = _host_addresses


def candidate_target_problem(
    sdp_mid: str | None, sdp_mline_index: int | None, mids: Sequence[str | None]
) -> str | None:
    """What is wrong with where a trickled candidate says it belongs, if anything.

    Args:
        sdp_mid: The candidate's ``sdpMid`` (or ``None``).
        sdp_mline_index: The candidate's ``sdpMLineIndex`` (or ``None``).
        mids: The ``a=mid`` of each media section of the remote offer, in order.

    Returns:
        ``None`` if the candidate names a media section of the offer (by mid,
        index or both, consistently), else a message saying what does not match.
    """
    known = ", ".join(repr(m) for m in mids if m is not None) or "none"
    if sdp_mid is None and sdp_mline_index is None:
        return "a candidate needs 'sdp_mid' or 'sdp_mline_index'"
    if sdp_mline_index is not None and not 0 <= sdp_mline_index < len(mids):
        return (
            f"sdp_mline_index {sdp_mline_index} is out of range "
            f"(the offer has {len(mids)} media section(s))"
        )
    if sdp_mid is not None:
        if sdp_mid not in mids:
            return f"sdp_mid {sdp_mid!r} is not a media section of the offer (mids: {known})"
        if sdp_mline_index is not None and mids[sdp_mline_index] != sdp_mid:
            return (
                f"sdp_mid {sdp_mid!r} and sdp_mline_index {sdp_mline_index} disagree "
                f"(media section {sdp_mline_index} has mid {mids[sdp_mline_index]!r})"
            )
    return None


def media_mids(sdp: str) -> list[str | None]:
    """The ``a=mid`` of each media section of ``sdp``, in order (``None`` if absent)."""
    mids: list[str | None] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            mids.append(None)
        elif line.startswith("a=mid:") and mids and mids[-1] is None:
            mids[-1] = line[len("a=mid:") :].strip()
    return mids
