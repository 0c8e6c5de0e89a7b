"""Weights folders in the real checkpoint formats, with tiny random networks: what the engines load
in tests (no weights can be downloaded). NodMAISI: the NoMAISI file names of the ``maisi_tiny``
configuration; HR-LDM: ``hrldm.pt`` (its tiny configuration inside) and the matching ``autoencoder.pt``."""
from __future__ import annotations

from pathlib import Path

NODMAISI_SCALE_FACTOR = 0.8


def nodmaisi_tiny_weights(folder: Path, with_controlnet: bool = True) -> Path:
    """Random ``maisi_tiny`` networks (zero-initialised layers randomised) saved under the NoMAISI names."""
    import torch

    from nodsynth.engines.maisi import (build_networks, randomize_zero_parameters, save_autoencoder,
                                        save_controlnet, save_diffusion_unet)

    torch.manual_seed(1)
    nets = build_networks("maisi_tiny", "cpu")
    for seed, module in enumerate((nets.autoencoder, nets.diffusion_unet, nets.controlnet)):
        randomize_zero_parameters(module, seed)
    folder.mkdir(parents=True, exist_ok=True)
    save_autoencoder(nets.autoencoder, folder / "autoencoder.pt")
    save_diffusion_unet(nets.diffusion_unet, NODMAISI_SCALE_FACTOR, folder / "diffusion_unet.pt")
    if with_controlnet:
        save_controlnet(nets.controlnet, folder / "controlnet_nodmaisi.pt")
    return folder


def hrldm_tiny_weights(folder: Path, config_name: str = "hrldm_tiny") -> Path:
    """A random ``hrldm_tiny`` (or ``hrldm_paper_tiny``) denoiser (zero layers given small weights) and its autoencoder."""
    import torch

    from nodsynth.engines.hrldm.checkpoint import save_hrldm_checkpoint
    from nodsynth.engines.hrldm.config import load_hrldm_config
    from nodsynth.engines.hrldm.network import HRLDMNet
    from nodsynth.engines.maisi import build_autoencoder, save_autoencoder

    config = load_hrldm_config(config_name)
    torch.manual_seed(0)
    network = HRLDMNet(config).eval()
    with torch.no_grad():
        for parameter in network.parameters():
            if parameter.ndim > 1 and not parameter.any():
                parameter.normal_(0.0, 0.05)
    folder.mkdir(parents=True, exist_ok=True)
    save_hrldm_checkpoint(folder / "hrldm.pt", network, config, scale_factor=1.0)
    save_autoencoder(build_autoencoder(config["autoencoder_config"], "cpu"), folder / "autoencoder.pt")
    return folder
