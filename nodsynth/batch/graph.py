"""Jobs that read another job's output: dependencies, stages and independent groups.

A job depends on the job that writes one of its inputs. Stage 0 holds the jobs with no dependency,
stage ``s`` those whose producers are all in earlier stages; runners finish a stage before starting
the next. Groups (connected components of the dependency graph) never share a file, so a shard
made of whole groups runs on its own.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .manifest import Job


def real(path: Path) -> str:
    """The path with symbolic links and ``..`` resolved, to compare files."""
    return os.path.realpath(path)


def producers(jobs: Sequence[Job]) -> tuple[dict[str, int], list[str]]:
    """(real output path -> index of the job writing it, problems for outputs written by two jobs)."""
    owner: dict[str, int] = {}
    problems = []
    for index, job in enumerate(jobs):
        for name, path in job.outputs.items():
            key = real(path)
            if key in owner and owner[key] != index:
                other = jobs[owner[key]]
                problems.append(f"row {job.row}: output '{name}' {path} is also written by row {other.row} "
                                f"(job {other.id!r}); two jobs must not write one output")
            else:
                owner[key] = index
    return owner, problems


def dependencies(jobs: Sequence[Job], owner: dict[str, int]) -> list[set[int]]:
    """For each job, the indices of the other jobs that write its inputs."""
    return [{owner[real(p)] for p in job.inputs.values() if owner.get(real(p), index) != index}
            for index, job in enumerate(jobs)]


def _peel(needs: Sequence[set[int]], stage: list[int]) -> set[int]:
    """Kahn's algorithm: fills ``stage`` for every job it can order; returns the jobs it cannot."""
    waiting = [len(d) for d in needs]
    users: list[list[int]] = [[] for _ in needs]
    for index, producers_of in enumerate(needs):
        for producer in producers_of:
            users[producer].append(index)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    while ready:
        index = ready.pop()
        for user in users[index]:
            stage[user] = max(stage[user], stage[index] + 1)
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    return {i for i, n in enumerate(waiting) if n > 0}


def stages(deps: Sequence[set[int]]) -> tuple[list[int], list[int]]:
    """(stage of each job, sorted indices of the jobs on a dependency cycle).

    Jobs that only wait for a cycle are not listed: peeling the graph from both ends leaves the cycles.
    """
    stage = [0] * len(deps)
    forward = _peel(deps, stage)
    users: list[set[int]] = [set() for _ in deps]
    for index, producers_of in enumerate(deps):
        for producer in producers_of:
            users[producer].add(index)
    backward = _peel(users, [0] * len(deps))
    return stage, sorted(forward & backward)


def groups(deps: Sequence[set[int]]) -> list[list[int]]:
    """Connected components of the dependency graph, each sorted, ordered by their first job."""
    parent = list(range(len(deps)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for index, needs in enumerate(deps):
        for producer in needs:
            a, b = find(index), find(producer)
            if a != b:
                parent[max(a, b)] = min(a, b)
    members: dict[int, list[int]] = {}
    for index in range(len(deps)):
        members.setdefault(find(index), []).append(index)
    return sorted(members.values(), key=lambda m: m[0])
