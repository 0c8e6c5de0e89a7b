"""``--shard i/n``: a deterministic share of a manifest.

Shares are made of whole dependency groups (:func:`nodsynth.batch.graph.groups`), so a shard never
waits for another. Groups are taken in manifest order and each goes to the shard holding the fewest
jobs so far (the lowest index on ties): the same manifest always gives the same shares, every job
is in exactly one share, and shares differ by at most one group's size.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

from ..errors import InputError

SHARD_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: Optional[str]) -> Optional[tuple[int, int]]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``; None for None; :class:`InputError` otherwise."""
    if text is None:
        return None
    match = SHARD_PATTERN.match(str(text))
    if not match:
        raise InputError(f"--shard must look like i/n with whole numbers (e.g. 0/4), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise InputError(f"--shard {text}: the number of shards must be at least 1")
    if index >= count:
        raise InputError(f"--shard {text}: the shard index must be 0..{count - 1} (shards are numbered from 0)")
    return index, count


def assign_shards(groups: Sequence[Sequence[int]], count: int) -> list[list[int]]:
    """Job indices of each of ``count`` shards (see the module docstring), each sorted."""
    shards: list[list[int]] = [[] for _ in range(count)]
    for members in groups:
        smallest = min(range(count), key=lambda s: (len(shards[s]), s))
        shards[smallest].extend(members)
    return [sorted(s) for s in shards]
