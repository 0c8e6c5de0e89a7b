"""Mutated volume files through the verbs, in one process (issue 20 "Must show").

A case takes one real LIDC VOI file (CT, nodule mask, or a label map made from them), writes it in one
format (``.nii.gz``, ``.nii``, ``.nrrd`` raw or gzip, ``.mha`` raw or zlib), mutates it (truncation at a
random offset, NaN/Inf voxels, another voxel type, a corrupted header field of NIfTI, NRRD or MHA) and
runs one verb on it (``segment``, ``measure``, ``augment``, ``inpaint``, ``turing build``) through
:func:`nodsynth.cli.main.main`. Every mutation says beforehand whether it corrupts the input; then:

* an exception out of ``main`` (or an exit status other than 0 and 2) is an uncaught exception;
* a corrupting mutation must be refused (status 2) with nothing in the output folder;
* a harmless one (same voxels, same geometry) must succeed (status 0).

Used by ``Testing/test_fuzz_inputs.py`` (a capped share in CI) and ``Testing/benchmarks/fuzz_run.py``
(the full run).
"""
from __future__ import annotations

import contextlib
import gzip
import io
import re
import shutil
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import SimpleITK as sitk

from nodsynth.cli.main import main
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume, write_volume

VOI = "LIDC-IDRI-0068_R_3.nii.gz"
"""A 9x43x43 real LIDC VOI (7.8 mm solid nodule): small, so a case takes a few tens of milliseconds."""
OTHER_VOI = "LIDC-IDRI-0091_R_3.nii.gz"
"""The second nodule a ``turing build`` study needs."""
FORMATS = (("nii.gz", True), ("nii", False), ("nrrd", False), ("nrrd", True), ("mha", False), ("mha", True))
VERB_ROLES = {"segment": ("ct",), "measure": ("ct", "mask"), "augment": ("labelmap",), "inpaint": ("ct", "mask"),
              "turing": ("ct", "mask")}
LUNG_LABEL, BODY_LABEL, NODULE_LABEL = 28, 200, 23


@dataclass
class Case:
    number: int
    verb: str
    role: str
    suffix: str
    mutation: str
    corrupts: bool


@dataclass
class Outcome:
    case: Case
    status: Optional[int]
    error: str
    written: list

    @property
    def verdict(self) -> str:
        if self.status not in (0, 2):
            return "uncaught exception"
        if self.case.corrupts and self.status == 0:
            return "silent success on a corrupted input"
        if self.status == 2 and self.written:
            return "output written on refusal"
        if not self.case.corrupts and self.status == 2:
            return "refusal of an intact input"
        return "refused" if self.status == 2 else "succeeded"


def base_volumes(vois: Path) -> dict[str, Volume]:
    """The CT, nodule mask and a MAISI-style label map (lung 28 below -400 HU, body 200, nodule 23)."""
    ct, mask = read_volume(vois / "image" / VOI), read_volume(vois / "nodule_mask" / VOI)
    labels = np.where(mask.array > 0, NODULE_LABEL, np.where(ct.array < -400, LUNG_LABEL, BODY_LABEL))
    return {"ct": ct, "mask": mask.with_array(mask.array.astype(np.uint8)),
            "labelmap": ct.with_array(labels.astype(np.uint8))}


# ---------------------------------------------------------------------------------------- mutations
def _nifti_edit(path: Path, edit: Callable[[bytearray], None]) -> None:
    gzipped = path.name.endswith(".gz")
    data = bytearray(gzip.decompress(path.read_bytes()) if gzipped else path.read_bytes())
    edit(data)
    path.write_bytes(gzip.compress(bytes(data)) if gzipped else bytes(data))


def _put(fmt: str, offset: int, *values):
    def edit(data: bytearray) -> None:
        struct.pack_into("<" + fmt, data, offset, *values)
    return edit


