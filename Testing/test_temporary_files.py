"""A test run leaves nothing of the code under test in $TMPDIR (conftest's per-run temporary folder)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTING = Path(__file__).resolve().parent

PROBE = '''
import subprocess, sys, tempfile

def test_leaks_as_the_code_under_test_does():
    tempfile.mkdtemp(prefix="nodmaisi-jobs-")  # a job client that is never stopped
    subprocess.run([sys.executable, "-c", "import tempfile; tempfile.mkdtemp(prefix='nodmaisi-jobs-')"], check=True)
    from torch._inductor.runtime.cache_dir_utils import cache_dir
    cache_dir()  # torch's compile cache, torchinductor_<user> by default
'''


def test_a_test_run_leaves_no_job_folders_or_torch_caches_in_tmpdir(tmp_path):
    outer = tmp_path / "tmp"
    outer.mkdir()
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("TORCHINDUCTOR_CACHE_DIR", "PYTEST_DEBUG_TEMPROOT")}
    env.update(TMPDIR=str(outer), PYTHONPATH=os.pathsep.join([str(TESTING), env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           str(tmp_path / "test_probe.py")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.name for p in outer.iterdir() if not p.name.startswith("pytest-of-")] == []
