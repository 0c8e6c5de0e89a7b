"""``NodMAISIEngine``: MAISI-v2 rectified flow + a NodMAISI ControlNet, label map -> CT.

* :meth:`NodMAISIEngine.twin` -- a whole CT from an anatomy label map (nodule = 23): the published
  pipeline (8 bit-planes, spacing x 100, CT class, RFlowScheduler, 30 steps, latent / scale_factor,
  sliding-window decode in the published 80 x 80 x 64 latent windows with overlap 0.25 on CUDA
  (smaller on a CPU without the memory, :func:`~nodsynth.engines.maisi.codec.decode_window`), clip to
  -1000..1000 HU, label 0 -> -1000 HU). Exposed in three pieces (:meth:`prepare_twin`,
  :meth:`sample_twin`, :meth:`decode_twin`) for callers that need the latent.
* :meth:`NodMAISIEngine.edit` -- ROI-local re-synthesis after a label-map edit: only a box around
  the change is regenerated, with the latent outside the change anchored to the encoded original
  at every step; only the part of the box the blend uses (plus a 4-latent-voxel halo) is decoded
  and blended in with a feathered mask; voxels outside it are untouched. The box is sampled on the
  timestep schedule of the whole CT (the one a twin of this CT gets), not of the box alone.

Each result's ``info`` holds the timesteps, the decode window, tiles and seconds of every stage.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch

from ...errors import InputError, plain
from ...progress import CancelToken, ProgressFn, check_cancel, no_progress, scaled_progress
from ...volume import Volume, require_same_grid
from ...weights import checkpoint_records, find_weights, weights_report
from ..base import EditRequest, Engine, SynthesisResult, TwinRequest
from ..maisi import (MaisiNetworks, decode_latent, encode_ct, latent_downsample, load_autoencoder, load_config,
                     load_controlnet, load_diffusion_unet, resolve_device, unet_size_multiple)
from ..maisi.codec import decode_window, window_count
from ..maisi.grid import centred_grid, resample_onto
from ..maisi.limits import XY_SPACING_MM, Z_SPACING_MM, grid_problems, valid_grid
from ..maisi.orientation import NetworkAxes
from . import roi
from .conditioning import label_bitplanes, labels_as_uint8, spacing_tensor
from .latent_cache import LatentCache, box_key
from .sampling import Anchor, as_noise, make_scheduler, sample_latent, schedule_timesteps, seeded_noise

AIR_HU = -1000.0
DEFAULT_ROI_BOX_VOXELS = 128
DECODE_HALO_LATENT = 4  # latent voxels decoded around the blended region (16 image voxels)


@dataclass
class TwinPlan:
    """Everything :meth:`NodMAISIEngine.twin` derives from a request before sampling."""

    output_labels: Volume     # label ids on the output grid
    work_labels: Volume       # label ids on the grid the networks run on (differs when resampled)
    axes: NetworkAxes
    labels_xyz: np.ndarray    # work labels in network axes (x, y, z RAS)
    spacing_xyz_mm: tuple[float, float, float]
    noise: torch.Tensor       # [1, C, x/4, y/4, z/4]
    steps: int
    resampled: bool


def _output_grid(labelmap: Volume, size_ijk, spacing_mm) -> Optional[Volume]:
    """The requested output grid centred on the label map, or None for the label map's own grid."""
    if size_ijk is None and spacing_mm is None:
        return None
    spacing = np.asarray(spacing_mm if spacing_mm is not None else labelmap.spacing, dtype=float)
    if np.any(spacing <= 0):
        raise InputError(f"output spacing must be positive millimetres, got {spacing.tolist()}")
    if size_ijk is None:
        size = np.maximum(np.rint(np.asarray(labelmap.size_ijk) * labelmap.spacing / spacing), 1).astype(int)
    else:
        size = np.asarray(size_ijk, dtype=int)
        if size.shape != (3,) or np.any(size < 1):
            raise InputError(f"output size must be three positive voxel counts, got {plain(size_ijk)!r}")
    return centred_grid(labelmap, size, spacing)


def _size_ijk(axes: NetworkAxes, values_xyz) -> list:
    """Values along the network axes x, y, z -> along the volume axes i, j, k."""
    out = [None, None, None]
    for w in range(3):
        out[2 - axes.perm[w]] = values_xyz[w]
    return out


