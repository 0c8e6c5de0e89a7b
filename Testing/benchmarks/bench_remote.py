"""Remote-engine benchmark (issues 6 and 28): an edit's cost over loopback and shaped links, and load.

    python Testing/benchmarks/bench_remote.py --json out.json
    python Testing/benchmarks/bench_remote.py --skip-load --links 100,1000 --codecs none,shuffle-zstd,shuffle-zlib

1. **Edits** (issue 28): a 512 x 512 x 256 int16 CT on the real DLCS_0001 label map's grid (0.703 x
   0.703 x 1.25 mm) whose slices never repeat: the real LIDC-IDRI-0001 slab slices, tiled, plus
   seeded Gaussian noise of 10 HU per voxel (repeated slabs would inflate the compression ratio), and
   its nodule mask (label 23) and lung mask (lobes 28-32), uint8. The model-free ``inpaint`` runs
   locally (ClassicEngine, in a process of its own: :class:`LocalReference`), then at once through
   ``nodsynth serve`` on 127.0.0.1 (RemoteEngine, from this process), so
   that the machine's load weighs on both alike (ratio per pair, median of ``--repeats``): the *first*
   edit of the CT (the server holds nothing: it is hashed, sent, cached) and a *second* edit of the
   same CT (another seed: nothing but the request is sent; the result comes back as its changed
   boxes). Every result is checked bit-identical to the local one. Reported: wall times, remote /
   local ratios, bytes up and down; *before*: the same request as issue 6's client sent it (the whole
   request with shuffle-zlib, the whole result back) through the same server. Then per codec and per
   shaped link (:mod:`throttle_proxy`, Mbit/s each way), the first and second edit again, with
   ``local + wire bytes / bandwidth + 0.5 s`` as the bound of the first (wire bytes include ``auto``'s
   link probe). Each edit also reports where its time went (``RemoteEngine.last_seconds``), and ``auto``
   what its link probe measured.
2. **Load**: 20 concurrent clients x 3 model-free inpaint jobs on real LIDC nodule crops: total
   seconds, all results checked bit-identical to local runs, and the server's peak RSS.

Reads ``../shared/data`` (or ``NODSYNTH_SHARED_DATA``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # Testing/: the server harness
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared whole-CT pair

from bench_edit import whole_ct_pair  # noqa: E402
from nodsynth.io import wire
from nodsynth.io.atomic import write_text_atomic
from nodsynth.io.content_hash import forget
from nodsynth.engines.base import InpaintRequest  # noqa: E402
from nodsynth.engines.classic import ClassicEngine  # noqa: E402
from nodsynth.engines.remote import RemoteEngine  # noqa: E402
from nodsynth.labels import LOBE_IDS, NODULE  # noqa: E402
from server_harness import (TOKEN, ServerProcess, auth_headers, free_port, lidc_inpaint_requests,  # noqa: E402
                            run_clients, write_token)


NOISE_HU = 10.0
SETTLE_S = 1.0
"""Pause before each local run once the server has settled (:func:`settle`)."""


def settle(url: str) -> None:
    """Wait until the server has written what it caches after answering (checked volumes, results) and
    the kernel has flushed it, so that this work does not overlap the local reference run, then
    :data:`SETTLE_S` more."""
    with httpx.Client(base_url=url, headers=auth_headers(), timeout=60) as http:
        while http.get("/v1/health").json().get("cache_pending_writes"):
            time.sleep(0.05)
    os.sync()  # and the kernel's write-back of those files
    time.sleep(SETTLE_S)


LOCAL_WORKER = r"""
import dataclasses, sys, time
sys.path[:0] = sys.argv[2:]
if sys.argv[1] == "keep":
    from nodsynth.server.memory import keep_freed_memory
    assert keep_freed_memory(), "glibc's mallopt is not available here"
