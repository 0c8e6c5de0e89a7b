"""Torch device choice and the numeric mode that goes with it (CUDA: float16 autocast; CPU: float32)."""
from __future__ import annotations

import contextlib
import os
from typing import Optional

import torch

from ...errors import InputError


def resolve_device(device: Optional[str | torch.device] = None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; a string is checked (``cuda`` without a GPU is an error)."""
    if device is None or str(device).strip() == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown torch device {device!r} (use cpu, cuda or cuda:N)") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was asked for but this machine has no CUDA GPU; use --device cpu")
    return resolved


def autocast_context(device: torch.device):
    """Mixed precision (float16 autocast) on CUDA as MAISI runs it; full float32 elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def available_memory_bytes() -> Optional[int]:
    """Memory this machine can still give (Linux ``MemAvailable``, else POSIX free pages); None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None
