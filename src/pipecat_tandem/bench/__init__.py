#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Side-by-side scenario benchmark: pipecat-tandem vs pipecat's ``LLMWithBackend``.

Scripted conversations (:mod:`~pipecat_tandem.bench.scenarios`) run on virtual time
(:mod:`~pipecat_tandem.bench.virtual_time`) through both systems with the same fake
models and speech output (:mod:`~pipecat_tandem.bench.fakes`,
:mod:`~pipecat_tandem.bench.brains`); metrics are derived from what was observed,
the same way for both (:mod:`~pipecat_tandem.bench.observed`). ``tandem bench``
(:mod:`~pipecat_tandem.bench.cli`) runs it.

Import from the submodules; this package module imports nothing, so the CLI stays
light until a benchmark actually runs.
"""
