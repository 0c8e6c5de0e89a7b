"""Op ``encode``: one CT's training embedding, as ``nodsynth encode`` writes it (same bytes).

Inputs ``ct`` and optionally ``labelmap`` (resized nearest with the CT); outputs ``embedding`` (``.pt``);
params ``config`` (default maisi_v2), ``weights`` (folder with the MAISI autoencoder; else the run's
``--weights``, else the weights folders), ``sample`` (a sampled latent; the row's ``seed`` seeds it).
An embedding already at the output path from the same CT, autoencoder and mode (e.g. written by
``nodsynth encode``) is kept, not recomputed; one made otherwise fails the row.
"""
from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path
from typing import Optional

from ...cli.verbs import encode as verb
from ..opspec import JobContext, Slot

OP = "encode"
ENGINE_OPERATION = None
INPUTS = {"ct": Slot("--cts"), "labelmap": Slot("--labelmaps", required=False)}
OUTPUTS = {"embedding": Slot(None, volume=False, suffix=".pt")}
PARAMS = ("config", "weights", "sample")
SEEDED = True
SAME_GRID = ("ct", "labelmap")
OUTPUT_GRID: dict = {}  # not a volume
add_arguments = verb.add_arguments


def fixed_argv(job, outputs) -> list[str]:
    """The verb writes into a folder: the one of the ``embedding`` output."""
    return ["--out", str(outputs["embedding"].parent)] if "embedding" in outputs else []


@lru_cache(maxsize=1)
def _autoencoder(path: str, sha256: str, config: str, device: Optional[str]):
    """The autoencoder and its configuration, loaded once per worker for consecutive rows that share them."""
    from ...engines.maisi import load_autoencoder, load_config

    cfg = load_config(config)
    return load_autoencoder(Path(path), cfg, device).eval(), cfg


def run(ctx: JobContext) -> dict:
    from ...train.encode import embedding_identity, encode_one, is_encoded
    from ...weights import sha256_of

    args, job = ctx.args, ctx.job
    path = Path(verb.autoencoder_file(args, ctx.weights_dir))
    vae_sha256 = sha256_of(path)
    identity = embedding_identity(args.cts[0], vae_sha256, args.sample, args.seed)
    staged = ctx.outputs["embedding"]
    if is_encoded(job.outputs["embedding"], identity):
        shutil.copyfile(job.outputs["embedding"], staged)
        return {"reused": True, "vae_sha256": vae_sha256}
    autoencoder, cfg = _autoencoder(str(path), vae_sha256, args.config, ctx.device)
    encode_one(autoencoder, cfg, args.cts[0], staged, identity, args.labelmaps[0] if args.labelmaps else None)
    return {"reused": False, "vae_sha256": vae_sha256}
