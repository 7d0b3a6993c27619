#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The background agent's offline tools.

All of them run locally with no network: a safe calculator, date arithmetic,
unit conversion, full-text search over a folder of documents, and a look at the
latest camera frame. :func:`default_tools` is the set the embedded background
agent gets.
"""

from __future__ import annotations

from pathlib import Path

from pipecat_tandem.background.tools.base import Tool, ToolEnv, ToolError
from pipecat_tandem.background.tools.calculator import calculator_tool, evaluate
from pipecat_tandem.background.tools.camera import analyze_frame, camera_tool
from pipecat_tandem.background.tools.dates import dates_tool
from pipecat_tandem.background.tools.documents import DocumentIndex, documents_tool
from pipecat_tandem.background.tools.units import convert, units_tool


def default_tools(*, documents_dir: str | Path | None = None) -> list[Tool]:
    """The default offline tool set.

    Args:
        documents_dir: A folder of ``.txt``/``.md`` files to make searchable; the
            ``search_documents`` tool is included only when it is given.

    Returns:
        ``calculator``, ``dates``, ``convert_units``, ``look_at_camera`` and, with a
        folder, ``search_documents``.

    Raises:
        ValueError: If ``documents_dir`` is given but is not a directory.
    """
    tools = [calculator_tool(), dates_tool(), units_tool(), camera_tool()]
    if documents_dir is not None:
        tools.append(documents_tool(DocumentIndex(documents_dir)))
    return tools


__all__ = [
    "DocumentIndex",
    "Tool",
    "ToolEnv",
    "ToolError",
    "analyze_frame",
    "calculator_tool",
    "camera_tool",
    "convert",
    "dates_tool",
    "default_tools",
    "documents_tool",
    "evaluate",
    "units_tool",
]
