#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Exceptions raised by pipecat-tandem.

Hierarchy::

    TandemError
    ├── DelegationError        a delegation request was refused (empty/oversized task, limits)
    ├── UnknownJobError        cancel/follow-up for a job id that does not exist
    ├── JobStateError          an operation that the job's state does not allow
    └── ModelUnavailableError  embedded model weights are missing or corrupt
"""

from __future__ import annotations


class TandemError(Exception):
    """Base class of every pipecat-tandem error."""


class DelegationError(TandemError, ValueError):
    """A delegation request was refused; the message is safe to show to a model."""


class UnknownJobError(TandemError, KeyError):
    """A job id that the registry does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown job"


class JobStateError(TandemError):
    """The job's state does not allow the requested operation."""


class ModelUnavailableError(TandemError):
    """Embedded model weights are missing or corrupt; the message names the package."""
