"""Job targets for the job-process tests (importable by the job process: the Testing folder is on the
parent's ``sys.path``, which the host inherits as ``PYTHONPATH``)."""
from __future__ import annotations

import os
import signal
import time
import weakref


def count(n: int, pause_s: float = 0.0, progress=None, cancel=None) -> int:
    """Sum 0..n-1, reporting progress and honouring cancel at every step."""
    total = 0
    for i in range(n):
        cancel.raise_if_cancelled()
        total += i
        progress((i + 1) / n, f"step {i + 1}/{n}")
        time.sleep(pause_s)
    return total


def fail(progress=None, cancel=None):
    from nodsynth.errors import InputError

    raise InputError("point (1, 2, 3) mm lies outside the volume")


def pid(progress=None, cancel=None) -> int:
    return os.getpid()


def die(progress=None, cancel=None):
    """What the out-of-memory killer does to a job process."""
    progress(0.1, "allocating")
    os.kill(os.getpid(), signal.SIGKILL)


def stubborn(seconds: float, progress=None, cancel=None):
    """Work that never looks at its cancel token (e.g. one long network call)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        progress(0.5, "busy")
        time.sleep(0.02)
    return "finished"


def total(values, progress=None, cancel=None) -> int:
    return int(sum(values))


def segfault(progress=None, cancel=None):
    """A fatal error in native code (a bad extension module, a driver)."""
    import ctypes

    progress(0.1, "reading")
    ctypes.string_at(0)


def leave(status: int, progress=None, cancel=None):
    """Native code that ends the process with a status of its own."""
    os._exit(status)


def token_digest(settings, progress=None, cancel=None) -> str:
    """The SHA-256 of what a remote engine would send as its bearer token (the token itself would
    land in the result file)."""
    import hashlib

    return hashlib.sha256(settings.token.encode()).hexdigest()


NETWORK_LOADS: dict = {}
NETWORKS_SEEN = weakref.WeakSet()
"""The networks engine jobs used, while anything keeps them (the engine cache)."""


def count_network_loads(progress=None, cancel=None) -> None:
    """From now on this job process counts, by engine, how often NodMAISI loads its networks."""
    from nodsynth.engines.nodmaisi.engine import NodMAISIEngine

    load = NodMAISIEngine._load

    def counted(engine):
        NETWORK_LOADS[engine.name] = NETWORK_LOADS.get(engine.name, 0) + 1
        return load(engine)

    NodMAISIEngine._load = counted


def network_loads(progress=None, cancel=None) -> dict:
    return dict(NETWORK_LOADS)


def parameters_of(engine, progress=None, cancel=None) -> int:
    """An engine job (``run_with_engine``) that only needs the networks: how many parameters they hold."""
    networks = engine.networks
    NETWORKS_SEEN.add(networks.diffusion_unet)
    return sum(p.numel() for net in (networks.autoencoder, networks.diffusion_unet, networks.controlnet)
               for p in net.parameters())


def process_memory(progress=None, cancel=None) -> dict:
    """This job process's resident memory (MiB, Linux), the engines it keeps warm and how many of the
    networks engine jobs used are still alive."""
    import gc

    import NodMAISICommon.engines as engines

    gc.collect()
    rss_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:"))
    return {"rss_mb": rss_kb / 1024, "warm": sorted(engines._WARM_ENGINES), "networks": len(NETWORKS_SEEN)}


def padded_ct(shape_kji, progress=None, cancel=None):
    """A CT-sized result (what an engine returns for a whole scan)."""
    import numpy as np

    from nodsynth.volume import Volume

    return Volume(np.full(shape_kji, -1000, dtype=np.int16), (0.7, 0.7, 1.25), (0.0, 0.0, 0.0), np.eye(3))
