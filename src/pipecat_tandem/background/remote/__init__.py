#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Background jobs on remote workers: a Redis stream for the jobs, pipecat's bus for the rest.

Needs the ``redis`` extra (``pip install "pipecat-tandem[redis]"``). Why a
stream for the job queue and the bus for progress, results, cancels and
follow-ups: ``docs/benchmarks.md`` ("Remote background workers over Redis").
"""

from pipecat_tandem.background.remote.deployment import RedisDeployment, check_redis_url
from pipecat_tandem.background.remote.redis_runner import RedisRunner
from pipecat_tandem.background.remote.redis_worker import RedisJobWorker

__all__ = ["RedisDeployment", "RedisJobWorker", "RedisRunner", "check_redis_url"]
