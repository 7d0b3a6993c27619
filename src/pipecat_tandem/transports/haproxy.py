#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The haproxy configuration in front of ``tandem run --workers N``. Pure.

Why haproxy (Debian's ``haproxy`` package) and not a proxy of our own, nor
``SO_REUSEPORT``: a trickled ICE candidate (``PATCH /api/offer``) and a
renegotiation must reach the one process holding the call, and the only thing
that names the call is the ``pc_id`` *in the JSON body*. The kernel's
``SO_REUSEPORT`` spreads connections blindly; haproxy 2.6 can buffer the body,
read ``$.pc_id`` with ``json_query`` and pick the backend from it, retry a new
call on another worker when one answers 503, and health-check each worker,
all of it configuration. Only signalling goes through it: media flows
directly between the caller and the worker's own UDP ports.

Routing:

* ``/healthz``, ``/metrics`` → the parent (sums and merges the workers);
* a body whose ``pc_id`` starts with ``w<i>.`` → worker ``i`` (the workers tag
  their ``pc_id`` values so; see ``webrtc_server._TaggedConnection``);
* any other ``POST /api/offer`` (a new call) → the workers that pass
  ``GET /healthz?call`` (can take a call now), round robin, retried on the
  next worker if one answers 503;
* the page and its static files → any live worker.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

#: What to run when haproxy is missing.
HAPROXY_INSTALL = "apt-get install haproxy (or scripts/install-system-deps.sh)"


def find_haproxy() -> str | None:
    """The haproxy binary (``$PATH``, then Debian's ``/usr/sbin``), or ``None``."""
    found = shutil.which("haproxy")
    if found:
        return found
    debian = Path("/usr/sbin/haproxy")
    return str(debian) if debian.is_file() else None


@dataclass(frozen=True)
class ProxyPlan:
    """Where haproxy listens and where the workers and the parent are.

    Args:
        host: Public bind address.
        port: Public TCP port.
        worker_sockets: One Unix socket per worker, index = worker number.
        parent_socket: The parent's Unix socket (``/healthz``, ``/metrics``).
        stats_socket: haproxy's runtime API socket (the parent drains and
            weighs workers through it).
        check_interval_ms: How often each worker's health is checked.
    """

    host: str
    port: int
    worker_sockets: tuple[Path, ...]
    parent_socket: Path
    stats_socket: Path
    check_interval_ms: int = 500

    def __post_init__(self) -> None:
        if not self.worker_sockets:
            raise ValueError("at least one worker socket is needed")

    def config(self) -> str:
        """The haproxy configuration text."""
        n = len(self.worker_sockets)
        bind_host = f"[{self.host}]" if ":" in self.host else self.host
        inter = self.check_interval_ms
        lines = [
            "global",
            "    maxconn 4096",
            f"    stats socket {self.stats_socket} mode 600 level admin",
            # Offers and PATCHes are a few KB (the server refuses > 64 KB itself).
            "    tune.bufsize 131072",
            "",
            "defaults",
            "    mode http",
            "    timeout connect 2s",
            "    timeout client 60s",
            "    timeout server 60s",
            "    timeout http-request 10s",
            "    timeout http-keep-alive 5s",
            "    option http-buffer-request",
            "",
            "frontend tandem",
            f"    bind {bind_host}:{self.port}",
            # The parent sees the caller's address in X-Forwarded-For; the
            # workers' per-client offer limits key on the socket peer, which
            # is haproxy, so they are off (see docs/deploy.md).
            "    option forwardfor",
            "    acl signalling path /api/offer",
            "    http-request set-var(txn.pc_id) req.body,json_query('$.pc_id') if signalling",
            "    use_backend parent if { path /healthz } || { path /metrics }",
        ]
        for i in range(n):
            lines.append(f"    use_backend w{i} if {{ var(txn.pc_id) -m beg w{i}. }}")
        lines += [
            "    use_backend calls if signalling",
            "    default_backend pages",
            "",
            "backend calls",
            "    balance roundrobin",
            f"    retries {max(1, n - 1)}",
            "    retry-on 503 conn-failure empty-response",
            "    option redispatch 1",
            "    option httpchk GET /healthz?call",
            "    http-check expect status 200",
            "    http-error status 503 content-type application/json "
            'string "{\\"error\\": \\"every worker is at its call limit or down; '
            'try again later\\"}" hdr Retry-After 5',
        ]
        for i, sock in enumerate(self.worker_sockets):
            lines.append(f"    server w{i} {sock} check inter {inter} fall 1 rise 1")
        lines += ["", "backend pages", "    balance roundrobin", "    option httpchk GET /healthz"]
        for i, sock in enumerate(self.worker_sockets):
            lines.append(f"    server w{i} {sock} check inter {inter} fall 2 rise 1")
        for i, sock in enumerate(self.worker_sockets):
            lines += ["", f"backend w{i}", f"    server w{i} {sock}"]
        lines += ["", "backend parent", f"    server parent {self.parent_socket}", ""]
        return "\n".join(lines)


def routable_workers(show_stat: str, backend: str = "calls") -> dict[int, bool]:
    """Which workers haproxy would send a new call to, from its ``show stat`` CSV.

    Args:
        show_stat: The runtime API's answer to ``show stat``.
        backend: The backend to read (new calls go to ``calls``).

    Returns:
        Worker index → whether haproxy has it ``UP`` there.
    """
    lines = show_stat.splitlines()
    if not lines or not lines[0].startswith("# "):
        return {}
    header = lines[0][2:].split(",")
    try:
        px, sv, st = header.index("pxname"), header.index("svname"), header.index("status")
    except ValueError:
        return {}
    out: dict[int, bool] = {}
    for line in lines[1:]:
        cols = line.split(",")
        if len(cols) <= st or cols[px] != backend or not cols[sv].startswith("w"):
            continue
        if cols[sv][1:].isdigit():
            out[int(cols[sv][1:])] = cols[st].startswith("UP")
    return out
