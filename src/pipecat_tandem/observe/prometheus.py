#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Prometheus text exposition (format 0.0.4): write families, merge workers' pages.

Pure and synchronous. A worker renders its own families (every sample labelled
with its ``worker``); the parent of ``tandem run --workers N`` merges the
workers' pages into one, because the format wants each family once, in one
block, with one ``# HELP`` and ``# TYPE``.

In this format a counter's ``# TYPE`` names the sample itself, so counter
families are named with their ``_total``.

Example::

    fam = Family("tandem_calls", "gauge", "Calls running now.")
    fam.add(3, worker="0")
    text = render([fam])
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

#: The content type of the text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_TYPES = frozenset({"counter", "gauge", "summary", "histogram", "untyped"})


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value as the format spells it (``+Inf``, ``NaN``, integers bare)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@dataclass
class Family:
    """One metric family and its samples.

    Args:
        name: The metric name (``[a-zA-Z_:][a-zA-Z0-9_:]*``).
        type: ``counter``, ``gauge``, ``summary``, ``histogram`` or ``untyped``.
        help: One line saying what it counts.
    """

    name: str
    type: str
    help: str
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"unknown metric type {self.type!r}")

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        """Add a sample (``suffix`` e.g. ``_total``, ``_count``, ``_sum``)."""
        self.samples.append((self.name + suffix, dict(labels), float(value)))

    def lines(self) -> list[str]:
        """The family's lines: HELP, TYPE, then its samples."""
        out = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.type}"]
        for name, labels, value in self.samples:
            if labels:
                body = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
                out.append(f"{name}{{{body}}} {format_value(value)}")
            else:
                out.append(f"{name} {format_value(value)}")
        return out


def render(families: Iterable[Family]) -> str:
    """The text page of ``families`` (ends with a newline, as the format requires)."""
    lines: list[str] = []
    for fam in families:
        lines.extend(fam.lines())
    return "\n".join(lines) + "\n"


def merge_pages(pages: Iterable[str]) -> str:
    """Merge pages written by :func:`render` into one valid page.

    Each family keeps the first ``# HELP``/``# TYPE`` seen and gathers its
    samples from every page, in page order; families appear in first-seen
    order. Samples are told apart by their labels (each worker labels its
    own), so nothing is summed here.

    Args:
        pages: Text pages (other comment lines are dropped).

    Returns:
        One page.
    """
    order: list[str] = []
    heads: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for page in pages:
        family = ""
        for line in page.splitlines():
            if not line.strip():
                continue
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                parts = line.split(" ", 3)
                if len(parts) < 3:
                    continue
                family = parts[2]
                if family not in heads:
                    order.append(family)
                    heads[family] = []
                    samples[family] = []
                if not any(h.startswith(line[:7]) for h in heads[family]):
                    heads[family].append(line)
                continue
            if line.startswith("#"):
                continue
            name = line.split("{", 1)[0].split(" ", 1)[0]
            key = family if family and name.startswith(family) else name
            if key not in samples:
                order.append(key)
                heads[key] = []
                samples[key] = []
            samples[key].append(line)
    out: list[str] = []
    for key in order:
        out.extend(heads[key])
        out.extend(samples[key])
    return "\n".join(out) + "\n"