from bench_remote import whole_ct_request
from nodsynth.engines.classic import ClassicEngine
request = whole_ct_request()
print("ready", flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    ClassicEngine().inpaint(dataclasses.replace(request, seed=int(line)))
    print(time.perf_counter() - start, flush=True)
"""


class LocalReference:
    """The local engine timed in long-lived processes of their own (as a Slicer session's job host runs
    every local edit in turn): the bench's memory (the remote client's copies, the expected results)
    weighs neither on them nor they on the remote client. Two of them: one keeps freed memory as
    ``nodsynth serve`` does (``local_s``: the same engine cost on both sides, what the goals are judged
    by), one with glibc's defaults (``local_default_s``; measured: its edits after the first spent up to
    1.6 s of system time faulting freed memory in again on this machine)."""

    def __init__(self) -> None:
        here = Path(__file__).resolve().parent
        self.processes = [subprocess.Popen([sys.executable, "-c", LOCAL_WORKER, mode, str(here), str(here.parent)],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                          for mode in ("keep", "default")]
        for process in self.processes:
            assert process.stdout.readline().strip() == "ready", "a local reference process did not start"

    def seconds(self, request: InpaintRequest) -> tuple[float, float]:
        """Wall seconds of the local inpaint of the bench's CT with ``request``'s seed: (kept, default)."""
        times = []
        for process in self.processes:
            process.stdin.write(f"{request.seed}\n")
            process.stdin.flush()
            times.append(float(process.stdout.readline()))
        return times[0], times[1]

    def close(self) -> None:
        for process in self.processes:
            process.stdin.close()
            process.wait(timeout=60)


def whole_ct_request() -> InpaintRequest:
    """The 512 x 512 x 256 inpaint request of the module docstring (no two CT slices alike)."""
    ct, labels = whole_ct_pair()
    noise = np.random.default_rng(0).normal(0.0, NOISE_HU, ct.array.shape)
    ct = ct.with_array(np.clip(ct.array + np.rint(noise), -32768, 32767).astype(np.int16))
    flat = ct.array.reshape(ct.array.shape[0], -1)
    assert len({hash(row.tobytes()) for row in flat}) == flat.shape[0], "slices repeat"
    nodules = labels.with_array((labels.array == NODULE).astype(np.uint8))
    lungs = labels.with_array(np.isin(labels.array, LOBE_IDS).astype(np.uint8))
    return InpaintRequest(ct=ct, nodule_mask=nodules, lung_mask=lungs, subtype="solid", seed=0)


def timed(call):
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


def before_figures(url: str, request: InpaintRequest, expected: bytes, local: LocalReference) -> dict:
    """The whole request up (shuffle-zlib, no hashes: as issue 6's client sent it), the whole result down."""
    def round_trip():
        body = wire.join(wire.encode_request("inpaint", "classic", request, codec="shuffle-zlib"))
        with httpx.Client(base_url=url, headers=auth_headers(), timeout=600) as http:
            job = http.post("/v1/jobs", content=body).json()
            while http.get(f"/v1/jobs/{job['id']}").json()["state"] != "done":
                time.sleep(0.02)
            data = http.get(f"/v1/jobs/{job['id']}/result").content
            http.delete(f"/v1/jobs/{job['id']}")
        assert wire.decode_result(data).ct.array.tobytes() == expected, "remote and local results differ"
        return len(body), len(data)

    local_s, default_s = local.seconds(request)
    (up, down), seconds = timed(round_trip)
    return {"seconds": seconds, "local_s": local_s, "ratio_to_local": seconds / local_s,
            "local_default_s": default_s, "ratio_to_local_default": seconds / default_s,
            "up_mb": up / 2**20, "down_mb": down / 2**20}


def edit_pair(url: str, requests: list[InpaintRequest], expected: list[bytes], codec: str,
              local: LocalReference) -> dict:
    """First and second edit of one CT through RemoteEngine (the server's cache emptied first), each
    timed right after the same edit run locally: the machine's load changes the two alike."""
    figures = {}
    with RemoteEngine(url, token=TOKEN, timeout_s=600, codec=codec) as engine:  # default poll: long polls
        engine.forget_volumes()
        for volume in wire.request_volumes(requests[0]).values():
            forget(volume)  # hashing is part of the first edit
        for name, request, want in zip(("first", "second"), requests, expected):
            settle(url)
            local_s, default_s = local.seconds(request)
            result, seconds = timed(lambda: engine.inpaint(request))
            assert result.ct.array.tobytes() == want, f"remote and local results differ ({name}, {codec})"
            figures[name] = {"seconds": seconds, "local_s": local_s, "ratio_to_local": seconds / local_s,
                             "local_default_s": default_s, "ratio_to_local_default": seconds / default_s,
                             "server_engine_s": result.seconds,
                             "up_mb": engine.last_transfer["up"] / 2**20,
                             "down_mb": engine.last_transfer["down"] / 2**20,
                             "remote_seconds": {k: round(v, 3) for k, v in engine.last_seconds.items()}}
        figures["codec"] = engine.codec
        figures["link"] = engine.link
    return figures


def median_pair(pairs: list[dict]) -> dict:
    """Per edit, the sample with the median remote / local ratio, and every sample's ratio."""
    out = {"codec": pairs[0]["codec"], "link": pairs[0]["link"]}
    for name in ("first", "second"):
        ranked = sorted((p[name] for p in pairs), key=lambda f: f["ratio_to_local"])
        out[name] = dict(ranked[len(ranked) // 2], ratios=[round(f["ratio_to_local"], 3) for f in ranked],
                         ratios_default=[round(f["ratio_to_local_default"], 3) for f in ranked])
    return out


def edit_figures(url: str, repeats: int, codecs: list[str], links_mbit: list[float]) -> dict:
    request = whole_ct_request()
    requests = [request, dataclasses.replace(request, seed=1)]
    expected = [ClassicEngine().inpaint(req).ct.array.tobytes() for req in requests]
    local = LocalReference()
    try:
        figures = {"volume_size_ijk": list(request.ct.size_ijk), "noise_hu": NOISE_HU,
                   "request_raw_mb": sum(v.array.nbytes for v in wire.request_volumes(request).values()) / 2**20,
                   "before": before_figures(url, request, expected[0], local),
                   "loopback": {codec: median_pair([edit_pair(url, requests, expected, codec, local)
                                                    for _ in range(repeats)]) for codec in codecs},
                   "shaped": shaped_figures(url, requests, expected, codecs, links_mbit, local)}
    finally:
        local.close()
    return figures


def shaped_figures(url: str, requests: list[InpaintRequest], expected: list[bytes], codecs: list[str],
                   links_mbit: list[float], local: LocalReference) -> dict:
    """Per link and codec, first and second edit through :mod:`throttle_proxy`, with the first's bound."""
    shaped = {}
    for mbit in links_mbit:
        port = free_port()
        proxy = subprocess.Popen([sys.executable, str(Path(__file__).with_name("throttle_proxy.py")), "--listen",
                                  str(port), "--target", url.rsplit(":", 1)[1], "--mbit", str(mbit)])
        try:
            time.sleep(1.0)
            for codec in codecs:
                pair = edit_pair(f"http://127.0.0.1:{port}", requests, expected, codec, local)
                first = pair["first"]
                probed = 0 if pair["link"].get("reused") else pair["link"].get("probe_bytes", 0)  # auto's first
                wire_mb = first["up_mb"] + first["down_mb"] + probed / 2**20
                for suffix in ("", "_default"):
                    first[f"bound{suffix}_s"] = first[f"local{suffix}_s"] + wire_mb * 2**20 * 8 / (mbit * 1e6) + 0.5
                    first[f"within_bound{suffix}"] = first["seconds"] <= first[f"bound{suffix}_s"]
                shaped[f"{mbit:g}_mbit/{codec}"] = pair
        finally:
            proxy.terminate()
            proxy.wait()
    return shaped


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
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats on loopback (best is kept)")
    parser.add_argument("--codecs", default=",".join(["auto"] + wire.available_codecs()),
                        help="codecs to compare (auto: RemoteEngine's choice by its link probe)")
    parser.add_argument("--links", default="100,1000", help="shaped links to measure, Mbit/s (empty: none)")
    parser.add_argument("--skip-load", action="store_true", help="only the edit figures")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--jobs-per-client", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_remote_") as folder:
        folder = Path(folder)
        server = ServerProcess(folder / "jobs", write_token(folder)).start()
        try:
            figures = {"edits": edit_figures(server.url, args.repeats, args.codecs.split(","),
                                             [float(m) for m in args.links.split(",") if m])}
            print(json.dumps(figures["edits"], indent=1))
        finally:
            server.stop()
        if args.skip_load:
            if args.json:
                write_text_atomic(args.json, json.dumps(figures, indent=1))
            return 0
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
