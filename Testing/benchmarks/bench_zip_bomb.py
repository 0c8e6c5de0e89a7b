"""Zip-bomb benchmark (issue 22): peak memory of ``nodsynth serve`` receiving an all-zero CT that a few MiB
of upload inflate to GiBs.

    python Testing/benchmarks/bench_zip_bomb.py [--as-mb 1536] [--json out.json]

Two uploads, each to a fresh server (its peak RSS, Linux ``VmHWM``, is a high-water mark), optionally
run under ``prlimit --as``:

* ``bomb``: a 1024^3 int16 CT (2048 MiB) in a 2 MiB body, over the largest volume the engines accept;
* ``largest``: a 512 x 512 x 1024 int16 CT (512 MiB), the largest accepted volume (an inpaint request
  without its nodule mask, so the server decodes it all, then refuses it without running a job).

Reports the HTTP answer, the server's peak RSS growth over its idle RSS and that growth as a ratio of
the declared (decompressed) size: the reference is the declared size itself, computed in the same run.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # Testing/: the server harness

from nodsynth.io.atomic import write_text_atomic
from server_harness import post_measuring_memory, zip_bomb  # noqa: E402

CASES = {"bomb": ((1024, 1024, 1024), "<i2"), "largest": ((1024, 512, 512), "<i2")}


def measure(name: str, as_mb: int | None, folder: Path) -> dict:
    shape, dtype = CASES[name]
    body = zip_bomb(shape, dtype)
    response, idle_mb, peak_mb = post_measuring_memory(folder / f"jobs-{name}", body, as_mb)
    declared_mb = int(np.prod(shape)) * np.dtype(dtype).itemsize / 2**20
    return {"case": name, "body_mib": round(len(body) / 2**20, 2), "declared_mib": declared_mb,
            "status": response.status_code, "detail": response.text[:200], "idle_rss_mib": round(idle_mb),
            "peak_rss_mib": round(peak_mb), "growth_over_declared": round((peak_mb - idle_mb) / declared_mb, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--as-mb", type=int, help="run the server under prlimit --as=this many MiB")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(name, args.as_mb, Path(folder)) for name in CASES]
    for row in rows:
        print(json.dumps(row))
    if args.json:
        write_text_atomic(args.json, json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
