"""``nodsynth twin``: generate a whole CT (a "digital twin") from an anatomy label map."""
from __future__ import annotations

import argparse
import json

from ...atomic import write_text_atomic
from ...engines import TwinRequest
from ...volume import read_volume, write_volume
from ..common import parse_triple, progress_bar
from ..engine_args import add_engine_arguments, engine_from_args

VERB = "twin"
HELP = "generate a CT from a MAISI label map (nodule = 23) with NodMAISI"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labelmap", required=True, help="MAISI label map (NIfTI/NRRD/MHA)")
    parser.add_argument("--out", required=True, help="output CT (.nii.gz, .nrrd, .mha); written atomically")
    parser.add_argument("--steps", type=int, default=30, help="sampling steps (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed; the same seed gives the same CT")
    parser.add_argument("--size", help="output size i,j,k in voxels (default: the label map's)")
    parser.add_argument("--spacing", help="output spacing i,j,k in mm (default: the label map's)")
    parser.add_argument("--resample", action="store_true",
                        help="resample a grid outside MAISI's limits to a valid one, and the result back")
    parser.add_argument("--json", metavar="FILE", help="write the result's info here (timesteps, tiles, seconds, "
                                                       "checkpoints with SHA-256)")
    add_engine_arguments(parser, default="nodmaisi", operations=("twin",))


def twin_request(args: argparse.Namespace) -> TwinRequest:
    """The request these options describe (reads the label map)."""
    labelmap = read_volume(args.labelmap)
    size = tuple(int(v) for v in parse_triple(args.size, "--size")) if args.size else None
    spacing = parse_triple(args.spacing, "--spacing") if args.spacing else None
    return TwinRequest(labelmap, output_size_ijk=size, output_spacing_mm=spacing, steps=args.steps,
                       seed=args.seed, resample_to_valid=args.resample)


def run(args: argparse.Namespace) -> int:
    result = engine_from_args(args).twin(twin_request(args), progress=progress_bar("twin"))
    write_volume(result.ct, args.out, metadata=result.file_metadata())
    if args.json:
        write_text_atomic(args.json, json.dumps({"engine": result.engine, "seconds": result.seconds, **result.info},
                                                indent=1, default=str))
    print(f"wrote {args.out} ({result.engine}, {result.seconds:.1f} s)")
    return 0
