"""``nodsynth inpaint``: put a nodule into a CT with HR-LDM or the model-free engine.

Where: a nodule mask (``--mask``), a point (``--point x,y,z``, LPS mm; ``--ras`` for RAS), or a
sampled centroid (``--sample inner|subpleural`` in the lung from ``--labelmap``, ``--lung`` or a CT
threshold). Shape (for a point or a sampled centroid): procedural (``--elongation``,
``--lobulation``, ``--spiculation``) or from a shape library (``--shapes FILE.npz``), scaled to the
equivalent-sphere diameter ``--diameter-mm`` (the sphere of the nodule's volume, as ``nodsynth measure`` reports). Histogram: ``library`` (the default: a real LIDC nodule of the subtype and about the
nodule's size, drawn with ``--seed``, :mod:`nodsynth.histogram_library`), ``preset`` (the subtype's mean),
``preset:K`` (its k-means centre K) or a file. HR-LDM samples with DDPM, 1000 steps, as the paper;
``--sampler ddim`` (50 steps unless ``--steps``) is the fast option. ``--mode paper`` runs an HR-LDM
checkpoint trained with ``train hrldm --mode paper`` (whole-CT latent, Algorithm 2 as published).
"""
from __future__ import annotations

import argparse
import json
from typing import Optional

import numpy as np

from ...io.atomic import write_text_atomic
from ...io.content_hash import read_hashed
from ...engines import SUBTYPES, InpaintRequest
from ...engines.base import DEFAULT_INPAINT_SAMPLER, DEFAULT_INPAINT_STEPS, INPAINT_SAMPLERS
from ...histogram_library import DEFAULT_HISTOGRAM_SOURCE
from ...errors import InputError
from ...place import PLACES, placement_regions, resolve_lung, sample_centroids
from ...presets import preset_histogram, read_histogram
from ...labelmap import load_labelmap
from ...segment.checks import read_ct
from ...shapes import ShapeLibrary, bounding_diameter_mm, place_shape, procedural_shape, random_rotation
from ...sphere import sphere_diameter_mm
from ...volume import lps_to_ras
from ...io.volume_files import write_volume
from ..common import parse_triple, progress_bar
from ..engine_args import add_engine_arguments, engine_from_args

VERB = "inpaint"
HELP = "insert a nodule (mask, point or sampled lung location) into a CT with HR-LDM or the model-free engine"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ct", required=True, help="healthy CT in HU")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--mask", help="nodule mask on the CT grid (1 = nodule, optional 2 = solid core)")
    where.add_argument("--point", help="nodule centre x,y,z in mm (LPS; RAS with --ras)")
    where.add_argument("--sample", choices=PLACES, help="sample a centre in the inner lung or the sub-pleural shell")
    parser.add_argument("--ras", action="store_true", help="--point is in RAS (Slicer) instead of LPS")
    parser.add_argument("--labelmap", help="MAISI label map on the CT grid (lung = lobes 28-32; avoids nodules 23)")
    parser.add_argument("--lung", help="lung mask on the CT grid (when there is no label map)")
    parser.add_argument("--diameter-mm", type=float, default=10.0,
                        help="nodule diameter in mm: of the sphere with the nodule's volume, as measure reports (default 10)")
    parser.add_argument("--shapes", metavar="FILE.npz", help="shape library (default: a procedural shape)")
    parser.add_argument("--elongation", type=float, default=1.0,
                        help="procedural shape: length / width ratio, >= 1 (default 1, round)")
    parser.add_argument("--lobulation", type=float, default=0.0,
                        help="procedural shape: broad lobes, 0..1 (default 0)")
    parser.add_argument("--spiculation", type=float, default=0.0,
                        help="procedural shape: narrow spikes, 0..1 (default 0)")
    parser.add_argument("--subtype", default="solid", choices=SUBTYPES,
                        help="nodule subtype: the engine's condition and the histogram's (default solid)")
    parser.add_argument("--histogram", default=DEFAULT_HISTOGRAM_SOURCE,
                        help="library (default: a real LIDC nodule's, of the subtype and size, drawn with --seed) | "
                             "preset (the subtype's mean) | preset:K | a histogram file (JSON or 40 numbers)")
    parser.add_argument("--sampler", default=DEFAULT_INPAINT_SAMPLER, choices=INPAINT_SAMPLERS,
                        help=f"HR-LDM sampler (default {DEFAULT_INPAINT_SAMPLER}, as the paper; ddim is the fast option)")
    parser.add_argument("--steps", type=int, help="HR-LDM steps (default: " + ", ".join(
        f"{k} {v}" for k, v in DEFAULT_INPAINT_STEPS.items()) + ")")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the sampled centre, shape, rotation, library histogram and engine (default 0)")
    parser.add_argument("--mode", choices=("roi", "paper"),
                        help="HR-LDM mode, the checkpoint's (default roi: a latent ROI, input kept outside the blend; "
                             "paper: the whole-CT latent as published, every voxel decoded; spiculation channel from "
                             "mask label 3, zeros otherwise)")
    parser.add_argument("--out", required=True, help="output CT")
    parser.add_argument("--out-mask", help="also write the inserted nodule mask here")
    parser.add_argument("--json", help="write the centre, engine and timing here")
    add_engine_arguments(parser, operations=("inpaint",))


