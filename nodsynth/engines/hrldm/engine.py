"""``HRLDMEngine``: histogram-regularised latent diffusion nodule inpainting (engine name ``hrldm``).

Weights (never downloaded; looked up by :mod:`nodsynth.weights`, role -> file):
``autoencoder`` (the MAISI VAE NodMAISI uses, ``autoencoder.pt`` / ``autoencoder_v1.pt``) and
``hrldm`` (``hrldm.pt``, format in :mod:`nodsynth.engines.hrldm.checkpoint`). Networks are loaded
on the first ``inpaint`` call. Tests and benchmarks build an engine from in-memory networks with
:meth:`HRLDMEngine.from_networks`.

``mode``: ``roi`` (the default: a latent ROI around the nodule, :mod:`.inference`) or ``paper`` (the
whole-CT latent as published, :mod:`.paper_inference`). A checkpoint runs only in the mode it was
trained in; another is refused naming both.
"""
from __future__ import annotations

import time
from typing import Any, Optional

import torch

from ...errors import InputError
from ...progress import CancelToken, ProgressFn
from ...weights import WeightFile, checkpoint_records, find_weights, register_weights, weights_report
from ..base import SUBTYPES, Engine, InpaintRequest, SynthesisResult, subtype_index
from ..maisi import load_autoencoder, resolve_device
from .checkpoint import load_hrldm_checkpoint, require_mode
from .config import MODES, config_mode
from .inference import inpaint_roi
from .network import HRLDMNet
from .paper_inference import inpaint_whole

WEIGHT_FILES = (
    WeightFile("autoencoder", ("autoencoder.pt", "autoencoder_v1.pt"),
               "MAISI VAE (frozen; the same checkpoint NodMAISI uses), plain state dict"),
    WeightFile("hrldm", ("hrldm.pt", "hrldm*.pt"),
               "HR-LDM denoiser {format, config, network_state_dict, scale_factor, step}"),
)
register_weights("hrldm", *WEIGHT_FILES)


class HRLDMEngine(Engine):
    name = "hrldm"

    def __init__(self, weights_dir: Optional[str] = None, device: Optional[str] = None, mode: str = "roi",
                 **_ignored: Any) -> None:
        self.weights_dir = weights_dir
        self.device = resolve_device(device)
        self.mode = ""
        self.select_mode(mode)
        self._loaded: Optional[tuple[HRLDMNet, torch.nn.Module, dict, float]] = None
        self.checkpoints: dict[str, dict[str, Any]] = {}  # role -> file, SHA-256, size (empty for in-memory networks)

    def select_mode(self, mode: str) -> None:
        """Run in ``mode`` from now on (``roi`` or ``paper``); the networks' mode is checked at ``inpaint``."""
        if mode not in MODES:
            raise InputError(f"unknown HR-LDM mode {mode!r}; use one of {', '.join(MODES)}")
        self.mode = mode

    @classmethod
    def from_networks(cls, network: HRLDMNet, autoencoder: torch.nn.Module, config: dict,
                      scale_factor: float = 1.0) -> "HRLDMEngine":
        """An engine over networks already in memory (on the device of ``network``), in the configuration's mode."""
        engine = cls(device=str(next(network.parameters()).device), mode=config_mode(config))
        engine._loaded = (network.eval(), autoencoder.eval(), config, float(scale_factor))
        return engine

    def _networks(self) -> tuple[HRLDMNet, torch.nn.Module, dict, float]:
        if self._loaded is None:
            files = find_weights(self.name, self.weights_dir)
            self.checkpoints = checkpoint_records(self.name, files)
            network, config, scale_factor, _ = load_hrldm_checkpoint(files["hrldm"], self.device, self.mode)
            autoencoder = load_autoencoder(files["autoencoder"], config["autoencoder_config"], self.device)
            for parameter in autoencoder.parameters():
                parameter.requires_grad_(False)
            self._loaded = (network, autoencoder.eval(), config, scale_factor)
        return self._loaded

    def inpaint(self, request: InpaintRequest, progress: Optional[ProgressFn] = None,
                cancel: Optional[CancelToken] = None) -> SynthesisResult:
        from ...histogram_library import target_histogram_of

        start = time.perf_counter()
        network, autoencoder, config, scale_factor = self._networks()
        require_mode(config_mode(config), self.mode, f"the loaded {config['name']!r} network")
        subtype = SUBTYPES[subtype_index(request.subtype)]
        histogram, source = target_histogram_of(request)
        options = dict(sampler=request.sampler, steps=request.steps, seed=request.seed, progress=progress, cancel=cancel)
        if self.mode == "paper":
            ct, info = inpaint_whole(request.ct, request.nodule_mask, subtype, histogram, network, autoencoder, config,
                                     scale_factor, **options)
        else:
            ct, info = inpaint_roi(request.ct, request.nodule_mask, subtype, histogram, network, autoencoder, config,
                                   scale_factor, lung_mask=request.lung_mask, **options)
        mask = request.nodule_mask.with_array((request.nodule_mask.array > 0).astype("uint8"))
        return SynthesisResult({"ct": ct, "nodule_mask": mask}, self.name, time.perf_counter() - start,
                               {**info, "histogram_source": source, "config": config["name"], "device": str(self.device),
                                "checkpoints": self.checkpoints})

    def describe(self) -> dict:
        report = weights_report(self.name, self.weights_dir, with_hash=False)
        return {"name": self.name, "weights_required": True, "weights_found": report["complete"],
                "operations": ["inpaint"], "mode": self.mode, "device": str(self.device), "weights": report["where"]}
