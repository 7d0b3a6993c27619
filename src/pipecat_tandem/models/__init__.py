#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The embedded offline default: model weights and local pipecat services.

Modules (imported on demand, so that importing one does not load the others'
runtimes):

* :mod:`~pipecat_tandem.models.weights` — locate, verify and assemble the bundled weights.
* :mod:`~pipecat_tandem.models.local_server` — one loaded GGUF model (xllamacpp), shared.
* :mod:`~pipecat_tandem.models.local_llm` — ``LocalLLMService``, a streaming pipecat LLM.
* :mod:`~pipecat_tandem.models.tool_calls` — tool calls written as text, parsed.
* :mod:`~pipecat_tandem.models.local_stt` — ``LocalWhisperSTTService`` (Whisper tiny.en).
* :mod:`~pipecat_tandem.models.local_tts` — ``HibariTTSService`` (hibari "heart").
* :mod:`~pipecat_tandem.models.local_stack` — ``LocalStack``: all of it, placed and warmed.
"""
