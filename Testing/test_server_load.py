"""Load: 20 concurrent clients, each submitting 3 jobs, all get the local engine's exact answers.

Prints the total seconds and the server's peak memory (``-s`` shows them); the benchmark
``Testing/benchmarks/bench_remote.py`` reports the same figures as JSON.
"""
from __future__ import annotations

import csv
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import shared_path
from nodsynth.engines.base import SUBTYPES, InpaintRequest
from nodsynth.engines.classic import ClassicEngine
from nodsynth.engines.remote import RemoteEngine
from nodsynth.volume import read_volume
from server_harness import TOKEN, ServerProcess, write_token

CLIENTS = 20
JOBS_PER_CLIENT = 3


def lidc_inpaint_requests(clients: int, jobs_per_client: int) -> list[list[InpaintRequest]]:
    """Per client, ``jobs_per_client`` inpaint requests on its own real LIDC nodule crop."""
    with open(shared_path("lidc_vois", "nodules.csv"), newline="") as handle:
        files = [row["file"] for row in csv.DictReader(handle)][:clients]
    plans = []
    for c, name in enumerate(files):
        ct = read_volume(shared_path("lidc_vois", "image", name))
        mask = read_volume(shared_path("lidc_vois", "nodule_mask", name))
        plans.append([InpaintRequest(ct=ct, nodule_mask=mask, subtype=SUBTYPES[j % 3], seed=100 * c + j)
                      for j in range(jobs_per_client)])
    return plans


def run_clients(url: str, plans: list[list[InpaintRequest]]) -> list[list]:
    """Every client in its own thread with its own connection, its jobs one after another."""
    def client(requests):
        with RemoteEngine(url, token=TOKEN, poll_interval_s=0.1, timeout_s=120) as engine:
            return [engine.inpaint(r) for r in requests]

    with ThreadPoolExecutor(len(plans)) as pool:
        return list(pool.map(client, plans))


def test_twenty_clients_three_jobs_each_all_correct(tmp_path):
    plans = lidc_inpaint_requests(CLIENTS, JOBS_PER_CLIENT)
    assert len(plans) == CLIENTS
    engine = ClassicEngine()
    expected = [[engine.inpaint(r).ct for r in requests] for requests in plans]
    server = ServerProcess(tmp_path / "jobs", write_token(tmp_path)).start()
    try:
        start = time.perf_counter()
        results = run_clients(server.url, plans)
        seconds = time.perf_counter() - start
        peak_mb = server.peak_rss_mb()
    finally:
        server.stop()
    for got_client, want_client in zip(results, expected):
        assert len(got_client) == JOBS_PER_CLIENT
        for got, want in zip(got_client, want_client):
            assert got.ct.array.tobytes() == want.array.tobytes()
            assert got.ct.origin.tobytes() == want.origin.tobytes()
    print(f"\n{CLIENTS} clients x {JOBS_PER_CLIENT} jobs: {seconds:.1f} s total, server peak RSS {peak_mb:.0f} MiB")
    assert peak_mb < 2048
