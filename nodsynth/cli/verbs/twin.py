"""``nodsynth twin``: generate a whole CT (a "digital twin") from an anatomy label map."""
from __future__ import annotations

import argparse
import json
from typing import Optional

from ...io.atomic import write_text_atomic
from ...engines import TwinRequest
from ...engines.base import Engine, SynthesisResult
from ...progress import CancelToken, ProgressFn
from ...qc.regenerate import DEFAULT_MAX_TRIES, qc_header, twin_with_qc
from ...qc.stats import read_statistics
from ...io.volume_files import read_volume, write_volume
from ..common import parse_triple, progress_bar
from ..engine_args import add_engine_arguments, engine_from_args

VERB = "twin"
HELP = "generate a CT from a MAISI label map (nodule = 23) with NodMAISI"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labelmap", required=True, help="MAISI label map")
    parser.add_argument("--out", required=True, help="output CT (.nii.gz, .nrrd, .mha); written atomically")
    parser.add_argument("--steps", type=int, default=30, help="sampling steps (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed; the same seed gives the same CT")
    parser.add_argument("--size", help="output size i,j,k in voxels (default: the label map's)")
    parser.add_argument("--spacing", help="output spacing i,j,k in mm (default: the label map's)")
    parser.add_argument("--resample", action="store_true",
                        help="resample a grid outside MAISI's limits to a valid one, and the result back")
    parser.add_argument("--json", metavar="FILE", help="write the result's info here (timesteps, tiles, seconds, "
                                                       "checkpoints with SHA-256)")
    parser.add_argument("--qc-stats", metavar="FILE",
                        help="quality check against these organ median HU ranges ('nodsynth qc stats'): a CT "
                             "that fails is sampled again with a new seed, up to --max-tries; one that never "
                             "passes is kept, marked failed in its header and --json, exit status 1")
    parser.add_argument("--max-tries", type=int, default=DEFAULT_MAX_TRIES,
                        help=f"tries in all with --qc-stats, the first included (default {DEFAULT_MAX_TRIES}, MAISI's)")
    add_engine_arguments(parser, default="nodmaisi", operations=("twin",))


def twin_request(args: argparse.Namespace) -> TwinRequest:
    """The request these options describe (reads the label map)."""
    labelmap = read_volume(args.labelmap)
    size = tuple(int(v) for v in parse_triple(args.size, "--size")) if args.size else None
    spacing = parse_triple(args.spacing, "--spacing") if args.spacing else None
    return TwinRequest(labelmap, output_size_ijk=size, output_spacing_mm=spacing, steps=args.steps,
                       seed=args.seed, resample_to_valid=args.resample)


def twin_result(engine: Engine, args: argparse.Namespace, progress: ProgressFn,
                cancel: Optional[CancelToken] = None) -> SynthesisResult:
    """The twin these options describe; with ``--qc-stats`` sampled again while it fails the quality check."""
    statistics = read_statistics(args.qc_stats) if args.qc_stats else None
    request = twin_request(args)
    if statistics is None:
        return engine.twin(request, progress=progress, cancel=cancel)
    return twin_with_qc(engine, request, statistics, args.max_tries, progress, cancel)


def write_twin(result: SynthesisResult, path) -> None:
    """The CT with its checkpoints' SHA-256 and, after a quality check, its verdict in the header."""
    qc = result.info.get("qc")
    write_volume(result.ct, path, metadata={**result.file_metadata(), **({"nodsynth_qc": qc_header(qc)} if qc else {})})


def run(args: argparse.Namespace) -> int:
    result = twin_result(engine_from_args(args), args, progress_bar("twin"))
    write_twin(result, args.out)
    if args.json:
        write_text_atomic(args.json, json.dumps({"engine": result.engine, "seconds": result.seconds, **result.info},
                                                indent=1, default=str))
    print(f"wrote {args.out} ({result.engine}, {result.seconds:.1f} s)")
    qc = result.info.get("qc")
    if qc and not qc["passed"]:
        print(f"{args.out}: kept, but it failed the quality check in all {len(qc['tries'])} tries "
              f"({qc['tries'][-1]['verdict']})")
        return 1
    return 0
