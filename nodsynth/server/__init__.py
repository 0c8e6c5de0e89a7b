"""``nodsynth serve``: the engines behind an authenticated HTTP API (FastAPI + uvicorn).

API version 1, all under ``/v1`` (a client checks ``api_version`` of ``/v1/health`` on connect):

* ``GET /v1/health`` -- server and API version, engines (``describe()``: weights found, operations),
  devices (CPU, or GPU name and free memory), upload cap, wire codecs. No token,
  no patient data.
* ``POST /v1/jobs`` -- body: a :mod:`nodsynth.io.wire` request; ``202`` with ``{"id": ...}``. Volumes
  the request names by content hash (``ref``, or the base of a ``patch``) that the caller's volume
  cache does not hold: ``409`` with ``missing`` (their hashes), nothing stored; the client sends those
  otherwise. Volumes sent whole (or as a patch) with a hash are checked against it and cached
  (:mod:`nodsynth.server.cache`).
  ``401`` without a valid ``Authorization: Bearer`` token, ``413`` over the upload cap (checked while
  the body streams in), ``422`` with ``detail`` (and ``error_type``) for an invalid request.
* ``POST /v1/probe`` -- reads and drops a body of at most 64 MiB (``{"received": n}``): a client
  times it to measure the link's upload rate and choose its codec (see
  :func:`nodsynth.engines.remote.choose_codec`).
* ``GET /v1/jobs`` -- id, state, order and owner of the caller's jobs (an admin token: of every job).
* ``GET /v1/jobs/{id}`` -- ``state`` (queued, running, done, failed, cancelled), ``progress`` (0..1),
  ``message``, ``error``/``error_type`` (failed jobs), ``queue_position``, ``attempts``. With
  ``?wait_s=S`` (at most ``max_status_wait_s`` of ``/v1/health``, :data:`MAX_STATUS_WAIT_S`) the answer
  comes as soon as the job has finished, or after ``S`` seconds: a long poll.
* ``GET /v1/jobs/{id}/result`` -- the :mod:`nodsynth.io.wire` result of a done job (``409`` before).
* ``DELETE /v1/volumes`` and ``DELETE /v1/volumes/{hash}`` -- delete all or one of the caller's
  cached volumes (``{"deleted": n}``).
* ``DELETE /v1/jobs/{id}`` -- cancels a queued or running job; on a finished job, deletes it and its
  result (clients do this after fetching the result; otherwise results expire after ``--keep-hours``).

A job belongs to the token that submitted it (the token file may name several, see
:mod:`nodsynth.server.auth`): for any other token its routes answer ``404`` as for a job that does not
exist; an admin token may also see the status of and cancel or delete every job, but never fetch
another's result.

Only this module's light constants are imported by the client; :mod:`nodsynth.server.app` needs
FastAPI.
"""

API_VERSION = 1
"""Bumped whenever a route or a response field changes incompatibly."""

WIRE_MEDIA_TYPE = "application/x-nodsynth-wire"

MAX_STATUS_WAIT_S = 30.0
"""Longest long poll of a job's status (``GET /v1/jobs/{id}?wait_s=``)."""

