"""Choosing a study's nodules so that subtypes and sizes are balanced, as far as the inputs allow.

Nodules fall into strata of (subtype, size bin); the bins are HR-LDM Fig. 4's 6-10, 10-20 and
20-30 mm (lower edge included, 30 mm in the last bin), nodules outside them go to ``<6`` or ``>30``
and are used only when the binned ones run out. The allocation first gives real and synthetic the
**same** count per stratum (a size or subtype that only one side has would tell the reader the
answer), spread as evenly over the strata as their contents allow (water filling); what either
side still needs then comes from its remaining nodules, again evenly. Within a stratum the nodules
are drawn at random (seeded).
"""
from __future__ import annotations

from collections import Counter
from typing import Hashable, Mapping, Sequence

import numpy as np

from ..errors import InputError

SIZE_BINS_MM = ((6.0, 10.0, "6-10"), (10.0, 20.0, "10-20"), (20.0, 30.0, "20-30"))
"""(low, high, name): a diameter ``d`` is in a bin when ``low <= d < high`` (``d <= 30`` for the last)."""
BELOW, ABOVE, UNKNOWN = "<6", ">30", "unknown"
SIZE_BIN_NAMES = tuple(name for _, _, name in SIZE_BINS_MM) + (BELOW, ABOVE, UNKNOWN)


def size_bin(diameter_mm: float) -> str:
    """The size bin of a diameter (mm); ``unknown`` for a missing (NaN) one."""
    if diameter_mm != diameter_mm:
        return UNKNOWN
    if diameter_mm < SIZE_BINS_MM[0][0]:
        return BELOW
    for low, high, name in SIZE_BINS_MM:
        if low <= diameter_mm < high or (name == SIZE_BINS_MM[-1][2] and diameter_mm == high):
            return name
    return ABOVE


def in_range(stratum: tuple[str, str]) -> bool:
    return stratum[1] not in (BELOW, ABOVE, UNKNOWN)


def water_fill(capacity: Mapping[Hashable, int], total: int) -> dict:
    """Spread ``total`` over the keys as evenly as their capacities allow (one at a time, round robin).

    Keys with room left take turns in their given order; raises when the capacities hold less than ``total``.
    """
    if total > sum(capacity.values()):
        raise InputError(f"cannot place {total} nodules in strata holding {sum(capacity.values())}")
    given = {key: 0 for key in capacity}
    remaining = total
    while remaining:
        open_keys = [k for k in capacity if given[k] < capacity[k]]
        for key in open_keys[:remaining]:
            given[key] += 1
        remaining -= min(len(open_keys), remaining)
    return given


def fill_in_range_first(capacity: Mapping[tuple[str, str], int], total: int) -> dict:
    """:func:`water_fill` over the binned strata, then over ``<6`` / ``>30`` for what is left."""
    binned = {k: v for k, v in capacity.items() if in_range(k)}
    first = water_fill(binned, min(total, sum(binned.values())))
    rest = water_fill({k: v for k, v in capacity.items() if not in_range(k)}, total - sum(first.values()))
    return {**first, **rest}


def allocate(real: Mapping[tuple[str, str], int], synthetic: Mapping[tuple[str, str], int],
             n_real: int, n_synthetic: int) -> tuple[dict, dict]:
    """Per-stratum counts for both sides (see the module docstring)."""
    strata = sorted(set(real) | set(synthetic))
    shared = fill_in_range_first({s: min(real.get(s, 0), synthetic.get(s, 0)) for s in strata},
                                 min(n_real, n_synthetic, sum(min(real.get(s, 0), synthetic.get(s, 0))
                                                               for s in strata)))
    result = []
    for available, wanted in ((real, n_real), (synthetic, n_synthetic)):
        extra = fill_in_range_first({s: available.get(s, 0) - shared[s] for s in strata},
                                    wanted - sum(shared.values()))
        result.append({s: shared[s] + extra[s] for s in strata if shared[s] + extra[s]})
    return result[0], result[1]


def choose(strata_of_items: Sequence[tuple[str, str]], counts: Mapping[tuple[str, str], int],
           rng: np.random.Generator) -> list[int]:
    """Indices of the items drawn at random within each stratum, ``counts[stratum]`` of each."""
    chosen = []
    for stratum, count in sorted(counts.items()):
        members = [i for i, s in enumerate(strata_of_items) if s == stratum]
        chosen += [members[i] for i in rng.permutation(len(members))[:count]]
    return sorted(chosen)


def balance_table(strata_by_truth: Mapping[str, Sequence[tuple[str, str]]],
                  available_by_truth: Mapping[str, Sequence[tuple[str, str]]]) -> dict:
    """How the chosen nodules spread: per side, counts by subtype, size bin and stratum, and what was available."""
    table = {}
    for truth, strata in strata_by_truth.items():
        table[truth] = {"n": len(strata),
                        "subtype": dict(sorted(Counter(s for s, _ in strata).items())),
                        "size_bin": {b: n for b in SIZE_BIN_NAMES if (n := sum(1 for _, x in strata if x == b))},
                        "strata": {f"{s} {b}": n for (s, b), n in sorted(Counter(strata).items())},
                        "available": {f"{s} {b}": n for (s, b), n in
                                      sorted(Counter(available_by_truth[truth]).items())}}
    sides = list(table)
    if len(sides) == 2:
        keys = set(table[sides[0]]["strata"]) | set(table[sides[1]]["strata"])
        table["strata_matched"] = all(table[sides[0]]["strata"].get(k, 0) == table[sides[1]]["strata"].get(k, 0)
                                      for k in keys)
    return table
