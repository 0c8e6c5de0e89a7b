"""Benchmark moving a 512x512x256 CT series to and from a real Orthanc: DICOMweb (STOW-RS / WADO-RS)
and DIMSE (C-STORE / C-GET), DIMSE with Nagle's algorithm on or off on either side.

    python Testing/benchmarks/bench_pacs_transfer.py --slab ../shared/data/lidc_slabs/LIDC-IDRI-0001_slab.nrrd \
        --slices 256 --json out.json

The series is the real LIDC slab (512x512) written with pydicom, its slices repeated up to ``--slices``
(about 0.5 MiB each). Orthanc runs in a network namespace of its own (Testing/orthanc_sandbox.py), on
loopback; a second one, started without ``TCP_NODELAY=1`` in its environment, serves the runs with
Nagle's algorithm on the server's side. Each push starts from an empty server (the series is deleted
through Orthanc's REST API between runs); each pull into an empty folder. Times are wall-clock seconds of the whole
``nodsynth dicom push/pull`` command, run in-process; ratios are against the DICOMweb push of the same run.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orthanc_sandbox import USER, PASSWORD, run_scenario, sandbox_missing  # noqa: E402

SIDES = {True: "TCP_NODELAY", False: "Nagle"}


def _runs(orthanc, orthanc_with_nagle):
    """``(name, verb, server options)`` of every measured way; DIMSE with Nagle's algorithm on or off on
    each side (client: ``--no-nodelay``; Orthanc: started without ``TCP_NODELAY=1``)."""
    from pacs_scenarios import dicomweb_args, dimse_args

    for verb in ("push", "pull"):
        yield f"{verb} dicomweb", verb, orthanc, dicomweb_args(orthanc)
        for server_nodelay, server in ((True, orthanc), (False, orthanc_with_nagle)):
            for client_nodelay in (True, False):
                yield (f"{verb} dimse client {SIDES[client_nodelay]}, server {SIDES[server_nodelay]}", verb, server,
                       dimse_args(server, client_nodelay))


def _clear(orthanc) -> None:
    import requests

    for study in requests.get(f"{orthanc.rest_url}/studies", auth=(USER, PASSWORD), timeout=60).json():
        requests.delete(f"{orthanc.rest_url}/studies/{study}", auth=(USER, PASSWORD), timeout=60).raise_for_status()


def scenario_bench(orthanc, workdir: Path, slab: str, slices: str) -> dict:
    import pydicom
    from orthanc_sandbox import orthanc as start_orthanc
    from pacs_scenarios import build_ct_series, cli

    paths = build_ct_series(Path(slab), workdir / "ct", "bench", int(slices))
    series = str(pydicom.dcmread(paths[0], stop_before_pixels=True).SeriesInstanceUID)
    megabytes = sum(p.stat().st_size for p in paths) / 2**20
    times = {}
    with start_orthanc(workdir / "nagle", 8043, 4243, nodelay=False) as orthanc_with_nagle:
        for name, verb, server, options in _runs(orthanc, orthanc_with_nagle):
            if verb == "push":
                _clear(server)
                run = cli("dicom", "push", str(paths[0].parent), *options)
            else:
                out = workdir / "pulled"
                shutil.rmtree(out, ignore_errors=True)
                run = cli("dicom", "pull", "--series", series, "--out", str(out), *options)
                assert len(list((out / series).glob("*.dcm"))) == len(paths), name
            assert run["status"] == 0, run["stderr"]
            times[name] = run["seconds"]
    return {"instances": len(paths), "megabytes": megabytes, "times_s": times}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slab", required=True, help="a 512x512 CT slab (NRRD), e.g. ../shared/data/lidc_slabs/LIDC-IDRI-0001_slab.nrrd")
    parser.add_argument("--slices", type=int, default=256)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    reason = sandbox_missing()
    if reason:
        print(f"skipped: {reason}")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-pacs-") as folder:
        result = run_scenario(Path(__file__), "scenario_bench", Path(folder), args.slab, str(args.slices), timeout_s=1800)
    reference = result["times_s"]["push dicomweb"]
    print(f"{result['instances']} instances, {result['megabytes']:.0f} MiB (512x512 int16)")
    for name, seconds in result["times_s"].items():
        print(f"  {name:<54} {seconds:7.2f} s  {result['megabytes'] / seconds:7.1f} MiB/s  "
              f"x{seconds / reference:.2f} of push dicomweb")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
