"""``nodsynth turing``: visual Turing tests as HR-LDM's - build a blinded study, score the answers.

``turing build --real R.csv --synthetic S.csv --out STUDY --n-real 50 --n-synthetic 50
--phases cropped,full [--key STUDY.key.csv] [--seed N]`` and ``turing score --study STUDY [--key KEY.csv]
--answers A.csv [B.csv ...] --json OUT.json [--html OUT.html]``. The key goes beside the study folder
(never into the folder readers receive) and records the seed, drawn at random unless ``--seed`` is given.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...io.atomic import write_text_atomic
from ...errors import InputError
from ...review.answers import read_answer_sheets
from ...review.key import locate_key, read_key
from ...review.score import score_answers
from ...review.score_report import score_html, score_metadata
from ...review.study import DEFAULT_CUBE_MM, FULL_CONTEXTS, VOLUME_FORMATS, build_study, parse_phases
from ...review.study_inputs import read_study_inputs
from ..common import parse_triple, progress_bar, refuse_overwrite

VERB = "turing"
HELP = "run a visual Turing test: build a blinded real/synthetic reading study, score reader answers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="build a blinded study (cropped cubes + montages, full context, key)")
    build.add_argument("--real", type=Path, required=True, help="manifest of real nodules (ct, mask or coordX/Y/Z, ...)")
    build.add_argument("--synthetic", type=Path, required=True, help="manifest of synthetic nodules")
    build.add_argument("--out", type=Path, required=True, help="new study folder (what readers receive)")
    build.add_argument("--key", dest="key_out", type=Path, help="new answer-key file, outside the study folder "
                                                "(default <out>.key.csv; keep it from readers)")
    build.add_argument("--n-real", type=int, required=True, help="real cases to draw into the study")
    build.add_argument("--n-synthetic", type=int, required=True, help="synthetic cases to draw into the study")
    build.add_argument("--phases", default="cropped,full", help="cropped, full or both (read in that order)")
    build.add_argument("--seed", type=int, help="selection, ids and order (default: drawn at random; recorded in "
                                                 "the key, so giving it again rebuilds the same study)")
    build.add_argument("--cube-mm", type=float, default=DEFAULT_CUBE_MM, help="cropped cube edge (default 64)")
    build.add_argument("--cropped-spacing-mm", type=float,
                       help="isotropic spacing of the cubes (default: the finest of the chosen CTs)")
    build.add_argument("--full-spacing-mm", help="spacing of the full-context volumes, one number or x,y,z "
                                                 "(default: the coarsest of the chosen CTs per axis)")
    build.add_argument("--format", dest="volume_format", choices=VOLUME_FORMATS, default="nifti",
                       help="case volumes as uncompressed NIfTI (default) or as a DICOM CT series folder per case, "
                            "the same writer and header set for real and synthetic (needs pydicom)")
    build.add_argument("--full", choices=FULL_CONTEXTS, default="lung-box",
                       help="full context: the lung box (default) or the whole CT")
    score = sub.add_parser("score", help="score the readers' answers: confusion matrices, rates, Wilson CI, binomial p, "
                                         "AUC, McNemar, kappa")
    score.add_argument("--key", type=Path, help="the study's key (default <study>.key.csv)")
    score.add_argument("--study", type=Path, help="the study folder (its key is checked against its study.json)")
    score.add_argument("--answers", type=Path, nargs="+", required=True, help="answer sheets (CSV)")
    score.add_argument("--json", type=Path, required=True, help="where to write the scores (JSON)")
    score.add_argument("--html", type=Path, help="also write an HTML page with the tables and a bar plot")


def _full_spacing(text):
    if text is None:
        return None
    if "," in text:
        return parse_triple(text, "--full-spacing-mm")
    try:
        return float(text)
    except ValueError as exc:
        raise InputError(f"--full-spacing-mm must be a number or x,y,z, got {text!r}") from exc


def _build(args: argparse.Namespace) -> int:
    phases = parse_phases(args.phases)
    real = read_study_inputs(args.real, "real")
    synthetic = read_study_inputs(args.synthetic, "synthetic")
    summary = build_study(real, synthetic, args.out, args.n_real, args.n_synthetic, phases, args.seed, args.cube_mm,
                          args.cropped_spacing_mm, _full_spacing(args.full_spacing_mm), args.full,
                          progress=progress_bar("turing build"), key_path=args.key_out,
                          volume_format=args.volume_format)
    balance = summary["balance"]
    print(f"wrote {args.out}: {sum(len(v) for v in summary['cases'].values())} cases in phase(s) "
          f"{', '.join(summary['phases'])}; key (with the seed) {summary['key_path']} (SHA-256 "
          f"{summary['key_sha256'][:16]}...): keep it from readers")
    for side in ("real", "synthetic"):
        print(f"  {side}: {balance[side]['n']} nodules; subtypes {balance[side]['subtype']}; "
              f"size bins {balance[side]['size_bin']}")
    print(f"  strata matched between real and synthetic: {'yes' if balance.get('strata_matched') else 'no'}")
    return 0


def _score(args: argparse.Namespace) -> int:
    key_path = locate_key(args.key, args.study)
    refuse_overwrite([args.json, args.html], [key_path, *args.answers])
    key = read_key(key_path)
    scores = score_answers(key, read_answer_sheets(args.answers, key))
    scores["study"] = score_metadata(key_path, scores)
    page = score_html(scores) if args.html else None
    write_text_atomic(args.json, json.dumps(scores, indent=1) + "\n")
    if page is not None:
        write_text_atomic(args.html, page)
    for phase, result in scores["phases"].items():
        for name, stats in [*result["readers"].items(), ("pooled", result["pooled"])]:
            c = stats["confusion"]
            print(f"{phase:>8} {name:<12} n={stats['n']:<4} real->real {c['real']['real']:<3} real->synthetic "
                  f"{c['real']['synthetic']:<3} synthetic->real {c['synthetic']['real']:<3} synthetic->synthetic "
                  f"{c['synthetic']['synthetic']:<3} accuracy {100 * stats['accuracy']:.1f} % "
                  f"(p = {stats['p_value_vs_chance']:.3g})")
    print(f"wrote {args.json}" + (f" and {args.html}" if args.html else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    return _build(args) if args.action == "build" else _score(args)
