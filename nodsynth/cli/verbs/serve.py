"""``nodsynth serve``: run the engines behind an authenticated HTTP API (see :mod:`nodsynth.server`)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from ...io.tables import read_json
from ...errors import InputError
from ...server.jobs import DEFAULT_MAX_ATTEMPTS
from ...server.origin import is_loopback

VERB = "serve"
HELP = "serve the engines over HTTP for remote clients (Slicer modules, other machines' CLI)"

DEFAULT_PORT = 8765


def default_jobs_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "nodsynth" / "jobs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: only this machine; use an SSH tunnel or "
                             "a TLS reverse proxy to reach it from elsewhere, or 0.0.0.0 on a trusted network)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    parser.add_argument("--token-file", metavar="FILE",
                        help="file holding the bearer token clients must send (required); or one "
                             "'NAME TOKEN [admin]' per line: each client sees only its own jobs, an admin "
                             "token lists all (format: nodsynth.server.auth)")
    parser.add_argument("--insecure-no-token", action="store_true",
                        help="accept requests without a token; only allowed when --host is a loopback address")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="with --insecure-no-token, also answer requests whose Host header is NAME "
                             "(default: only 127.0.0.1, ::1, localhost; guards against DNS rebinding)")
    parser.add_argument("--engines", default="all",
                        help="comma-separated engines to serve, e.g. nodmaisi,hrldm,classic "
                             "(default: all that can be created here)")
    parser.add_argument("--weights", metavar="DIR", help="folder with model checkpoints for the engines")
    parser.add_argument("--engine-options", metavar="JSON_FILE",
                        help='per-engine keyword options, e.g. {"nodmaisi": {"config": "..."}}')
    parser.add_argument("--devices", default="auto",
                        help="devices to run one worker each on: auto (every GPU, else cpu), or e.g. cuda:0,cuda:1")
    parser.add_argument("--jobs-dir", type=Path, default=default_jobs_dir(),
                        help=f"folder of the persisted job queue and results (default {default_jobs_dir()})")
    parser.add_argument("--max-upload-mb", type=float, default=2048.0,
                        help="largest accepted request in MiB (default 2048)")
    parser.add_argument("--keep-hours", type=float, default=24.0,
                        help="delete finished jobs not fetched within this many hours (default 24)")
    parser.add_argument("--cache-gb", type=float, default=20.0,
                        help="disk space of each client's volume cache in GiB: the CTs and masks it sent and "
                             "the results it got, so the next edit sends only what changed; least recently "
                             "used go first, unused ones after --keep-hours (default 20)")
    parser.add_argument("--cache-memory-gb", type=float, default=2.0,
                        help="recently used cached volumes held in memory, all clients together, in GiB (default 2)")
    parser.add_argument("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS,
                        help="a job the server was running when it stopped is run again at restart, at most "
                             f"this many starts in all; then it fails with that reason (default {DEFAULT_MAX_ATTEMPTS})")
    parser.add_argument("--return-freed-memory", action="store_true",
                        help="give the memory a job frees back to the system at once (glibc's default); by "
                             "default the server keeps it for the next job, which spares each job re-faulting "
                             "its volumes in (0.2-1.6 s per 512x512x256 CT) but holds the largest job's peak")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                        help="server log level (default info)")


def read_engine_options(path: str | None) -> dict:
    if not path:
        return {}
    options = read_json(path, "--engine-options file")
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise InputError(f"--engine-options {path} must be a JSON object of engine name -> object of options")
    return options


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ...engines.registry import engine_names
    from ...server.app import ServerConfig, create_app
    from ...server.auth import read_token_table
    from ...server.devices import resolve_devices
    from ...server.lock import JobsFolderLock
    from ...server.memory import keep_freed_memory

    if args.insecure_no_token:
        if not is_loopback(args.host):
            raise InputError(f"refusing to serve without a token on {args.host}: --insecure-no-token is only "
                             "allowed on a loopback address (127.0.0.1, ::1, localhost)")
        tokens = None
    elif args.token_file:
        tokens = read_token_table(args.token_file)
    else:
        raise InputError("--token-file is required (or --insecure-no-token when binding to 127.0.0.1)")
    if args.max_upload_mb <= 0 or args.keep_hours <= 0 or args.max_attempts < 1:
        raise InputError("--max-upload-mb, --keep-hours and --max-attempts must be positive")
    if args.cache_gb < 0 or args.cache_memory_gb < 0:
        raise InputError("--cache-gb and --cache-memory-gb must be zero or positive")
    every = args.engines.strip().lower() == "all"
    names = ([n for n in engine_names() if n != "remote"] if every
             else [n.strip().lower() for n in args.engines.split(",") if n.strip()])
    config = ServerConfig(jobs_dir=args.jobs_dir, tokens=tokens, engines=names,
                          devices=resolve_devices(args.devices), weights_dir=args.weights,
                          engine_options=read_engine_options(args.engine_options),
                          max_upload_bytes=int(args.max_upload_mb * 2**20), keep_s=args.keep_hours * 3600.0,
                          max_attempts=args.max_attempts, allowed_hosts=args.allow_host,
                          skip_unavailable_engines=every, cache_bytes=int(args.cache_gb * 2**30),
                          cache_memory_bytes=int(args.cache_memory_gb * 2**30))
    if not args.return_freed_memory:
        keep_freed_memory()  # before any server thread starts
    lock = JobsFolderLock(args.jobs_dir)
    lock.acquire(f"http://{f'[{args.host}]' if ':' in args.host else args.host}:{args.port}")
    try:
        uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=args.log_level)
    finally:
        lock.release()
    return 0
