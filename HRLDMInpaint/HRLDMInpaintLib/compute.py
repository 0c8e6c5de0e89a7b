"""What HRLDMInpaint computes, without Slicer: where the nodule goes, its mask (procedural, library or
a segmented nodule's shape), its target HU histogram (preset or a nodule's, shifted / widened) and the
inpainted CT from the HR-LDM or the model-free engine."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from nodsynth.engines import Engine, InpaintRequest
from nodsynth.engines.base import DEFAULT_INPAINT_SAMPLER, DEFAULT_INPAINT_STEPS
from nodsynth.histogram_library import library_histogram
from nodsynth.errors import InputError
from nodsynth.place import placement_regions, resolve_lung, sample_centroids
from nodsynth.presets import nodule_histogram, preset_histogram, transform_histogram
from nodsynth.progress import CancelToken, ProgressFn
from nodsynth.shapes import ShapeLibrary, place_shape, procedural_shape, random_rotation, shape_from_mask
from nodsynth.volume import Volume

from NodMAISICommon.labelmaps import split_lung_input

SHAPE_SOURCES = ("procedural", "library", "segment")
HRLDM_MODES = ("roi", "paper")
"""HR-LDM modes: roi (fast, the default) and paper (whole-CT latent as published; the checkpoint must be one
trained with ``--mode paper``)."""
HISTOGRAM_SOURCES = ("library", "preset", "segment")
"""library: a real LIDC nodule's histogram of the subtype and about the diameter (the default, as the
engine's own default target); preset: the subtype's mean; segment: a segmented nodule's."""


@dataclass(frozen=True)
class ShapeOptions:
    """How the nodule mask is made."""

    source: str = "procedural"
    diameter_mm: float = 10.0
    elongation: float = 1.0
    lobulation: float = 0.0
    spiculation: float = 0.0
    library_path: str = ""  # a shape library .npz (``nodsynth shapes build``) for source "library"
    seed: int = 0


def sample_location(ct: Volume, lung: Optional[Volume], diameter_mm: float, where: str = "inner",
                    seed: int = 0) -> np.ndarray:
    """An LPS centroid (mm) where a sphere of ``diameter_mm`` (the nodule's equivalent sphere) fits: inner lung or
    the sub-pleural shell."""
    labelmap, mask = split_lung_input(lung)
    lung_region, nodules = resolve_lung(ct, labelmap, mask)
    regions = placement_regions(lung_region, diameter_mm, nodules)
    return sample_centroids(regions, where, 1, seed)[0]


def nodule_mask(ct: Volume, centroid_lps: Sequence[float], options: ShapeOptions,
                segment_mask: Optional[Volume] = None) -> Volume:
    """The nodule's 0/1 mask on the CT grid, centred at ``centroid_lps``, of equivalent-sphere diameter ``diameter_mm``."""
    if options.source not in SHAPE_SOURCES:
        raise InputError(f"unknown shape source {options.source!r}; use one of {', '.join(SHAPE_SOURCES)}")
    if options.source == "procedural":
        shape = procedural_shape(options.elongation, options.lobulation, options.spiculation, options.seed)
    elif options.source == "library":
        if not options.library_path:
            raise InputError("choose a shape library file (.npz, built with `nodsynth shapes build`)")
        shape, _ = ShapeLibrary.load(options.library_path).pick(options.seed)
    else:
        if segment_mask is None:
            raise InputError("choose a segmentation whose first segment gives the nodule shape")
        shape, _ = shape_from_mask(segment_mask)
    return place_shape(shape, ct, centroid_lps, options.diameter_mm, rotation=random_rotation(options.seed))


def target_histogram(source: str, subtype: str, shift_hu: float = 0.0, widen: float = 1.0,
                     ct: Optional[Volume] = None, segment_mask: Optional[Volume] = None, diameter_mm: float = 10.0,
                     seed: int = 0) -> np.ndarray:
    """The 40-bin target histogram: a library nodule's of ``subtype`` and about ``diameter_mm`` (drawn with
    ``seed``), the subtype's preset or a segmented nodule's, shifted and widened."""
    if source not in HISTOGRAM_SOURCES:
        raise InputError(f"unknown histogram source {source!r}; use one of {', '.join(HISTOGRAM_SOURCES)}")
    if source == "library":
        base = library_histogram(subtype, diameter_mm, seed)[0]
    elif source == "preset":
        base = preset_histogram(subtype)
    else:
        if ct is None or segment_mask is None:
            raise InputError("a histogram taken from a nodule needs the CT and a segmentation of that nodule")
        base = nodule_histogram(ct, segment_mask)
    return transform_histogram(base, shift_hu=shift_hu, widen=widen)


def select_mode(engine: Engine, mode: str) -> None:
    """Run a local HR-LDM engine in ``mode``; a server's HR-LDM runs in the mode set there (only roi may be asked)."""
    if hasattr(engine, "select_mode"):
        engine.select_mode(mode)
    elif mode != HRLDM_MODES[0] and engine.name == "remote":
        raise InputError(f"HR-LDM's {mode} mode is chosen here for local runs only; a server runs HR-LDM in the mode "
                         "of its nodsynth serve --engine-options (roi unless set): choose roi or run locally")


def inpaint(engine: Engine, ct: Volume, mask: Volume, subtype: str, histogram: np.ndarray,
            lung: Optional[Volume] = None, steps: int = DEFAULT_INPAINT_STEPS[DEFAULT_INPAINT_SAMPLER],
            sampler: str = DEFAULT_INPAINT_SAMPLER, seed: int = 0, mode: str = HRLDM_MODES[0],
            progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> Volume:
    """The CT with the nodule inserted. HR-LDM ``mode`` ``roi``: voxels outside the engine's ROI stay
    bit-identical; ``paper``: the whole CT is decoded (as published); the model-free engine has no mode."""
    select_mode(engine, mode)
    labelmap, lung_mask = split_lung_input(lung)
    lung_region = resolve_lung(ct, labelmap, lung_mask)[0] if lung is not None else None
    request = InpaintRequest(ct=ct, nodule_mask=mask, subtype=subtype, histogram=histogram, lung_mask=lung_region,
                             steps=int(steps), sampler=sampler, seed=int(seed))
    return engine.inpaint(request, progress=progress, cancel=cancel).ct
