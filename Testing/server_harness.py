"""A real ``nodsynth serve`` in a subprocess on a free loopback port, for the server and remote tests."""
from __future__ import annotations

import csv
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import httpx
import numpy as np

from conftest import shared_path
from nodsynth.io import wire
from nodsynth.engines.base import SUBTYPES, InpaintRequest
from nodsynth.engines.remote import RemoteEngine
from nodsynth.server.cache import CACHE_FOLDER
from nodsynth.server.jobs import INCOMING_PREFIX, TRASH_PREFIX
from nodsynth.server.lock import LOCK_FILE
from nodsynth.io.volume_files import read_volume

TOKEN = "test-token-6f1d2c9a8b7e4f30a1b2c3d4"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_token(folder: Path, token: str = TOKEN) -> Path:
    path = folder / "token.txt"
    path.write_text(token + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


class ServerProcess:
    """``python -m nodsynth serve`` with its log in ``log_path``; stopped with :meth:`stop` or :meth:`kill`."""

    def __init__(self, jobs_dir: Path, token_file: Optional[Path], engines: str = "classic",
                 extra_args: Sequence[str] = (), env: Optional[dict] = None,
                 launcher: Sequence[str] = (sys.executable, "-m", "nodsynth")) -> None:
        self.jobs_dir, self.token_file, self.engines = Path(jobs_dir), token_file, engines
        self.extra_args, self.env, self.launcher = list(extra_args), env, list(launcher)
        self.log_path = self.jobs_dir.parent / f"server-{self.jobs_dir.name}.log"
        self.process: Optional[subprocess.Popen] = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self, port: Optional[int] = None) -> "ServerProcess":
        """Start the process on ``port`` (default: a free one) without waiting for it."""
        self.port = port or free_port()
        auth = ["--token-file", str(self.token_file)] if self.token_file else ["--insecure-no-token"]
        cmd = [*self.launcher, "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--jobs-dir", str(self.jobs_dir), "--engines", self.engines, "--devices", "cpu",
               "--log-level", "warning", *auth, *self.extra_args]
        env = dict(os.environ, **(self.env or {}))
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        return self

    def start(self, timeout_s: float = 90.0, port: Optional[int] = None) -> "ServerProcess":
        """Start on ``port`` (default: a free one) and wait until ``/v1/health`` answers."""
        self.launch(port)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/v1/health", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"server did not become ready in {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def peak_rss_mb(self) -> float:
        """The server process's peak resident memory so far (Linux ``VmHWM``), MiB."""
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        raise RuntimeError("VmHWM not found")

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as in a power cut or the OOM killer."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def auth_headers(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


def jobs_dir_entries(jobs_dir: Path, settle_s: float = 10.0) -> list[str]:
    """What the jobs folder holds besides the running server's lock file, once the folders in passing are
    gone (at most ``settle_s``): deleted jobs' (``.discarded-*``, removed in the background) and uploads'
    (``.incoming-*``, removed when a refused or abandoned upload's handler ends, which for a client that
    hung up mid-upload is after the client saw its error)."""
    if not Path(jobs_dir).exists():
        return []
    deadline = time.monotonic() + settle_s
    while True:
        names = sorted(p.name for p in Path(jobs_dir).iterdir() if p.name not in (LOCK_FILE, CACHE_FOLDER))
        if not any(name.startswith((TRASH_PREFIX, INCOMING_PREFIX)) for name in names) or time.monotonic() > deadline:
            return names
        time.sleep(0.02)


def lidc_inpaint_requests(clients: int, jobs_per_client: int) -> list[list[InpaintRequest]]:
    """Per client, ``jobs_per_client`` inpaint requests on its own real LIDC nodule crop."""
    with open(shared_path("lidc_vois", "nodules.csv"), newline="") as handle:
        files = [row["file"] for row in csv.DictReader(handle)][:clients]
    plans = []
    for c, name in enumerate(files):
        ct = read_volume(shared_path("lidc_vois", "image", name))
        mask = read_volume(shared_path("lidc_vois", "nodule_mask", name))
        plans.append([InpaintRequest(ct=ct, nodule_mask=mask, subtype=SUBTYPES[j % 3], seed=100 * c + j)
                      for j in range(jobs_per_client)])
    return plans


def run_clients(url: str, plans: list[list[InpaintRequest]]) -> list[list]:
    """Every client in its own thread with its own connection, its jobs one after another."""
    def client(requests):
        with RemoteEngine(url, token=TOKEN, poll_interval_s=0.1, timeout_s=120) as engine:
            return [engine.inpaint(r) for r in requests]

    with ThreadPoolExecutor(len(plans)) as pool:
        return list(pool.map(client, plans))


def zip_bomb(shape: Sequence[int] = (1024, 1024, 1024), dtype: str = "<i2") -> bytes:
    """An inpaint request whose CT of ``shape`` is all zeros: each 4 MiB chunk compresses to about 4 KiB,
    so the default 2 GiB CT travels in a 2 MiB body."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    zero_chunk = zlib.compress(bytes(wire.CHUNK_BYTES), 9)
    count = nbytes // wire.CHUNK_BYTES
    entry = {"name": "ct", "kind": "volume", "dtype": dtype, "shape": list(shape), "spacing": [1.0] * 3,
             "origin": [0.0] * 3, "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1], "codec": wire.DEFAULT_CODEC,
             "chunks": count}
    header = json.dumps({"kind": "request", "operation": "inpaint", "engine": "classic", "parameters": {},
                         "arrays": [entry]}).encode("utf-8")
    framed = struct.pack("<I", len(zero_chunk)) + zero_chunk
    return struct.pack("<8sHI", wire.MAGIC, wire.WIRE_VERSION, len(header)) + header + framed * count


def post_measuring_memory(jobs_dir: Path, body: bytes, as_mb: Optional[int] = None) -> tuple[httpx.Response, float, float]:
    """POST ``body`` as a job to a fresh server (under ``prlimit --as=as_mb`` MiB when given); returns the
    answer and the server's peak RSS (MiB) before and after it."""
    launcher = [sys.executable, "-m", "nodsynth"]
    if as_mb:
        launcher = ["prlimit", f"--as={as_mb << 20}", *launcher]
    server = ServerProcess(jobs_dir, write_token(Path(jobs_dir).parent), launcher=launcher).start()
    try:
        idle_mb = server.peak_rss_mb()
        response = httpx.post(server.url + "/v1/jobs", content=body, headers=auth_headers(), timeout=300)
        return response, idle_mb, server.peak_rss_mb()
    finally:
        server.stop()