def _histogram(text: str, subtype: str) -> Optional[np.ndarray]:
    """The target histogram; None for ``library`` (the engine draws a library nodule for the mask's size)."""
    if text == DEFAULT_HISTOGRAM_SOURCE:
        return None
    if text == "preset":
        return preset_histogram(subtype)
    if text.startswith("preset:"):
        try:
            cluster = int(text.split(":", 1)[1])
        except ValueError as exc:
            raise InputError(f"--histogram preset:K needs an integer K, got {text!r}") from exc
        return preset_histogram(subtype, cluster)
    return read_histogram(text)


def _shape(args: argparse.Namespace) -> np.ndarray:
    if args.shapes:
        shape, _ = ShapeLibrary.load(args.shapes).pick(args.seed)
        return shape
    return procedural_shape(args.elongation, args.lobulation, args.spiculation, seed=args.seed)


def inpaint_request(args: argparse.Namespace) -> tuple[InpaintRequest, Optional[np.ndarray]]:
    """The request these options describe and the nodule centre (LPS mm; None for a given mask)."""
    ct = read_hashed(args.ct, read_ct) if getattr(args, "server", None) else read_ct(args.ct)  # remote: hashed once per file
    labelmap = load_labelmap(args.labelmap) if args.labelmap else None
    lung = load_labelmap(args.lung, "lung mask") if args.lung else None
    histogram = _histogram(args.histogram, args.subtype)
    lung_mask, nodules = resolve_lung(ct, labelmap, lung) if (labelmap or lung) else (None, None)
    if args.mask:
        mask, centre = load_labelmap(args.mask, "nodule mask"), None
    else:
        shape = _shape(args)
        if args.point:
            point = np.asarray(parse_triple(args.point, "--point"))
            centre = lps_to_ras(point) if args.ras else point
            ct.world_to_kji(centre)  # raises when the point is outside the CT
        else:
            if lung_mask is None:
                lung_mask, nodules = resolve_lung(ct)  # CT-threshold lung
            regions = placement_regions(lung_mask, bounding_diameter_mm(shape, args.diameter_mm), nodules=nodules)
            centre = sample_centroids(regions, args.sample, 1, seed=args.seed)[0]
        mask = place_shape(shape, ct, centre, args.diameter_mm, rotation=random_rotation(args.seed))
    request = InpaintRequest(ct=ct, nodule_mask=mask, subtype=args.subtype, histogram=histogram,
                             lung_mask=lung_mask, sampler=args.sampler, seed=args.seed,
                             steps=args.steps if args.steps is not None else DEFAULT_INPAINT_STEPS[args.sampler])
    return request, centre


def inpaint_summary(args: argparse.Namespace, request: InpaintRequest, result, centre) -> dict:
    """What ``--json`` holds: centre, engine, timing, nodule size and the engine's key figures."""
    return {"engine": result.engine, "seconds": round(result.seconds, 3), "subtype": args.subtype,
            "centre_lps_mm": None if centre is None else [round(float(v), 2) for v in centre],
            "nodule_voxels": int((request.nodule_mask.array > 0).sum()),
            "equivalent_diameter_mm": round(sphere_diameter_mm(int((request.nodule_mask.array > 0).sum())
                                                               * request.nodule_mask.voxel_volume_mm3), 2),
            **{k: v for k, v in result.info.items() if k in ("jsd", "mode", "latent_roi_size", "latent_size", "sampler", "steps",
                                                             "histogram_source", "target_histogram", "checkpoints")}}


def write_inpaint_outputs(args: argparse.Namespace, result, summary: dict) -> None:
    """Write the CT to ``--out`` (with the checkpoints' SHA-256 in its header) and, when asked, the mask to
    ``--out-mask`` and the summary to ``--json``."""
    write_volume(result.ct, args.out, metadata=result.file_metadata())
    if args.out_mask:
        write_volume(result.volumes["nodule_mask"], args.out_mask)
    if args.json:
        write_text_atomic(args.json, json.dumps(summary, indent=1))


def run(args: argparse.Namespace) -> int:
    request, centre = inpaint_request(args)
    result = engine_from_args(args).inpaint(request, progress=progress_bar("inpaint"))
    summary = inpaint_summary(args, request, result, centre)
    write_inpaint_outputs(args, result, summary)
    print(f"wrote {args.out}: a {summary['equivalent_diameter_mm']:.1f} mm nodule (equivalent sphere, "
          f"{summary['nodule_voxels']} voxels), {result.engine} engine, {result.seconds:.1f} s")
    return 0
