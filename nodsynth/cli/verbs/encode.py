"""``nodsynth encode --cts CT... --out DIR``: precompute training embeddings as the published preparation.

RAS, -1000..1000 HU to 0..1, trilinear resize to the nearest multiple of 128 voxels (as
``diff_model_create_training_data.py`` rounds), MAISI autoencoder: one ``<stem>_emb.pt`` per CT with
the latent (posterior mean; ``--sample`` for a seeded sample as published), the spacing, the
autoencoder's and the CT's SHA-256, and the label map resized nearest (``--labelmaps``). Finished
CTs are skipped, so a rerun resumes. ``nodsynth train controlnet --embeddings`` reads them.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

VERB = "encode"
HELP = "precompute training latents: encode CTs (and resize their label maps) as the published preparation"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cts", nargs="+", type=Path, required=True, metavar="CT", help="CTs in HU to encode")
    parser.add_argument("--labelmaps", nargs="+", type=Path, metavar="LABELMAP",
                        help="their MAISI label maps, in the same order (resized nearest-neighbour with the CT)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the <stem>_emb.pt files")
    parser.add_argument("--weights", metavar="DIR", help="folder with the MAISI autoencoder (default: the weights folders)")
    parser.add_argument("--autoencoder", type=Path, metavar="FILE", help="the MAISI autoencoder checkpoint itself")
    parser.add_argument("--config", default="maisi_v2", help="network configuration: maisi_v2 (default), maisi_tiny or a JSON file")
    parser.add_argument("--sample", action="store_true",
                        help="keep a sampled latent (z_mu + z_sigma x noise, as published) instead of the mean")
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample's noise (with each CT's SHA-256)")
    parser.add_argument("--device", help="torch device (default: cuda when available)")


def autoencoder_file(args: argparse.Namespace, weights_dir: Optional[str] = None) -> Path:
    """``--autoencoder``, else the MAISI autoencoder in ``--weights`` (else ``weights_dir``, else the weights folders)."""
    from ...weights import find_weights

    return args.autoencoder or find_weights("nodmaisi", args.weights or weights_dir, required_roles=("autoencoder",),
                                            allow_fallback=True)["autoencoder"]


def run(args: argparse.Namespace) -> int:
    from ...train.encode import encode_cts
    from ..common import progress_bar

    done = encode_cts(args.cts, args.out, autoencoder_file(args), args.config, args.labelmaps, args.sample, args.seed,
                      args.device, progress_bar("encode"))
    written = sum(1 for _, new in done if new)
    print(f"encoded {written} CT(s), {len(done) - written} already done; embeddings in {args.out}")
    return 0
