"""``nodsynth serve`` keeps the memory a job frees for the next job (nodsynth.server.memory): measured as
the page faults of a worker thread that allocates, fills and frees a 128 MiB volume again and again."""
from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

PROBE = r"""
import json, resource, sys, threading
import numpy as np
from nodsynth.server.memory import keep_freed_memory

applied = keep_freed_memory() if sys.argv[1] == "keep" else None
faults = []

def job():  # as a server job: in a thread other than the main one
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        volume = np.empty((256, 512, 512), np.int16)  # 128 MiB
        volume.fill(7)
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
        del volume

thread = threading.Thread(target=job)
thread.start()
thread.join()
print(json.dumps({"applied": applied, "faults": faults}))
"""


def _faults(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc's mallopt is Linux-with-glibc only (elsewhere the server keeps the defaults)")
def test_freed_volumes_are_reused_without_page_faults_only_when_kept():
    kept, default = _faults("keep"), _faults("default")
    print(f"page faults per 128 MiB volume in a worker thread: kept {kept['faults']}, default {default['faults']}")
    assert kept["applied"] is True
    assert max(kept["faults"][1:]) < 100  # the second and later volumes reuse the freed memory
    assert min(default["faults"][1:]) > 30  # glibc's default hands each one back and faults it in again
