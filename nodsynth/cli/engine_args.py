"""The engine options every synthesis verb shares: ``--engine``, ``--weights``, ``--device``,
``--config``, ``--allow-baseline-controlnet``, ``--server`` and ``--token-file`` (a remote server runs the
same engine behind the same interface; its weights, device and options are set on the server)."""
from __future__ import annotations

import argparse
from typing import Any

from ..engines import Engine, engine_names, get_engine
from ..weights import ALLOW_BASELINE_CONTROLNET_FLAG


def add_engine_arguments(parser: argparse.ArgumentParser, default: str = "classic",
                         operations: tuple[str, ...] = ()) -> None:
    """The engine options; ``--engine`` offers the local engines that implement one of ``operations`` (all when empty)."""
    group = parser.add_argument_group("engine")
    group.add_argument("--engine", default=default, choices=[n for n in engine_names(operations) if n != "remote"],
                       help=f"generator to run (default: {default}; 'classic' is model-free)")
    group.add_argument("--weights", metavar="DIR", help="folder with model checkpoints (overrides NODSYNTH_WEIGHTS and the config file)")
    group.add_argument("--device", help="torch device, e.g. cuda, cuda:1, cpu (default: cuda when available)")
    group.add_argument("--config", help="network configuration name or JSON file (default: the engine's own, "
                                        "maisi_v2 for NodMAISI)")
    group.add_argument(ALLOW_BASELINE_CONTROLNET_FLAG, action="store_true",
                       help="NodMAISI: use MAISI-v2's baseline controlnet_3d_rflow-ct.pt when no NodMAISI ControlNet "
                            "is found (NodMAISI reports it misses most sub-centimetre nodules; refused by default)")
    group.add_argument("--server", metavar="URL", help="run on a remote `nodsynth serve` instead of locally")
    group.add_argument("--token-file", metavar="FILE", help="file holding the server's bearer token")


def engine_from_args(args: argparse.Namespace) -> Engine:
    """The engine the user chose: local, or the same engine behind a remote server."""
    config: dict[str, Any] = {k: v for k, v in (("weights_dir", args.weights), ("device", args.device),
                                                ("config", args.config),
                                                ("allow_baseline_controlnet", args.allow_baseline_controlnet),
                                                ("mode", getattr(args, "mode", None))) if v}
    if args.server:
        return get_engine("remote", server_url=args.server, token_file=args.token_file, engine=args.engine,
                          engine_config=config)
    return get_engine(args.engine, **config)
