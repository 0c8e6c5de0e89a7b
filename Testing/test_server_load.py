"""Load: 20 concurrent clients, each submitting 3 jobs, all get the local engine's exact answers.

Prints the total seconds and the server's peak memory (``-s`` shows them); the benchmark
``Testing/benchmarks/bench_remote.py`` reports the same figures as JSON.
"""
from __future__ import annotations

import time

from nodsynth.engines.classic import ClassicEngine
from server_harness import ServerProcess, lidc_inpaint_requests, run_clients, write_token

CLIENTS = 20
JOBS_PER_CLIENT = 3


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
