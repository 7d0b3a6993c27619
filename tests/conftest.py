"""Shared pytest configuration: quiet pipecat's debug logging during tests."""

import sys

from loguru import logger

logger.remove()
logger.add(sys.stderr, level="WARNING")
