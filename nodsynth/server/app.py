"""The FastAPI application of ``nodsynth serve`` (routes documented in :mod:`nodsynth.server`)."""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from .. import __version__
from ..io import wire
from ..io.content_hash import is_content_hash
from ..engines.base import Engine
from ..engines.registry import engine_names, get_engine
from ..errors import NodsynthError
from . import API_VERSION, MAX_STATUS_WAIT_S, WIRE_MEDIA_TYPE
from .auth import DEFAULT_NAME, ClientToken, bearer_token, find_client
from .cache import CACHE_FOLDER, VolumeCache
from .devices import describe_device
from .jobs import DEFAULT_MAX_ATTEMPTS, DONE, FINISHED, Job, JobStore
from .origin import foreign_request_reason
from .validate import validate_request
from .worker import Worker

log = logging.getLogger(__name__)


@dataclass
class ServerConfig:
    """Everything ``nodsynth serve`` was started with."""

    jobs_dir: Path
    tokens: Optional[list[ClientToken]]  # None only with --insecure-no-token on a loopback address
    engines: list[str] = field(default_factory=lambda: ["classic"])
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    weights_dir: Optional[str] = None
    engine_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_upload_bytes: int = 2048 << 20
    keep_s: float = 24 * 3600.0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # starts of one job before a restart fails it (crash loops)
    allowed_hosts: list[str] = field(default_factory=list)  # Host names besides loopback ones, without tokens
    skip_unavailable_engines: bool = False  # serve what can be created (``--engines all``)
    cache_bytes: int = 20 << 30  # per client: the volumes it sent and got, on disk (LRU beyond)
    cache_memory_bytes: int = 2 << 30  # all clients: recently used volumes held in memory


def make_engines(config: ServerConfig, device: str) -> dict[str, Engine]:
    """One instance of each served engine for the worker on ``device``."""
    engines = {}
    for name in config.engines:
        if name == "remote" or name not in engine_names():
            raise NodsynthError(f"cannot serve engine {name!r}; choose from "
                                + ", ".join(n for n in engine_names() if n != "remote"))
        options = dict(config.engine_options.get(name, {}))
        if config.weights_dir:
            options.setdefault("weights_dir", config.weights_dir)
        options.setdefault("device", device)
        try:
            engines[name] = get_engine(name, **options)
        except NodsynthError as exc:
            if not config.skip_unavailable_engines:
                raise
            log.warning("not serving engine %r: %s", name, exc)
    if not engines:
        raise NodsynthError("no engine could be created; see the warnings above")
    return engines


STATUS_WAIT_STEP_S = 0.005
"""How often a long poll looks at its job (in the event loop: no thread waits)."""


def job_status(store: JobStore, job: Job) -> dict:
    return {"id": job.id, "state": job.state, "operation": job.operation, "engine": job.engine,
            "progress": job.progress, "message": job.message, "error": job.error,
            "error_type": job.error_type, "attempts": job.attempts, "seq": job.seq, "owner": job.owner,
            "queue_position": store.queue_position(job), "created_s": job.created_s,
            "started_s": job.started_s, "finished_s": job.finished_s}


