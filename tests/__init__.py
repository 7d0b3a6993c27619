"""Tests of pipecat-tandem."""
