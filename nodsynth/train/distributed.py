"""Data-parallel training under ``torchrun``: which examples a rank takes and how gradients are summed.

``torchrun --nproc_per_node W -m nodsynth train ...`` starts W processes with ``RANK``/``WORLD_SIZE``
in their environment; :func:`data_parallel` joins them (NCCL on GPUs, gloo on CPU). A step's global
batch of ``B`` examples is split by global position: rank ``r`` takes positions ``i`` with
``i mod W == r`` and keeps ``i`` for its noise and timestep draws, so the draws do not depend on W.
Each rank weights its examples' losses by ``1 / B`` (the global batch) and the gradients are summed
across ranks (one SUM all-reduce): the loss is scaled once, as in one process. Rank 0 alone logs and
saves; checkpoints hold the plain network (no ``module.`` prefix) and the world size.
Without ``torchrun`` (or with W = 1) everything is local and no process group is made. The 2.5D FID
feature pass shares its CT files the same way and gathers the features in file order.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from ..errors import InputError


@dataclass(frozen=True)
class DataParallel:
    """This process's place in the run: ``rank`` of ``world_size``."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs and writes."""
        return self.rank == 0

    def local_positions(self, batch_size: int) -> list[int]:
        """Global batch positions this rank computes (``i mod W == rank``); refuses a batch W does not divide."""
        if batch_size % self.world_size:
            raise InputError(f"--batch-size {batch_size} (the global batch) must be a multiple of the "
                             f"{self.world_size} processes")
        return list(range(self.rank, batch_size, self.world_size))

    def sum_gradients(self, parameters: Iterable) -> None:
        """Sum every parameter's gradient over the ranks (in one flat all-reduce)."""
        if self.world_size == 1:
            return
        import torch
        import torch.distributed as dist

        params = [p for p in parameters if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for parameter, grad in zip(params, grads):
            parameter.grad = flat[offset: offset + grad.numel()].view_as(grad).clone()
            offset += grad.numel()

    def sum(self, value: float, device=None) -> float:
        """``value`` summed over the ranks (losses for the log)."""
        if self.world_size == 1:
            return float(value)
        import torch
        import torch.distributed as dist

        total = torch.tensor([float(value)], dtype=torch.float64, device=device)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return float(total.item())

    def gather_in_order(self, local: Sequence[tuple[int, Any]]) -> list[Any]:
        """Every rank's ``(index, value)`` pairs, as the values in index order (on every rank)."""
        pairs = list(local)
        if self.world_size > 1:
            import torch.distributed as dist

            everyone: list = [None] * self.world_size
            dist.all_gather_object(everyone, pairs)
            pairs = [pair for part in everyone for pair in part]
        return [value for _, value in sorted(pairs, key=lambda pair: pair[0])]

    def barrier(self) -> None:
        """Wait for every rank (after rank 0 writes)."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Leave the process group (end of the run)."""
        if self.world_size > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def data_parallel(device: Optional[str] = None) -> tuple[DataParallel, Optional[str]]:
    """Join the ``torchrun`` process group if there is one; returns this rank's place and its device.

    On CUDA each rank takes GPU ``LOCAL_RANK`` (``device`` cuda or unset); on CPU ``device`` is kept.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DataParallel(), device
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return DataParallel(dist.get_rank(), dist.get_world_size()), device
