"""``nodsynth encode``: precompute the latent embeddings training reads, as the published preparation does.

The recipe of NoMAISI's ``scripts/diff_model_create_training_data.py``: each CT is reoriented to RAS,
its intensities clipped to -1000..1000 HU and mapped to 0..1, resized (trilinear) to the nearest
multiple of 128 voxels per axis (Python ``round``, ties to even: 300 -> 256, 320 -> 256, 330 -> 384,
at least 128) and encoded by the MAISI autoencoder. The published script keeps a sampled latent
(``z_mu + z_sigma * eps``); here the posterior mean is kept unless ``sample`` (then ``eps`` comes from
a generator seeded by the seed and the CT's SHA-256, so it does not depend on the list's order).
Large volumes are encoded in tiles on small devices (:func:`~nodsynth.engines.maisi.codec.encode_unit`).

One file ``<stem>_emb.pt`` per CT (atomic, readable with ``weights_only``): the unscaled latent
``[1, C, x, y, z]`` (network axes, RAS), the resized image's size and spacing (mm, x y z), the
label map resized nearest-neighbour (uint8 ``[X, Y, Z]``) when given, the autoencoder's and the
source's SHA-256. A CT whose file is already there from the same source, autoencoder and mode is
skipped, so an interrupted run resumes; one made otherwise is refused.
The batch op ``encode`` (:mod:`nodsynth.batch.ops.encode`) writes the same file for one manifest row.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import InputError
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress
from ..volume import Volume, require_same_grid
from ..io.volume_files import volume_stem

FORMAT = "nodsynth-embedding-1"
SUFFIX = "_emb.pt"
PUBLISHED_MULTIPLE = 128
IDENTITY_NAMES = {"source_sha256": "CT (SHA-256)", "vae_sha256": "autoencoder (SHA-256)", "mode": "mode (mean or sample)",
                  "seed": "--seed"}
"""What makes an embedding file this run's, as named in messages."""


def published_size(voxels: int, multiple: int = PUBLISHED_MULTIPLE) -> int:
    """The size the published preparation resizes an axis of ``voxels`` to (nearest multiple, ties to even)."""
    return int(max(round(float(voxels) / float(multiple)), 1) * multiple)


@dataclass
class Prepared:
    """A CT as the autoencoder takes it: 0..1, RAS network axes, resized."""

    image: Any                       # [1, 1, X, Y, Z] float32 tensor
    spacing_xyz: tuple[float, float, float]
    labels: Optional[np.ndarray]     # [X, Y, Z] uint8, or None


def prepare(ct: Volume, labelmap: Optional[Volume] = None, multiple: int = PUBLISHED_MULTIPLE) -> Prepared:
    """Reorient, map intensities and resize ``ct`` (and its label map, nearest) as published."""
    import torch
    import torch.nn.functional as F

    from ..engines.maisi.codec import hu_to_unit
    from ..engines.maisi.orientation import NetworkAxes

    axes = NetworkAxes.of(ct)
    unit = hu_to_unit(torch.as_tensor(np.ascontiguousarray(axes.to_network(ct.array)), dtype=torch.float32))
    size = [published_size(n, multiple) for n in unit.shape]
    image = F.interpolate(unit[None, None], size=size, mode="trilinear", align_corners=False)
    spacing = tuple(float(s) * n / m for s, n, m in zip(axes.spacing_xyz(ct), unit.shape, size))
    labels = None
    if labelmap is not None:
        require_same_grid(ct, labelmap, "CT", "label map")
        ids = torch.as_tensor(np.ascontiguousarray(axes.to_network(labelmap.array)).astype(np.float32))
        labels = F.interpolate(ids[None, None], size=size, mode="nearest")[0, 0].numpy().astype(np.uint8)
    return Prepared(image, spacing, labels)  # type: ignore[arg-type]


def encode_prepared(autoencoder, prepared: Prepared, config, sample: bool = False, seed: int = 0,
                    source_sha256: str = "0") -> Any:
    """The posterior mean (or a seeded sample) of a prepared CT, ``[1, C, x, y, z]`` float32 on the CPU."""
    import torch

    from ..engines.maisi import latent_downsample
    from ..engines.maisi.codec import decode_window, encode_unit
    from .keyed import keyed_generator

    device = next(autoencoder.parameters()).device
    mu, sigma = encode_unit(autoencoder, prepared.image, decode_window(config, device), config["decode"]["overlap"],
                            latent_downsample(config))
    mu, sigma = mu.float().cpu(), sigma.float().cpu()
    if not sample:
        return mu
    eps = torch.randn(mu.shape, generator=keyed_generator(seed, 0, int(source_sha256[:16], 16)))
    return mu + sigma * eps


