"""Run long work in a separate Python process and follow it from a GUI thread that must not block.

Slicer's embedded Python starves worker threads (PythonQt keeps the GIL while the Qt event loop
idles), so the Slicer modules run every long job in a child process: a *job host* started on first
use and kept warm between jobs (engines and their networks stay loaded). The parent side
(:class:`~nodsynth.jobs.client.JobHost`) only writes the call to a job folder, sends one line on the
child's stdin, and later reads a small status file and the pickled result; none of that touches Qt,
so a ``QTimer`` (Slicer) or a sleep loop (headless) can drive it.

* :mod:`.protocol` -- the job folder (call, status, result) and the status record.
* :mod:`.host`     -- the child process (``python -m nodsynth.jobs.host``).
* :mod:`.client`   -- the parent side: start, submit, poll, cancel (kill the process tree after a
  grace period), notice a crashed child, stop.
"""
from .protocol import CANCELLED, DONE, FAILED, RUNNING, JobStatus

__all__ = ["CANCELLED", "DONE", "FAILED", "RUNNING", "JobStatus"]
