"""``nodsynth serve``: the engines behind an authenticated HTTP API (FastAPI + uvicorn).

API version 1, all under ``/v1`` (a client checks ``api_version`` of ``/v1/health`` on connect):

* ``GET /v1/health`` -- server and API version, engines (``describe()``: weights found, operations),
  devices (CPU, or GPU name and free memory), upload cap. No token, no patient data.
* ``POST /v1/jobs`` -- body: a :mod:`nodsynth.wire` request; ``202`` with ``{"id": ...}``.
  ``401`` without a valid ``Authorization: Bearer`` token, ``413`` over the upload cap (checked while
  the body streams in), ``422`` with ``detail`` (and ``error_type``) for an invalid request.
* ``GET /v1/jobs`` -- every job's id, state and order.
* ``GET /v1/jobs/{id}`` -- ``state`` (queued, running, done, failed, cancelled), ``progress`` (0..1),
  ``message``, ``error``/``error_type`` (failed jobs), ``queue_position``, ``attempts``.
* ``GET /v1/jobs/{id}/result`` -- the :mod:`nodsynth.wire` result of a done job (``409`` before).
* ``DELETE /v1/jobs/{id}`` -- cancels a queued or running job; on a finished job, deletes it and its
  result (clients do this after fetching the result; otherwise results expire after ``--keep-hours``).

Only this module's light constants are imported by the client; :mod:`nodsynth.server.app` needs
FastAPI.
"""

API_VERSION = 1
"""Bumped whenever a route or a response field changes incompatibly."""

WIRE_MEDIA_TYPE = "application/x-nodsynth-wire"
