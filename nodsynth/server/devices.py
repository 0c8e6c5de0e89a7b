"""Which devices the server runs workers on, and what ``/v1/health`` says about them."""
from __future__ import annotations

import importlib.util
import os
import platform
from typing import Optional


def torch_cuda_count() -> int:
    """Number of CUDA GPUs torch sees (0 without torch or CUDA); imports torch only when installed."""
    if importlib.util.find_spec("torch") is None:
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_devices(spec: str) -> list[str]:
    """``"auto"`` -> every CUDA GPU (``cuda:0``, ...) or ``["cpu"]``; else a comma-separated list."""
    if spec.strip().lower() == "auto":
        count = torch_cuda_count()
        return [f"cuda:{i}" for i in range(count)] or ["cpu"]
    devices = [d.strip().lower() for d in spec.split(",") if d.strip()]
    return devices or ["cpu"]


def available_memory_mb() -> Optional[float]:
    """Memory the OS could give to new work (Linux ``MemAvailable``), in MiB; ``None`` if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def describe_device(device: str) -> dict:
    """Name and free memory (MiB) of one device, for ``/v1/health``."""
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index or 0
        free_b, total_b = torch.cuda.mem_get_info(index)
        return {"device": device, "kind": "GPU", "name": torch.cuda.get_device_name(index),
                "free_memory_mb": round(free_b / 2**20), "total_memory_mb": round(total_b / 2**20)}
    free = available_memory_mb()
    return {"device": device, "kind": "CPU", "name": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "free_memory_mb": None if free is None else round(free)}
