"""``nodsynth serve``: run the engines behind an authenticated HTTP API (see :mod:`nodsynth.server`)."""
from __future__ import annotations

import argparse
import ipaddress
import os
from pathlib import Path

from ...casetables import read_json
from ...errors import InputError

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
                        help="file holding the bearer token clients must send (required)")
    parser.add_argument("--insecure-no-token", action="store_true",
                        help="accept requests without a token; only allowed when --host is a loopback address")
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
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                        help="server log level (default info)")


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
    from ...server.auth import read_token_file
    from ...server.devices import resolve_devices

    if args.insecure_no_token:
        if not is_loopback(args.host):
            raise InputError(f"refusing to serve without a token on {args.host}: --insecure-no-token is only "
                             "allowed on a loopback address (127.0.0.1, ::1, localhost)")
        token = None
    elif args.token_file:
        token = read_token_file(args.token_file)
    else:
        raise InputError("--token-file is required (or --insecure-no-token when binding to 127.0.0.1)")
    if args.max_upload_mb <= 0 or args.keep_hours <= 0:
        raise InputError("--max-upload-mb and --keep-hours must be positive")
    every = args.engines.strip().lower() == "all"
    names = ([n for n in engine_names() if n != "remote"] if every
             else [n.strip().lower() for n in args.engines.split(",") if n.strip()])
    config = ServerConfig(jobs_dir=args.jobs_dir, token=token, engines=names,
                          devices=resolve_devices(args.devices), weights_dir=args.weights,
                          engine_options=read_engine_options(args.engine_options),
                          max_upload_bytes=int(args.max_upload_mb * 2**20), keep_s=args.keep_hours * 3600.0,
                          skip_unavailable_engines=every)
    app = create_app(config)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
