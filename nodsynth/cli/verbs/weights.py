"""``nodsynth weights``: per engine, the checkpoint files it looks for, where, and what was found."""
from __future__ import annotations

import argparse
import importlib
import json

from ...engines.registry import ENGINE_CLASSES
from ...weights import engines_with_weights, weights_report

VERB = "weights"
HELP = "list the model weights each engine looks for, where, and what was found (size, SHA-256)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", help="only this engine (default: every engine that needs weights)")
    parser.add_argument("--weights", metavar="DIR", help="folder to search instead of NODSYNTH_WEIGHTS and the config file")
    parser.add_argument("--no-hash", action="store_true", help="skip the SHA-256 (slow for GB-sized files)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _size_text(num_bytes: int) -> str:
    return f"{num_bytes / 2**20:.1f} MiB"


def _print_report(report: dict) -> None:
    state = "complete" if report["complete"] else "INCOMPLETE"
    print(f"{report['engine']}: {state}")
    for entry in report["files"]:
        print(f"  {entry['role']}: looks for {' | '.join(entry['looks_for'])}")
        if entry["found"]:
            digest = f"  sha256 {entry['sha256']}" if entry.get("sha256") else ""
            print(f"    found {entry['found']}  {_size_text(entry['size_bytes'])}{digest}")
            for other in entry["alternatives"]:
                print(f"    also  {other} (not used)")
        elif entry.get("fallback"):
            print(f"    only {entry['fallback']}, refused unless allowed: it {entry['fallback_reason']}")
        else:
            print("    not found" + ("" if entry["required"] else " (optional)"))
    print(f"  searched: {report['where']}")


def _import_engine_modules() -> None:
    """Engines may declare their weights when their module is imported (``register_weights``)."""
    for target in ENGINE_CLASSES.values():
        try:
            importlib.import_module(target.split(":")[0])
        except ImportError:  # an engine whose extra is not installed declares nothing
            continue


def run(args: argparse.Namespace) -> int:
    _import_engine_modules()
    engines = [args.engine] if args.engine else engines_with_weights()
    reports = [weights_report(e, args.weights, with_hash=not args.no_hash) for e in engines]
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        for report in reports:
            _print_report(report)
    return 0 if all(r["complete"] for r in reports) else 1
