"""A real Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) for the PACS tests and benchmark, reachable
on loopback only.

Orthanc 1.10 has no bind-address option and listens on every interface, so it runs inside a network
namespace of its own (``unshare --net``, loopback up) together with the client code: this file is run
as ``unshare --net python orthanc_sandbox.py SCENARIO_FILE FUNCTION WORKDIR [ARGS...]``
(:func:`run_scenario`); inside, it starts Orthanc with its storage under WORKDIR, calls
``FUNCTION(orthanc, workdir, *args)`` from SCENARIO_FILE, writes what it returns to WORKDIR/result.json
and stops Orthanc by its PID.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

ORTHANC = "/usr/sbin/Orthanc"
PLUGIN_FOLDERS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")
HTTP_PORT, DICOM_PORT = 8042, 4242
USER, PASSWORD = "nodsynth", "pacs-test-password"
UNSHARE = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--net"]
"""A new network namespace; without root, inside a new user namespace (where unprivileged ones are allowed)."""
SERVER_AET, CLIENT_AET = "ORTHANC", "NODSYNTH"


@dataclass(frozen=True)
class Orthanc:
    pid: int
    dicomweb_url: str
    rest_url: str
    dimse: str
    basic_auth_file: str


def dicomweb_plugin() -> Optional[str]:
    for folder in PLUGIN_FOLDERS:
        for path in sorted(Path(folder).glob("libOrthancDicomWeb.so*")) if Path(folder).is_dir() else []:
            return str(path)
    return None


def sandbox_missing() -> Optional[str]:
    """Why the sandbox cannot run here (a message for ``pytest.skip``), or None."""
    if not Path(ORTHANC).is_file():
        return f"no Orthanc ({ORTHANC}); install the Debian packages orthanc and orthanc-dicomweb"
    if dicomweb_plugin() is None:
        return f"no Orthanc DICOMweb plugin libOrthancDicomWeb.so in {' or '.join(PLUGIN_FOLDERS)}; install orthanc-dicomweb"
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "no unshare or ip command (util-linux, iproute2): cannot isolate Orthanc in a network namespace"
    probe = subprocess.run([*UNSHARE, "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if probe.returncode:
        return f"cannot create a network namespace ({' '.join(UNSHARE)}: {probe.stderr.strip() or probe.returncode})"
    return None


def run_scenario(scenario_file: Path, function: str, workdir: Path, *args: str, timeout_s: float = 600) -> dict:
    """Run ``function`` of ``scenario_file`` beside a fresh Orthanc in a new network namespace; its result."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                      os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([*UNSHARE, sys.executable, __file__, str(scenario_file), function, str(workdir),
                           *args], capture_output=True, text=True, timeout=timeout_s, env=env)
    if done.returncode:
        raise AssertionError(f"scenario {function} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}")
    return json.loads((workdir / "result.json").read_text())


def _config(workdir: Path, http_port: int, dicom_port: int) -> Path:
    config = {
        "Name": "nodsynth-test", "StorageDirectory": str(workdir / "orthanc-storage"),
        "IndexDirectory": str(workdir / "orthanc-storage"), "HttpPort": http_port, "DicomPort": dicom_port,
        "DicomAet": SERVER_AET, "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD}, "Plugins": [dicomweb_plugin()],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "DicomCheckCalledAet": True,
        "DicomModalities": {"nodsynth": {"AET": CLIENT_AET, "Host": "127.0.0.1", "Port": 11112, "AllowGet": True}},
        "DicomAlwaysAllowStore": True, "StorageCompression": False, "OverwriteInstances": False,
    }
    path = workdir / "orthanc.json"
    path.write_text(json.dumps(config))
    return path


def _wait_until_up(rest_url: str, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, rest_url, USER, PASSWORD)
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(manager))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc stopped at start-up ({process.returncode}):\n{log.read_text()[-4000:]}")
        with contextlib.suppress(OSError):
            with opener.open(f"{rest_url}/system", timeout=2) as answer:
                if answer.status == 200:
                    return
        time.sleep(0.2)
    raise RuntimeError(f"Orthanc did not answer within {timeout_s} s:\n{log.read_text()[-4000:]}")


_PROCESSES: dict[int, subprocess.Popen] = {}


def stop(server: Orthanc) -> None:
    """Stop an Orthanc of :func:`orthanc` before its block ends (by its PID), and wait for it."""
    process = _PROCESSES[server.pid]
    os.kill(process.pid, 15)
    process.wait(timeout=30)


@contextlib.contextmanager
def orthanc(workdir: Path, http_port: int = HTTP_PORT, dicom_port: int = DICOM_PORT,
            nodelay: bool = True) -> Iterator[Orthanc]:
    """A running Orthanc with its storage in ``workdir`` (call inside the namespace only); stopped by PID
    (unless the caller stopped it already). DCMTK, Orthanc's DICOM layer, disables Nagle's algorithm on its
    sockets only when the environment says ``TCP_NODELAY=1`` (measured here: a C-ECHO takes ~44 ms without,
    ~3 ms with); ``nodelay=False`` starts it without."""
    workdir.mkdir(parents=True, exist_ok=True)
    auth = workdir / "orthanc-basic-auth"
    auth.write_text(f"{USER}:{PASSWORD}\n")
    auth.chmod(0o600)
    log = workdir / "orthanc.log"
    with open(log, "w") as log_file:
        process = subprocess.Popen([ORTHANC, str(_config(workdir, http_port, dicom_port))], stdout=log_file,
                                   stderr=subprocess.STDOUT, env=dict(os.environ, TCP_NODELAY=str(int(nodelay))))
    try:
        _PROCESSES[process.pid] = process
        rest = f"http://127.0.0.1:{http_port}"
        _wait_until_up(rest, process, log)
        yield Orthanc(process.pid, f"{rest}/dicom-web", rest, f"127.0.0.1:{dicom_port}", str(auth))
    finally:
        if process.poll() is None:
            os.kill(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, 9)
            process.wait()


def _inside(scenario_file: str, function: str, workdir: str, *args: str) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    spec = importlib.util.spec_from_file_location("scenario", scenario_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = Path(workdir)
    with orthanc(folder) as server:
        result = getattr(module, function)(server, folder, *args)
    (folder / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    import orthanc_sandbox  # the module the scenarios import, not a second copy of it as __main__

    orthanc_sandbox._inside(*sys.argv[1:])
