"""Counting a run as it goes (progress with ETA) and the summary at its end."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..progress import ProgressFn, no_progress
from .layout import BatchLayout
from .manifest import Job
from .worker import DONE, FAILED, SKIPPED, Outcome

ELSEWHERE = "elsewhere"
"""Done by another runner of the same manifest while this one waited for it."""
STATUSES = (DONE, SKIPPED, ELSEWHERE, FAILED)


def duration_text(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class RunCounter:
    """Counts jobs done / failed / running and reports ``progress(fraction, message)`` with an ETA."""

    def __init__(self, total: int, progress: Optional[ProgressFn] = None) -> None:
        self.total, self.report = total, progress or no_progress
        self.counts = {status: 0 for status in STATUSES}
        self.running = 0
        self.start = time.perf_counter()

    def started(self, task) -> None:
        self.running += 1
        self._report()

    def finished(self, task, outcome: Outcome) -> None:
        self.running -= 1
        self.settle(outcome.status)

    def settle(self, status: str) -> None:
        """Count a job's final status (also for jobs that never reached a worker)."""
        if status in self.counts:
            self.counts[status] += 1
        self._report()

    def eta_s(self) -> Optional[float]:
        worked = self.counts[DONE] + self.counts[FAILED]
        left = self.total - sum(self.counts.values())
        if worked == 0:
            return None
        return (time.perf_counter() - self.start) / worked * left

    def _report(self) -> None:
        finished = sum(self.counts.values())
        eta = self.eta_s()
        text = (f"{finished}/{self.total}: done {self.counts[DONE] + self.counts[ELSEWHERE]}, "
                f"skipped {self.counts[SKIPPED]}, failed {self.counts[FAILED]}, running {self.running}"
                + (f", ETA {duration_text(eta)}" if eta is not None and finished < self.total else ""))
        self.report(finished / self.total if self.total else 1.0, text)


@dataclass
class BatchSummary:
    """What a run did: one final :class:`Outcome` per job of its share."""

    manifest: Path
    layout: BatchLayout
    executor: str
    workers: int
    shard: Optional[tuple[int, int]]
    jobs: list[Job]
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    seconds: float = 0.0

    def ids(self, status: str) -> list[str]:
        return [job.id for job in self.jobs if self.outcomes[job.id].status == status]

    @property
    def ran(self) -> list[str]:
        """Jobs this run computed and committed."""
        return self.ids(DONE)

    @property
    def failed(self) -> list[str]:
        return self.ids(FAILED)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed_path(self) -> Path:
        return self.layout.failed_path(self.shard)

    def failed_rows(self) -> list[dict]:
        """One entry per failed job (the lines of ``failed.jsonl``)."""
        return [{"id": job.id, "op": job.op, "row": job.row, "error": self.outcomes[job.id].error,
                 "attempts": self.outcomes[job.id].attempt} for job in self.jobs
                if self.outcomes[job.id].status == FAILED]

    def table(self) -> str:
        """A text table per op: jobs, done, skipped, done elsewhere, failed, mean seconds per job run."""
        ops = sorted({job.op for job in self.jobs})
        header = f"{'op':<10}{'jobs':>7}{'done':>7}{'skipped':>9}{'elsewhere':>11}{'failed':>8}{'s/job':>9}"
        lines = [header, "-" * len(header)]
        for op in ops + ["total"]:
            jobs = [j for j in self.jobs if op in ("total", j.op)]
            statuses = [self.outcomes[j.id] for j in jobs]
            count = {s: sum(o.status == s for o in statuses) for s in STATUSES}
            timed = [o.seconds for o in statuses if o.status == DONE]
            mean = f"{sum(timed) / len(timed):.2f}" if timed else "-"
            lines.append(f"{op:<10}{len(jobs):>7}{count[DONE]:>7}{count[SKIPPED]:>9}{count[ELSEWHERE]:>11}"
                         f"{count[FAILED]:>8}{mean:>9}")
        share = "" if self.shard is None else f", shard {self.shard[0]}/{self.shard[1]}"
        rate = len(self.ran) / self.seconds if self.seconds > 0 else 0.0
        lines.append(f"{len(self.ran)} job(s) run in {self.seconds:.1f} s ({rate:.2f} jobs/s) by {self.workers} "
                     f"{self.executor} worker(s){share}; records in {self.layout.records}")
        if self.failed:
            lines.append(f"{len(self.failed)} failed: see {self.failed_path}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"manifest": str(self.manifest), "batch_folder": str(self.layout.root), "executor": self.executor,
                "workers": self.workers, "shard": None if self.shard is None else list(self.shard),
                "seconds": self.seconds, **{status: self.ids(status) for status in STATUSES},
                "failed_jobs": self.failed_rows()}
