"""The scripted fake LLM under the tests' names.

The one implementation is the package's (``pipecat_tandem.bench.fakes``), which the
scenario benchmark runs on too; these are aliases of it.
"""

from pipecat_tandem.bench.fakes import Brain as Responder
from pipecat_tandem.bench.fakes import Reply as FakeReply
from pipecat_tandem.bench.fakes import ScriptedLLM as FakeLLMService
from pipecat_tandem.bench.fakes import last_text

__all__ = ["FakeLLMService", "FakeReply", "Responder", "last_text"]