def embedding_path(out_dir: Path, ct_path: Path) -> Path:
    """Where the embedding of ``ct_path`` goes."""
    return Path(out_dir) / f"{volume_stem(ct_path)}{SUFFIX}"


def read_embedding(path: str | Path) -> dict:
    """An embedding file written by :func:`encode_cts`; :class:`InputError` for anything else."""
    from ..engines.maisi.checkpoints import read_checkpoint

    saved = read_checkpoint(path)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise InputError(f"{path} is not a nodsynth embedding file (format {FORMAT!r}); make it with nodsynth encode")
    return saved


def embedding_identity(ct_path: Path, vae_sha256: str, sample: bool = False, seed: int = 0) -> dict:
    """What makes an embedding file of ``ct_path`` this run's (see :data:`IDENTITY_NAMES`)."""
    from ..weights import sha256_of

    return {"source_sha256": sha256_of(Path(ct_path)), "vae_sha256": vae_sha256, "mode": "sample" if sample else "mean",
            "seed": int(seed) if sample else None}


def is_encoded(path: Path, identity: dict) -> bool:
    """True when ``path`` holds the embedding ``identity`` describes; refuses one made from something else."""
    if not path.is_file():
        return False
    saved = read_embedding(path)
    differs = [IDENTITY_NAMES[k] for k, v in identity.items() if saved.get(k) != v]
    if differs:
        raise InputError(f"{path} exists but was made with another {', '.join(differs)}; remove it or use another --out")
    return True


def encode_one(autoencoder, cfg, ct_path: Path, target: Path, identity: dict,
               labels_path: Optional[Path] = None) -> Path:
    """Encode one CT (and resize its label map) into the embedding file ``target`` (atomically)."""
    import torch

    from ..engines.maisi.checkpoints import save_checkpoint
    from ..io.volume_files import read_volume
    from .controlnet import volume_multiple

    prepared = prepare(read_volume(ct_path), read_volume(labels_path) if labels_path else None, volume_multiple(cfg))
    latent = encode_prepared(autoencoder, prepared, cfg, identity["mode"] == "sample", identity["seed"] or 0,
                             identity["source_sha256"])
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint({"format": FORMAT, **identity, "source": str(ct_path), "latent": latent.contiguous(),
                            "image_size_xyz": list(prepared.image.shape[2:]),
                            "spacing_xyz_mm": list(prepared.spacing_xyz),
                            "labels": None if prepared.labels is None else torch.as_tensor(prepared.labels),
                            "labelmap": str(labels_path) if labels_path else None}, target)


def encode_cts(cts: Sequence[Path], out_dir: str | Path, autoencoder_path: Path, config: str = "maisi_v2",
               labelmaps: Optional[Sequence[Path]] = None, sample: bool = False, seed: int = 0,
               device: Optional[str] = None, progress: Optional[ProgressFn] = None,
               cancel: Optional[CancelToken] = None) -> list[tuple[Path, bool]]:
    """Encode each CT into ``out_dir``; returns ``(embedding file, newly written)`` per CT."""
    from ..engines.maisi import load_autoencoder, load_config
    from ..weights import sha256_of

    cts = [Path(p) for p in cts]
    if labelmaps and len(labelmaps) != len(cts):
        raise InputError(f"--labelmaps gives {len(labelmaps)} files for {len(cts)} CTs; give one per CT or none")
    targets = [embedding_path(Path(out_dir), p) for p in cts]
    if len(set(targets)) != len(targets):
        raise InputError("two CTs have the same file name stem; their embeddings would collide in --out")
    cfg = load_config(config)
    vae_sha256 = sha256_of(Path(autoencoder_path))
    autoencoder = None
    report, done = progress or no_progress, []
    for number, (ct_path, target) in enumerate(zip(cts, targets)):
        check_cancel(cancel)
        identity = embedding_identity(ct_path, vae_sha256, sample, seed)
        if is_encoded(target, identity):
            done.append((target, False))
            continue
        if autoencoder is None:
            autoencoder = load_autoencoder(autoencoder_path, cfg, device).eval()
        encode_one(autoencoder, cfg, ct_path, target, identity, Path(labelmaps[number]) if labelmaps else None)
        done.append((target, True))
        report((number + 1) / len(cts), f"encoded {ct_path.name}")
    return done
