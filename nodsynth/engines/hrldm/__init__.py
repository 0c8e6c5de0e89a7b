"""HR-LDM: histogram-regularised latent diffusion nodule inpainting (seed 001).

* :mod:`.config`     network configurations ``Resources/configs/hrldm*.json``;
* :mod:`.network`    the denoiser (MONAI ``DiffusionModelUNet`` + histogram MLP), schedulers, truncated decoder;
* :mod:`.softhist`   triangular-kernel soft histograms (Eq. 7, bins per mode) and the Jensen-Shannon divergence in torch;
* :mod:`.inference`  Algorithm 2 on a latent ROI with background anchoring (Eq. 10) and feathered blending (``roi`` mode);
* :mod:`.paper_inference`, :mod:`.paper_masks`  ``paper`` mode: Algorithm 2 on the whole-CT latent, the C = 3 mask channels;
* :mod:`.checkpoint` the ``hrldm.pt`` checkpoint format;
* :mod:`.engine`     :class:`HRLDMEngine` (registered as ``hrldm``).

Training (Algorithm 1) lives in :mod:`nodsynth.train.hrldm`. Importing this package imports torch and MONAI.
"""
from .checkpoint import load_hrldm_checkpoint, save_hrldm_checkpoint
from .config import hrldm_config_names, load_hrldm_config
from .engine import WEIGHT_FILES, HRLDMEngine
from .network import HRLDMNet, TruncatedDecoder, build_scheduler
from .softhist import feature_histograms, js_divergence, soft_histogram

__all__ = ["HRLDMEngine", "HRLDMNet", "TruncatedDecoder", "WEIGHT_FILES", "build_scheduler", "feature_histograms",
           "hrldm_config_names", "js_divergence", "load_hrldm_checkpoint", "load_hrldm_config",
           "save_hrldm_checkpoint", "soft_histogram"]