class NodMAISIEngine(Engine):
    """NodMAISI twin synthesis and ROI-local edits (see the module docstring)."""

    name = "nodmaisi"

    def __init__(self, weights_dir: Optional[str] = None, device: Optional[str] = None,
                 config: str | Mapping[str, Any] = "maisi_v2", networks: Optional[MaisiNetworks] = None,
                 roi_box_voxels: int = DEFAULT_ROI_BOX_VOXELS, allow_baseline_controlnet: bool = False,
                 **_ignored: Any) -> None:
        """``weights_dir``: folder searched first (else ``NODSYNTH_WEIGHTS`` / the user config file);
        ``device``: torch device (default CUDA when available); ``config``: network configuration name,
        JSON path or dict; ``networks``: already-built networks (tests, benchmarks), skipping the
        weights lookup; ``roi_box_voxels``: smallest edge (voxels) of the box an edit regenerates;
        ``allow_baseline_controlnet``: accept MAISI-v2's baseline ``controlnet_3d_rflow-ct.pt`` when no
        NodMAISI ControlNet is found (refused otherwise, see :mod:`nodsynth.weights`)."""
        self.config = load_config(networks.config if networks is not None else config)
        self.weights_dir = weights_dir
        self.device = networks.device if networks is not None else resolve_device(device)
        self._networks = networks
        self.roi_box_voxels = int(roi_box_voxels)
        self.allow_baseline_controlnet = bool(allow_baseline_controlnet)
        self.checkpoints: dict[str, dict[str, Any]] = {}  # role -> file, SHA-256, size, fallback
        self.downsample = latent_downsample(self.config)
        self.size_multiple = self.downsample * unet_size_multiple(self.config)
        self._encoded = LatentCache()  # repeated edits of one scan skip the VAE encode

    # ------------------------------------------------------------ networks
    @property
    def networks(self) -> MaisiNetworks:
        """The networks, loaded from the weights folder on first use."""
        if self._networks is None:
            self._networks = self._load()
        return self._networks

    def _load(self) -> MaisiNetworks:
        files = find_weights(self.name, self.weights_dir, allow_fallback=self.allow_baseline_controlnet)
        self.checkpoints = checkpoint_records(self.name, files)
        autoencoder = load_autoencoder(files["autoencoder"], self.config, self.device)
        unet, scale_factor = load_diffusion_unet(files["diffusion_unet"], self.config, self.device)
        controlnet = load_controlnet(files["controlnet"], unet, self.config, self.device).eval()
        return MaisiNetworks(autoencoder, unet, controlnet, self.config, self.device, scale_factor)

    def describe(self) -> dict[str, Any]:
        report = weights_report(self.name, self.weights_dir, with_hash=False)
        usable = report["complete"] or (self.allow_baseline_controlnet and all(
            f["found"] or f["fallback"] for f in report["files"] if f["required"]))
        return {"name": self.name, "weights_required": True,
                "weights_found": self._networks is not None or usable,
                "allow_baseline_controlnet": self.allow_baseline_controlnet,
                "device": str(self.device), "config": self.config.get("name"),
                "operations": ["twin", "edit"], "weights": report}

    # ------------------------------------------------------------ twin
    def prepare_twin(self, request: TwinRequest) -> TwinPlan:
        """Check and resample the label map, pick the network grid and the initial noise."""
        labels = request.labelmap.with_array(labels_as_uint8(request.labelmap.array))
        target = _output_grid(labels, request.output_size_ijk, request.output_spacing_mm)
        output_labels = labels if target is None else resample_onto(labels, target, nearest=True, default_value=0)
        axes = NetworkAxes.of(output_labels)
        size_xyz, spacing_xyz = axes.sizes_xyz(output_labels), axes.spacing_xyz(output_labels)
        problems = grid_problems(size_xyz, spacing_xyz)
        work, resampled = output_labels, False
        if problems:
            if not request.resample_to_valid:
                raise InputError("the label map's grid is outside MAISI's limits: " + "; ".join(problems)
                                 + ". Resample it to a valid grid (resample_to_valid=True, CLI --resample); "
                                 "the result is resampled back onto the input grid.")
            size_xyz, spacing_xyz = valid_grid(size_xyz, spacing_xyz)
            grid = centred_grid(output_labels, _size_ijk(axes, size_xyz), _size_ijk(axes, spacing_xyz))
            work, resampled = resample_onto(output_labels, grid, nearest=True, default_value=0), True
        labels_xyz = np.ascontiguousarray(axes.to_network(work.array))
        latent_shape = (1, int(self.config["latent_channels"])) + tuple(n // self.downsample for n in labels_xyz.shape)
        noise = (as_noise(request.initial_noise, latent_shape) if request.initial_noise is not None
                 else seeded_noise(latent_shape, request.seed))
        return TwinPlan(output_labels, work, axes, labels_xyz, tuple(spacing_xyz), noise, int(request.steps), resampled)

    def sample_twin(self, plan: TwinPlan, progress: Optional[ProgressFn] = None,
                    cancel: Optional[CancelToken] = None) -> torch.Tensor:
        """The final diffusion latent ``[1, C, x/4, y/4, z/4]`` of a prepared twin."""
        nets = self.networks
        return sample_latent(nets.controlnet, nets.diffusion_unet, make_scheduler(self.config), plan.noise,
                             label_bitplanes(plan.labels_xyz, self.device),
                             spacing_tensor(plan.spacing_xyz_mm, self.device), plan.steps,
                             progress=progress, cancel=cancel)

    @property
    def window_latent(self) -> list[int]:
        """Latent window of the tiled VAE encode/decode on this engine's device."""
        return decode_window(self.config, self.device)

    def decode_twin(self, plan: TwinPlan, latent: torch.Tensor, progress: Optional[ProgressFn] = None,
                    cancel: Optional[CancelToken] = None, window_latent: Optional[Sequence[int]] = None) -> Volume:
        """Decode a twin latent to HU on the output grid; label 0 -> -1000 HU. ``window_latent``: the
        decode window (default :attr:`window_latent`)."""
        nets = self.networks
        window = self.window_latent if window_latent is None else window_latent
        ct_xyz = decode_latent(nets.autoencoder, latent, nets.scale_factor, window,
                               self.config["decode"]["overlap"], progress, cancel)
        ct_xyz[plan.labels_xyz == 0] = AIR_HU
        ct = plan.work_labels.with_array(plan.axes.from_network(ct_xyz).astype(np.float32))
        if plan.resampled:
            ct = resample_onto(ct, plan.output_labels, nearest=False, default_value=AIR_HU)
            ct.array[plan.output_labels.array == 0] = AIR_HU
        return ct

    def twin(self, request: TwinRequest, progress: Optional[ProgressFn] = None,
             cancel: Optional[CancelToken] = None) -> SynthesisResult:
        start = time.perf_counter()
        report = progress or no_progress
        plan = self.prepare_twin(request)
        report(0.02, "loading networks")
        nets = self.networks
        check_cancel(cancel)
        t0 = time.perf_counter()
        latent = self.sample_twin(plan, scaled_progress(report, 0.05, 0.8), cancel)
        t1 = time.perf_counter()
        window = self.window_latent  # read once: the window decoded with is the one reported
        ct = self.decode_twin(plan, latent, scaled_progress(report, 0.8, 0.99), cancel, window)
        t2 = time.perf_counter()
        report(1.0, "done")
        latent_size = tuple(int(n) for n in plan.noise.shape[2:])
        info = {"steps": plan.steps, "seed": request.seed if request.initial_noise is None else None,
                "timesteps": schedule_timesteps(self.config, plan.steps, int(np.prod(latent_size))),
                "resampled_to_valid_grid": plan.resampled, "network_grid_size_ijk": list(plan.work_labels.size_ijk),
                "network_grid_spacing_mm": plan.work_labels.spacing.tolist(), "sampling_seconds": t1 - t0,
                "decode_window_latent": window,
                "decode_tiles": window_count(latent_size, window, self.config["decode"]["overlap"]),
                "decode_seconds": t2 - t1, "config": self.config.get("name"), "scale_factor": nets.scale_factor,
                "device": str(self.device), "checkpoints": self.checkpoints}
        return SynthesisResult({"ct": ct}, self.name, time.perf_counter() - start, info)

    # ------------------------------------------------------------ ROI edit
    def _check_edit_spacing(self, ct: Volume) -> None:
        axes = NetworkAxes.of(ct)
        sx, sy, sz = axes.spacing_xyz(ct)
        if not (XY_SPACING_MM[0] <= sx <= XY_SPACING_MM[1] and XY_SPACING_MM[0] <= sy <= XY_SPACING_MM[1]
                and Z_SPACING_MM[0] <= sz <= Z_SPACING_MM[1]):
            raise InputError(f"the CT spacing {sx:g} x {sy:g} x {sz:g} mm is outside MAISI's range (x/y "
                             f"{XY_SPACING_MM[0]}..{XY_SPACING_MM[1]} mm, z {Z_SPACING_MM[0]}..{Z_SPACING_MM[1]} mm)")

    def edit(self, request: EditRequest, progress: Optional[ProgressFn] = None,
             cancel: Optional[CancelToken] = None) -> SynthesisResult:
        """Regenerate only a box around the changed labels; voxels outside the box stay bit-identical."""
        start = time.perf_counter()
        report = progress or no_progress
        ct, before, after = request.ct, request.labelmap, request.edited_labelmap
        require_same_grid(ct, before, "CT", "label map")
        require_same_grid(ct, after, "CT", "edited label map")
        if request.margin_mm < 0:
            raise InputError(f"margin_mm must be >= 0, got {request.margin_mm}")
        self._check_edit_spacing(ct)
        before_ids = labels_as_uint8(before.array, "label map")
        after_ids = labels_as_uint8(after.array, "edited label map")
        changed = before_ids != after_ids
        spacing_kji = ct.spacing[::-1]
        box_start, box_stop = roi.edit_box(changed, spacing_kji, request.margin_mm, self.roi_box_voxels,
                                           self.size_multiple)
        box = tuple(slice(a, b) for a, b in zip(box_start, box_stop))
        nets = self.networks
        axes = NetworkAxes.of(ct)
        changed_box = changed[box]
        region = roi.distance_to_mm(changed_box, spacing_kji) <= request.margin_mm
        window_latent, overlap = self.window_latent, self.config["decode"]["overlap"]
        whole_ct_numel = int(np.prod([n // self.downsample for n in ct.shape_kji]))

        report(0.02, "encoding the original box")
        hits_before = self._encoded.hits
        t0 = time.perf_counter()
        ct_box_xyz = axes.to_network(ct.array[box])
        z_bg = self._encoded.get_or_encode(
            box_key(ct_box_xyz, axes.spacing_xyz(ct)),
            lambda: encode_ct(nets.autoencoder, ct_box_xyz.astype(np.float32), window_latent,
                              overlap, self.downsample, cancel=cancel).float() * nets.scale_factor)
        encode_cached = self._encoded.hits > hits_before
        keep = torch.as_tensor(np.ascontiguousarray(roi.latent_keep_mask(axes.to_network(region), self.downsample)),
                               device=self.device)[None, None].expand_as(z_bg)
        labels_xyz = np.ascontiguousarray(axes.to_network(after_ids[box]))
        t1 = time.perf_counter()
        latent = sample_latent(nets.controlnet, nets.diffusion_unet, make_scheduler(self.config),
                               seeded_noise(tuple(z_bg.shape), request.seed), label_bitplanes(labels_xyz, self.device),
                               spacing_tensor(axes.spacing_xyz(ct), self.device), request.steps,
                               Anchor(z_bg, keep), scaled_progress(report, 0.05, 0.85), cancel, whole_ct_numel)
        t2 = time.perf_counter()
        weights = roi.feather_weights(changed_box, spacing_kji, request.margin_mm)
        window = roi.latent_window(axes.to_network(weights) > 0, self.downsample, DECODE_HALO_LATENT)
        decoded = decode_latent(nets.autoencoder, latent[(slice(None), slice(None)) + window], nets.scale_factor,
                                window_latent, overlap, scaled_progress(report, 0.85, 0.97), cancel)
        synth_xyz = np.full(labels_xyz.shape, AIR_HU, dtype=np.float32)
        synth_xyz[tuple(slice(w.start * self.downsample, w.stop * self.downsample) for w in window)] = decoded
        synth_xyz[labels_xyz == 0] = AIR_HU
        t3 = time.perf_counter()
        check_cancel(cancel)
        out = ct.array.copy()
        out[box] = roi.blend(ct.array[box], axes.from_network(synth_xyz), weights)
        report(1.0, "done")
        info = {"box_start_kji": list(box_start), "box_stop_kji": list(box_stop),
                "changed_voxels": int(changed.sum()), "steps": int(request.steps), "seed": request.seed,
                "timesteps": schedule_timesteps(self.config, request.steps, whole_ct_numel),
                "schedule_latent_voxels": whole_ct_numel, "encode_cached": encode_cached,
                "decoded_latent_window": [[w.start, w.stop] for w in window],
                "decode_window_latent": window_latent,
                "encode_tiles": 0 if encode_cached else window_count(
                    ct_box_xyz.shape, [w * self.downsample for w in window_latent], overlap),
                "decode_tiles": window_count(tuple(w.stop - w.start for w in window), window_latent, overlap),
                "encode_seconds": t1 - t0, "sampling_seconds": t2 - t1, "decode_seconds": t3 - t2,
                "config": self.config.get("name"), "device": str(self.device), "checkpoints": self.checkpoints}
        return SynthesisResult({"ct": ct.with_array(out)}, self.name, time.perf_counter() - start, info)
