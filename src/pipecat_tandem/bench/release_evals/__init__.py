#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""pipecat's release evals, run against the tandem's runner bot, offline.

pipecat ships scenario files for its eval harness (``pipecat.evals``); the ones
under ``tests/data/release_evals/`` are copied verbatim. This package supplies
what the scenarios assume and the tandem does differently, without touching
what the scenarios expect the user to hear:

* :mod:`.tools` — the scenarios' tools (``get_current_weather``,
  ``write_report``) as background tools, and the bot's services builder
  (``TANDEM_BOT_SERVICES=pipecat_tandem.bench.release_evals.tools:build``);
* :mod:`.adapter` — maps the scenarios' ``function_call`` expectations onto
  the tandem's job events (the interaction model delegates, the background
  calls the tool);
* :mod:`.rule_judge` — the judge the runs use: rules for the scenarios' ten
  criteria (deterministic, instant);
* :mod:`.judge` — an offline model judge: the embedded Qwen 1.5B under a JSON-schema
  constrained verdict (measured, not trusted: see :mod:`.judge_accuracy`);
* :mod:`.local_services` — the user's voice (piper joe) and an independent
  transcriber of the bot's speech (Whisper base), nothing downloaded;
* :mod:`.run` — loads a scenario, applies the local services and the adapter,
  runs it with pipecat's ``EvalScriptSession``.
"""
