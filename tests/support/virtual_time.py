"""The virtual-time asyncio loop for deterministic timing tests.

The loop lives in the product (``pipecat_tandem.bench.virtual_time``), where the scenario
benchmark runs on it too; the tests use the same one.
"""

from pipecat_tandem.bench.virtual_time import VirtualTimeLoop, run_virtual

__all__ = ["VirtualTimeLoop", "run_virtual"]