def _header_edit(path: Path, edit: Callable[[str], str]) -> None:
    """Rewrite the text header of an NRRD / MHA file (the part before the voxel data)."""
    data = path.read_bytes()
    end = data.index(b"\n\n") + 2 if path.suffix == ".nrrd" else data.index(b"\n", data.index(b"ElementDataFile")) + 1
    path.write_bytes(edit(data[:end].decode("latin-1")).encode("latin-1") + data[end:])


def _sub(pattern: str, replacement: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        changed, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
        assert count == 1, f"the header lacks {pattern!r}:\n{text}"
        return changed
    return edit


def _grown(text: str, key: str, rng: np.random.Generator) -> str:
    """The size field with one axis made 1..5 voxels longer."""
    match = re.search(rf"^({key})(.*)$", text, flags=re.MULTILINE)
    sizes = [int(v) for v in match.group(2).split()]
    sizes[int(rng.integers(len(sizes)))] += int(rng.integers(1, 6))
    return text[:match.start(2)] + " " + " ".join(map(str, sizes)) + text[match.end(2):]


def _swapped_sign(key: str, partners: dict[str, str]) -> Callable[[str], str]:
    """The voxel type field turned into its partner of the other signedness (same voxel size)."""
    def edit(text: str) -> str:
        match = re.search(rf"^{key}(.*)$", text, flags=re.MULTILINE)
        return text[:match.start(1)] + partners[match.group(1)] + text[match.end(1):]
    return edit


def header_mutations(role: str, suffix: str, compressed: bool, rng: np.random.Generator):
    """``[(name, corrupts, mutate(path))]`` of the header corruptions of one format (NIfTI, NRRD or MHA)."""
    mask_like = role == "mask"  # uint8 0/1: a signed/unsigned swap keeps the values (not the label map's 200)
    if suffix.startswith("nii"):
        axis = int(rng.integers(1, 4))
        return [
            ("nifti dim grown", True, lambda p: _nifti_edit(p, lambda d: _put("h", 40 + 2 * axis, struct.unpack_from(
                "<h", d, 40 + 2 * axis)[0] + int(rng.integers(1, 6)))(d))),
            ("nifti datatype int32 (bigger voxels)", True, lambda p: _nifti_edit(p, _put("hh", 70, 8, 32))),
            ("nifti datatype signedness swapped", not mask_like,
             lambda p: _nifti_edit(p, _put("hh", 70, *((256, 8) if mask_like else (512, 16))))),
            ("nifti vox_offset moved", True, lambda p: _nifti_edit(p, _put("f", 108, 352.0 + 8 * int(rng.integers(1, 50))))),
            ("nifti magic broken", True, lambda p: _nifti_edit(p, lambda d: d.__setitem__(slice(344, 348), b"xx1\0"))),
            ("nifti sizeof_hdr broken", True, lambda p: _nifti_edit(p, _put("i", 0, int(rng.integers(0, 300))))),
            ("nifti spacing NaN", True, lambda p: _nifti_edit(p, _put("f", 80, float("nan")))),
            ("nifti description changed", False,
             lambda p: _nifti_edit(p, lambda d: d.__setitem__(slice(148, 228), b"fuzz".ljust(80, b"\0")))),
        ]
    if suffix == "nrrd":
        return [
            ("nrrd sizes grown", True, lambda p: _header_edit(p, lambda t: _grown(t, "sizes:", rng))),
            ("nrrd type int64 (bigger voxels)", True, lambda p: _header_edit(p, _sub(r"^type: .*$", "type: int64"))),
            ("nrrd type signedness swapped", not mask_like, lambda p: _header_edit(p, _swapped_sign(
                "type: ", {"unsigned char": "signed char", "short": "unsigned short"}))),
            ("nrrd encoding swapped", True, lambda p: _header_edit(
                p, _sub(r"^encoding: .*$", "encoding: raw" if compressed else "encoding: gzip"))),
            ("nrrd sizes removed", True, lambda p: _header_edit(p, _sub(r"^sizes: .*\n", ""))),
            ("nrrd comment added", False, lambda p: _header_edit(p, _sub(r"^(type: .*)$", r"# fuzz comment\n\1"))),
        ]
    return [
        ("mha DimSize grown", True, lambda p: _header_edit(p, lambda t: _grown(t, "DimSize =", rng))),
        ("mha ElementType double (bigger voxels)", True,
         lambda p: _header_edit(p, _sub(r"^ElementType = .*$", "ElementType = MET_DOUBLE"))),
        ("mha ElementType signedness swapped", not mask_like,
         lambda p: _header_edit(p, _swapped_sign("ElementType = ", {"MET_UCHAR": "MET_CHAR", "MET_SHORT": "MET_USHORT"}))),
        ("mha CompressedData swapped", True, lambda p: _header_edit(
            p, _sub(r"^CompressedData = .*$", f"CompressedData = {not compressed}"))),
        ("mha data file missing", True,
         lambda p: _header_edit(p, _sub(r"^ElementDataFile = LOCAL$", "ElementDataFile = missing.raw"))),
    ]


def value_mutations(role: str, volume: Volume, rng: np.random.Generator):
    """``[(name, corrupts, volume)]``: NaN / Inf voxels and other voxel types."""
    array = volume.array
    nonfinite = array.astype(np.float32)
    spots = rng.integers(0, array.size, int(rng.integers(1, 20)))
    nonfinite.flat[spots] = rng.choice([np.nan, np.inf, -np.inf], spots.size)
    out = [("NaN/Inf voxels", True, volume.with_array(nonfinite)),
           ("float64 voxels", False, volume.with_array(array.astype(np.float64))),
           ("int32 voxels", False, volume.with_array(array.astype(np.int32)))]
    if role == "ct":
        return out + [("uint8 voxels (clipped CT)", True, volume.with_array(np.clip(array, 0, 255).astype(np.uint8))),
                      ("complex voxels", True, volume.with_array(array.astype(np.complex64)))]
    half = array.astype(np.float32)
    half[array > 0] += 0.5
    return out + [("non-integer voxels", True, volume.with_array(half)),
                  ("negative voxels", True, volume.with_array(np.where(array > 0, -array.astype(np.int16), 0)))]


def write_case(case_rng: np.random.Generator, volume: Volume, role: str, folder: Path) -> tuple[Path, str, bool]:
    """Write one mutated file into ``folder``; ``(path, mutation name, corrupts)``."""
    suffix, compressed = FORMATS[int(case_rng.integers(len(FORMATS)))]
    path = folder / f"{role}.{suffix}"
    family = case_rng.choice(["truncation", "values", "header"], p=[0.35, 0.3, 0.35])
    if family == "values":
        options = value_mutations(role, volume, case_rng)
        name, corrupts, mutated = options[int(case_rng.integers(len(options)))]
        image = mutated.to_sitk() if mutated.array.dtype.kind != "c" else _complex_image(mutated)
        sitk.WriteImage(image, str(path), useCompression=compressed)
        return path, f"{name} ({suffix}{' compressed' if compressed and suffix != 'nii.gz' else ''})", corrupts
    write_volume(volume, path, compress=compressed)
    label = f"{suffix}{' compressed' if compressed and suffix != 'nii.gz' else ''}"
    if family == "truncation":
        size = path.stat().st_size
        cut = int(case_rng.integers(0, size))
        path.write_bytes(path.read_bytes()[:cut])
        return path, f"truncated at byte {cut} of {size} ({label})", True
    options = header_mutations(role, suffix, compressed, case_rng)
    name, corrupts, mutate = options[int(case_rng.integers(len(options)))]
    mutate(path)
    return path, f"{name} ({label})", corrupts


def _complex_image(volume: Volume):
    image = sitk.GetImageFromArray(volume.array)
    image.CopyInformation(volume.with_array(np.zeros(volume.shape_kji, np.int16)).to_sitk())
    return image


# ------------------------------------------------------------------------------------------- verbs
def _point(mask: Volume) -> str:
    centre = mask.index_to_world(np.argwhere(mask.array > 0).mean(axis=0)[::-1])
    return "--point=" + ",".join(f"{v:.2f}" for v in centre)


def verb_argv(verb: str, inputs: dict[str, Path], out: Path, point: str) -> list[str]:
    """The command line of ``verb`` on ``inputs`` (``ct``, ``mask``, ``labelmap``, ``ct2``, ``mask2``)."""
    if verb == "segment":
        return ["segment", "--ct", str(inputs["ct"]), point, "--out", str(out / "mask.nii.gz"),
                "--json", str(out / "segment.json")]
    if verb == "measure":
        return ["measure", "--ct", str(inputs["ct"]), "--mask", str(inputs["mask"]), "--json", str(out / "m.json")]
    if verb == "augment":
        return ["augment", str(inputs["labelmap"]), "--out", str(out / "augmented"), "--percent", "80"]
    if verb == "inpaint":
        return ["inpaint", "--ct", str(inputs["ct"]), "--mask", str(inputs["mask"]), "--engine", "classic",
                "--out", str(out / "ct.nii.gz"), "--out-mask", str(out / "mask.nii.gz")]
    for truth, (ct, mask) in {"real": ("ct", "mask"), "synthetic": ("ct2", "mask2")}.items():
        (out.parent / f"{truth}.csv").write_text(f"ct,mask,subtype,diameter_mm\n{inputs[ct]},{inputs[mask]},solid,7.5\n")
    return ["turing", "build", "--real", str(out.parent / "real.csv"), "--synthetic", str(out.parent / "synthetic.csv"),
            "--out", str(out / "study"), "--n-real", "1", "--n-synthetic", "1", "--phases", "cropped",
            "--cube-mm", "16"]


def run_cases(vois: Path, work: Path, count: int, seed: int = 0) -> list[Outcome]:
    """``count`` cases, verbs in turn; each in its own folder under ``work``."""
    volumes = base_volumes(vois)
    intact = work / "intact"
    intact.mkdir(parents=True)
    inputs = {role: write_volume(volume, intact / f"{role}.nii.gz") for role, volume in volumes.items()}
    inputs["ct2"] = write_volume(read_volume(vois / "image" / OTHER_VOI), intact / "ct2.nii.gz")
    inputs["mask2"] = write_volume(read_volume(vois / "nodule_mask" / OTHER_VOI), intact / "mask2.nii.gz")
    point = _point(volumes["mask"])
    verbs = list(VERB_ROLES)
    outcomes = []
    for number in range(count):
        rng = np.random.default_rng([seed, number])
        verb = verbs[number % len(verbs)]
        roles = VERB_ROLES[verb]
        role = roles[int(rng.integers(len(roles)))]
        folder = work / f"case{number:04d}"
        (folder / "in").mkdir(parents=True)
        path, mutation, corrupts = write_case(rng, volumes[role], role, folder / "in")
        out = folder / "out"
        out.mkdir()
        outcomes.append(run_one(Case(number, verb, role, path.name, mutation, corrupts),
                                verb_argv(verb, {**inputs, role: path}, out, point), out))
        shutil.rmtree(folder)
    return outcomes


def run_one(case: Case, argv: list[str], out: Path) -> Outcome:
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            status = main(argv)
        error = stderr.getvalue().strip()
    except BaseException as exc:  # noqa: BLE001 - counting what escapes main is the point
        if isinstance(exc, KeyboardInterrupt):
            raise
        status, error = None, f"{type(exc).__name__}: {exc}"
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    return Outcome(case, status, error, written)


def summary(outcomes: list[Outcome]) -> dict:
    """Counts per verdict, per verb and per mutation family, and the failures."""
    bad = [o for o in outcomes if o.verdict not in ("refused", "succeeded")]
    return {"cases": len(outcomes), "verdicts": Counter(o.verdict for o in outcomes),
            "verbs": Counter(o.case.verb for o in outcomes),
            "corrupting": sum(o.case.corrupts for o in outcomes),
            "families": Counter(o.case.mutation.split(" (")[0].split(" at byte")[0] for o in outcomes),
            "failures": bad}