async def stream_body_capped(request: Request, cap_bytes: int, on_piece: Callable[[bytes], None]) -> int:
    """Hand each piece of the request body to ``on_piece`` as it arrives; refuse with 413 as soon as the body
    exceeds ``cap_bytes``. Returns its size in bytes."""
    too_big = HTTPException(413, f"upload exceeds the server's cap of {cap_bytes / 2**20:.0f} MiB "
                                 "(nodsynth serve --max-upload-mb)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap_bytes:
        raise too_big
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap_bytes:
            raise too_big
        on_piece(chunk)
    return size


PROBE_CAP_BYTES = 64 << 20
"""Most bytes a link probe (``POST /v1/probe``) may send."""


def create_app(config: ServerConfig) -> FastAPI:
    """The application with its job store and one worker per device (started with the app)."""
    store = JobStore(config.jobs_dir, config.keep_s, config.max_attempts)
    cache = VolumeCache(Path(config.jobs_dir) / CACHE_FOLDER, config.cache_bytes, config.keep_s,
                        config.cache_memory_bytes)
    workers = [Worker(store, make_engines(config, device), device, cache) for device in config.devices]
    engines = workers[0].engines

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        for worker in workers:
            worker.start()
        yield
        for worker in workers:
            worker.stop()
        cache.close()

    app = FastAPI(title="nodsynth", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)  # served below, behind the token

    if config.tokens is None:
        @app.middleware("http")
        async def refuse_web_pages(request: Request, call_next):
            reason = foreign_request_reason(request.headers.get("host"), request.headers.get("origin"),
                                            config.allowed_hosts)
            if reason:
                return JSONResponse({"detail": reason}, status_code=403)
            return await call_next(request)

    def require_token(authorization: Optional[str] = Header(default=None)) -> ClientToken:
        """The calling client (everybody is one client without tokens); 401 for a missing or wrong token."""
        if config.tokens is None:
            return ClientToken(DEFAULT_NAME, "")
        client = find_client(bearer_token(authorization), config.tokens)
        if client is None:
            raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})
        return client

    def find_job(job_id: str, client: ClientToken, admin_may: bool) -> Job:
        """The client's job (or any job, for an admin when ``admin_may``); 404 alike for a job that does
        not exist and one of another client, so ids of others' jobs cannot be probed."""
        job = store.get(job_id)
        if job is None or not (job.owner == client.name or (admin_may and client.admin)):
            raise HTTPException(404, f"no such job of yours (finished jobs are deleted once fetched or after "
                                     f"{config.keep_s / 3600:.0f} h)")
        return job

    @app.exception_handler(NodsynthError)
    async def invalid_request(_request: Request, exc: NodsynthError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "error_type": type(exc).__name__}, status_code=422)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    def openapi() -> dict:
        return app.openapi()

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(require_token)])
    def docs() -> HTMLResponse:  # the schema inline: the browser would fetch /openapi.json without the token
        return get_swagger_ui_html(openapi_url="/openapi.json", title="nodsynth API",
                                   swagger_ui_parameters={"spec": app.openapi()})

    @app.get("/v1/health")
    def health() -> dict:
        return {"server": "nodsynth", "server_version": __version__, "api_version": API_VERSION,
                "wire_version": wire.WIRE_VERSION, "auth": "none" if config.tokens is None else "bearer",
                "max_upload_mb": config.max_upload_bytes / 2**20, "codecs": wire.available_codecs(),
                "cache_mb": config.cache_bytes / 2**20, "cache_pending_writes": cache.pending_writes(),
                "max_status_wait_s": MAX_STATUS_WAIT_S,
                "engines": {name: engine.describe() for name, engine in engines.items()},
                "devices": [describe_device(w.device) for w in workers],
                "jobs": {"queued": sum(j.state == "queued" for j in store.jobs()),
                         "running": sum(j.state == "running" for j in store.jobs())}}

    @app.post("/v1/jobs", status_code=202)
    async def submit(request: Request, client: ClientToken = Depends(require_token)) -> dict:
        reader = wire.StreamReader()  # decodes the chunks while the rest of the body arrives
        incoming = store.incoming()  # and the job's request file is written meanwhile

        def take(piece: bytes) -> None:
            reader.feed(piece)
            incoming.write(piece)

        try:
            await stream_body_capped(request, config.max_upload_bytes, take)
        except BaseException:
            reader.close()
            incoming.discard()
            raise

        def check_and_store() -> Job | JSONResponse:
            try:
                header = reader.complete_header()
                held = {digest: cache.get(client.name, digest) for digest in wire.ref_hashes(header)}
                missing = sorted(digest for digest, volume in held.items() if volume is None)
                if missing:
                    incoming.discard()
                    return JSONResponse({"detail": f"{len(missing)} volume(s) are not in the server's cache; "
                                                   "send them whole", "missing": missing}, status_code=409)
                decoded = reader.request(resolve=held.__getitem__)
                validate_request(decoded, engines)
            except BaseException:
                incoming.discard()
                raise
            finally:
                reader.close()
            keep_sent_volumes(decoded, client.name, held)
            return store.commit(incoming, decoded.operation, decoded.engine, client.name, decoded)

        def keep_sent_volumes(decoded: wire.WireRequest, owner: str, named: Iterable[str]) -> None:
            """Cache the volumes sent whole (checked and written when the server is idle) and write those
            ``named`` by hash now: the request as stored (the body as sent) then runs after a restart."""
            volumes = wire.request_volumes(decoded.request)
            for name, digest in decoded.hashes.items():
                if name not in decoded.refs:
                    cache.put_unchecked(owner, digest, volumes[name])
            for digest in named:
                cache.persist(owner, digest)

        answer = await run_in_threadpool(check_and_store)
        return answer if isinstance(answer, JSONResponse) else job_status(store, answer)

    @app.post("/v1/probe")
    async def probe(request: Request, _client: ClientToken = Depends(require_token)) -> dict:
        """Read and drop a body: a client times this to measure the link (its codec choice)."""
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > PROBE_CAP_BYTES:
                raise HTTPException(413, f"a probe sends at most {PROBE_CAP_BYTES >> 20} MiB")
        return {"received": received}

    @app.delete("/v1/volumes")
    def forget_all_volumes(client: ClientToken = Depends(require_token)) -> dict:
        return {"deleted": cache.delete(client.name)}

    @app.delete("/v1/volumes/{digest}")
    def forget_volume(digest: str, client: ClientToken = Depends(require_token)) -> dict:
        if not is_content_hash(digest):
            raise HTTPException(404, "no such volume of yours (a content hash is 64 hex digits)")
        return {"deleted": cache.delete(client.name, digest)}

    @app.get("/v1/jobs")
    def list_jobs(client: ClientToken = Depends(require_token)) -> list[dict]:
        return [{"id": j.id, "state": j.state, "seq": j.seq, "owner": j.owner} for j in store.jobs()
                if client.admin or j.owner == client.name]

    @app.get("/v1/jobs/{job_id}")
    async def status(job_id: str, wait_s: float = 0.0, client: ClientToken = Depends(require_token)) -> dict:
        """The job's status; with ``wait_s`` the answer comes when the job has finished or after ``wait_s``
        (a long poll: the client hears of the end at once, without polling fast)."""
        job = find_job(job_id, client, admin_may=True)
        if not 0.0 <= wait_s <= MAX_STATUS_WAIT_S:
            raise HTTPException(422, f"wait_s must be 0 to {MAX_STATUS_WAIT_S:g} seconds, got {wait_s}")
        deadline = time.monotonic() + wait_s
        while job.state not in FINISHED and time.monotonic() < deadline:
            await asyncio.sleep(STATUS_WAIT_STEP_S)
        return job_status(store, job)

    @app.get("/v1/jobs/{job_id}/result")
    def result(job_id: str, client: ClientToken = Depends(require_token)) -> FileResponse:
        job = find_job(job_id, client, admin_may=False)  # patient data: its owner's only
        if job.state != DONE:
            raise HTTPException(409, f"job is {job.state}, not done" + (f": {job.error}" if job.error else ""))
        return FileResponse(store.result_path(job), media_type=WIRE_MEDIA_TYPE)

    @app.delete("/v1/jobs/{job_id}")
    def cancel_or_discard(job_id: str, client: ClientToken = Depends(require_token)) -> dict:
        job = find_job(job_id, client, admin_may=True)
        if job.state in FINISHED:
            status_before = job_status(store, job)
            cache.release(job.id)
            store.discard(job)
            return dict(status_before, deleted=True)
        store.cancel(job)
        return job_status(store, job)

    return app

