#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""How calls reach the tandem pipeline.

* :mod:`~pipecat_tandem.transports.webrtc_server`: the ``tandem run`` server
  (offline client page, SmallWebRTC offer protocol, ``/healthz``).
* :mod:`~pipecat_tandem.transports.livekit_room`: join a LiveKit room as one participant.
* :mod:`~pipecat_tandem.transports.session`: the :class:`SessionFactory` contract.
* :mod:`~pipecat_tandem.transports.tandem_session`: the factory over presets and
  ``build_tandem_pipeline``.
* :mod:`~pipecat_tandem.transports.client_event_observer`: the live job view sent
  to clients.
* :mod:`~pipecat_tandem.transports.rtvi_job_bridge`: job events to RTVI clients as
  ``tandem-job`` server messages and their cancel messages back; the schema is
  :mod:`~pipecat_tandem.transports.rtvi_job_schema` (``docs/rtvi-jobs.md``).

Submodules are imported on demand: aiortc and LiveKit's native library are heavy.
"""
