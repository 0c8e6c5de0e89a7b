"""Remote-engine benchmark (issue 6): transfer cost of a whole CT over loopback, and load.

    python Testing/benchmarks/bench_remote.py --json out.json

1. **Transfer**: a 512 x 512 x 256 int16 CT (real LIDC-IDRI-0001 slab slices, stacked to 256) with
   the real DLCS_0001 label map's grid (512 x 512 x 256, 0.703 x 0.703 x 1.25 mm). The same model-free
   ``inpaint`` request (the CT, its nodule mask = label 23 and lung mask = lobes 28-32, both uint8 from
   the label map) runs through the local ClassicEngine and through ``nodsynth serve`` on 127.0.0.1
   (RemoteEngine); reports both wall times, the overhead, a phase breakdown (encode, upload +
   server-side check, queue + compute, download, decode) and the compression ratios of the request,
   the result CT and the label map itself. (``inpaint`` carries the three volumes a remote job most
   often sends: CT, nodule mask and lung mask.)
2. **Load**: 20 concurrent clients x 3 model-free inpaint jobs on real LIDC nodule crops: total
   seconds, all results checked bit-identical to local runs, and the server's peak RSS.

Reads ``../shared/data`` (or ``NODSYNTH_SHARED_DATA``).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # Testing/: the server harness
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared whole-CT pair

from bench_edit import whole_ct_pair  # noqa: E402
from nodsynth import wire  # noqa: E402
from nodsynth.atomic import write_text_atomic  # noqa: E402
from nodsynth.engines.base import InpaintRequest, SynthesisResult  # noqa: E402
from nodsynth.engines.classic import ClassicEngine  # noqa: E402
from nodsynth.engines.remote import RemoteEngine  # noqa: E402
from nodsynth.labels import LOBE_IDS, NODULE  # noqa: E402
from nodsynth.volume import Volume  # noqa: E402
from server_harness import (TOKEN, ServerProcess, auth_headers, lidc_inpaint_requests,  # noqa: E402
                            run_clients, shared_path, write_token)


def whole_ct_request() -> tuple[InpaintRequest, Volume]:
    """The 512 x 512 x 256 inpaint request and the label map it was made from (see the module docstring)."""
    ct, labels = whole_ct_pair()
    labels = labels.with_array(labels.array.astype(np.uint8))
    nodules = labels.with_array((labels.array == NODULE).astype(np.uint8))
    lungs = labels.with_array(np.isin(labels.array, LOBE_IDS).astype(np.uint8))
    return InpaintRequest(ct=ct, nodule_mask=nodules, lung_mask=lungs, subtype="solid", seed=0), labels


def raw_bytes(*volumes: Volume) -> int:
    return sum(v.array.nbytes for v in volumes)


def transfer_figures(url: str, request: InpaintRequest, labels: Volume, repeats: int) -> dict:
    engine = ClassicEngine()
    local_s, remote_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        local = engine.inpaint(request)
        local_s.append(time.perf_counter() - start)
        with RemoteEngine(url, token=TOKEN, poll_interval_s=0.05, timeout_s=600) as remote_engine:
            start = time.perf_counter()
            remote = remote_engine.inpaint(request)
            remote_s.append(time.perf_counter() - start)
        assert remote.ct.array.tobytes() == local.ct.array.tobytes(), "remote and local results differ"

    phases = {}
    start = time.perf_counter()
    pieces = wire.encode_request("inpaint", "classic", request)
    phases["encode_request_s"] = time.perf_counter() - start
    request_bytes = wire.message_size(pieces)
    body = wire.join(pieces)
    with httpx.Client(base_url=url, headers=auth_headers(), timeout=600) as http:
        start = time.perf_counter()
        job = http.post("/v1/jobs", content=body).json()
        phases["upload_and_server_check_s"] = time.perf_counter() - start
        start = time.perf_counter()
        while (status := http.get(f"/v1/jobs/{job['id']}").json())["state"] != "done":
            time.sleep(0.05)
        phases["queue_compute_and_store_s"] = time.perf_counter() - start
        start = time.perf_counter()
        data = http.get(f"/v1/jobs/{job['id']}/result").content
        phases["download_s"] = time.perf_counter() - start
        http.delete(f"/v1/jobs/{job['id']}")
    start = time.perf_counter()
    result = wire.decode_result(data)
    phases["decode_result_s"] = time.perf_counter() - start
    phases["server_job_run_s"] = status["finished_s"] - status["started_s"]  # read+decode, engine, encode+write
    phases["server_engine_s"] = result.seconds

    req_raw = raw_bytes(request.ct, request.nodule_mask, request.lung_mask)
    labels_wire = wire.message_size(wire.encode_result(SynthesisResult({"labels": labels}, "none")))
    res_raw = raw_bytes(result.ct)
    ct_only = wire.message_size(wire.encode_result(result))
    return {
        "volume_size_ijk": list(request.ct.size_ijk), "ct_dtype": str(request.ct.array.dtype),
        "masks_dtype": str(request.nodule_mask.array.dtype), "repeats": repeats,
        "local_call_s": min(local_s), "remote_call_s": min(remote_s),
        "remote_overhead_s": min(remote_s) - min(local_s),
        "phases_s": {k: round(v, 3) for k, v in phases.items()},
        "request_raw_mb": req_raw / 2**20, "request_wire_mb": request_bytes / 2**20,
        "request_compression_ratio": req_raw / request_bytes,
        "result_ct_raw_mb": res_raw / 2**20, "result_wire_mb": ct_only / 2**20,
        "ct_compression_ratio": res_raw / ct_only,
        "labelmap_raw_mb": labels.array.nbytes / 2**20, "labelmap_wire_mb": labels_wire / 2**20,
        "labelmap_compression_ratio": labels.array.nbytes / labels_wire,
    }


def load_figures(url: str, server: ServerProcess, clients: int, jobs_per_client: int) -> dict:
    plans = lidc_inpaint_requests(clients, jobs_per_client)
    engine = ClassicEngine()
    expected = [[engine.inpaint(r).ct.array.tobytes() for r in requests] for requests in plans]
    start = time.perf_counter()
    results = run_clients(url, plans)
    seconds = time.perf_counter() - start
    correct = sum(got.ct.array.tobytes() == want for got_c, want_c in zip(results, expected)
                  for got, want in zip(got_c, want_c))
    return {"clients": len(plans), "jobs_per_client": jobs_per_client, "total_s": seconds,
            "jobs": len(plans) * jobs_per_client, "correct_results": correct,
            "server_peak_rss_mb": server.peak_rss_mb()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats of the whole-CT call (best is kept)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--jobs-per-client", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_remote_") as folder:
        folder = Path(folder)
        server = ServerProcess(folder / "jobs", write_token(folder)).start()
        try:
            figures = {"transfer": transfer_figures(server.url, *whole_ct_request(), args.repeats)}
            print(json.dumps(figures["transfer"], indent=1))
        finally:
            server.stop()
        server = ServerProcess(folder / "jobs_load", write_token(folder)).start()
        try:
            figures["load"] = load_figures(server.url, server, args.clients, args.jobs_per_client)
            print(json.dumps(figures["load"], indent=1))
        finally:
            server.stop()
    if args.json:
        write_text_atomic(args.json, json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
