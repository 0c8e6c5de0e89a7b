"""MAISI-v2 networks from MONAI: configuration, construction, checkpoints, VAE encode/decode.

Shared by the NodMAISI engine, its ControlNet trainer and the HR-LDM engine (which reuses the
MAISI autoencoder). Names here are a stable API:

* :func:`load_config` -- ``"maisi_v2"`` / ``"maisi_tiny"`` / a JSON path / a dict -> config dict;
* :func:`build_networks`, :func:`build_autoencoder`, :func:`build_diffusion_unet`,
  :func:`build_controlnet` -- networks on a device (CPU: float32, float16 norms and flash attention off);
* :func:`load_autoencoder`, :func:`load_diffusion_unet`, :func:`load_controlnet` and the matching
  ``save_*`` -- the real checkpoint formats, loaded strictly;
* :func:`encode_ct` / :func:`decode_latent` -- HU volume <-> latent with MAISI's intensity mapping
  (-1000..1000 HU <-> 0..1, clipped) and sliding-window tiling for large volumes.

Importing this package imports torch and MONAI.
"""
from .checkpoints import (load_autoencoder, load_controlnet, load_diffusion_unet, save_autoencoder,
                          save_controlnet, save_diffusion_unet)
from .codec import decode_latent, encode_ct, hu_to_unit, unit_to_hu
from .config import config_names, load_config
from .device import autocast_context, resolve_device
from .networks import (MaisiNetworks, build_autoencoder, build_controlnet, build_diffusion_unet,
                       build_networks, latent_downsample, randomize_zero_parameters,
                       unet_size_multiple)

__all__ = [
    "MaisiNetworks", "autocast_context", "build_autoencoder", "build_controlnet",
    "build_diffusion_unet", "build_networks", "config_names", "decode_latent", "encode_ct", "hu_to_unit", "latent_downsample",
    "load_autoencoder", "load_config", "load_controlnet", "load_diffusion_unet", "randomize_zero_parameters",
    "resolve_device",
    "save_autoencoder", "save_controlnet", "save_diffusion_unet", "unet_size_multiple", "unit_to_hu",
]
