"""Random draws keyed by what they are for, so a run repeats exactly at any world size and after a resume.

Every random number a trainer uses comes from a generator seeded by ``(seed, step, global example
index)`` (noise, timesteps) or ``(seed, step)`` (which examples a step uses), never from a shared
stream whose position depends on how many draws came before, on the rank or on a restart.
Networks are initialised under :func:`seeded_init`, which leaves the global generator as it was.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

EXAMPLE_CHOICE = -1
"""The index under which a step's choice of examples is drawn (no example has it)."""
VALIDATION_STEP = -1
"""The step under which validation draws are keyed: the same noise at every validation (no step has it)."""


def draw_seed(seed: int, step: int, index: int) -> int:
    """A 63-bit seed from ``(seed, step, index)`` (numpy's ``SeedSequence`` hashing: no collisions by arithmetic)."""
    words = [int(v) & 0xFFFFFFFF for v in (seed, seed >> 32, step, index, index >> 32)]
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def keyed_generator(seed: int, step: int, index: int):
    """A CPU ``torch.Generator`` for the draws of example ``index`` at ``step``."""
    import torch

    return torch.Generator(device="cpu").manual_seed(draw_seed(seed, step, index))


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Build networks inside: the global CPU generator starts from ``seed`` and is restored afterwards."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(int(seed))
        yield
