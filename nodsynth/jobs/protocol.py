"""The job folder both sides of a job host share, and the status record read from it.

One folder per job, made by the parent::

    <job>/call.pkl      pickled (target "module:function", args, kwargs), written before the job is sent
    <job>/status.json   the job's state, progress fraction 0..1 and message (rewritten atomically)
    <job>/result.pkl    the pickled return value, written atomically before the status says "done"

and ``store/<hash>.pkl`` beside the jobs: inputs put once (a CT clicked again and again) that jobs
name with :class:`Stored` instead of carrying them. The host process records itself beside them:
``host.json`` (its own pid, and on the way out how it ended) and ``host.fault`` (the traceback of a
fatal error), so the parent can tell a kill from a crash from an exit even through a launcher
(``PythonSlicer`` exits with status 1 whatever killed its child).

A target is called as ``function(*args, progress=fn(fraction, message), cancel=CancelToken, **kwargs)``,
nodsynth's convention for long work.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import pickle
import struct
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ..io.atomic import atomic_path, retry_refused

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"
CALL_FILE, STATUS_FILE, RESULT_FILE = "call.pkl", "status.json", "result.pkl"
HOST_STATE_FILE, HOST_FAULT_FILE = "host.json", "host.fault"
PICKLE_PROTOCOL = 4
"""Readable by every Python the modules run on (Slicer 5.8 ships 3.9)."""
WRITE_PATIENCE_S = 5.0
"""How long a status is retried while the other side holds the file open (Windows refuses to replace
an open file; a reader holds it for milliseconds)."""
READ_PATIENCE_S = 0.02
"""How long a read is retried while the file is being replaced (Windows refuses to open it meanwhile);
short, the reader is a GUI thread: after that the caller keeps the status it read before."""


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of a job: state, progress fraction 0..1 and message; for a failure the error's
    message, exception type name and traceback text."""

    state: str
    fraction: float = 0.0
    message: str = ""
    error: str = ""
    error_type: str = ""
    details: str = ""

    @property
    def finished(self) -> bool:
        return self.state != RUNNING


STORE_FOLDER = "store"


@dataclass(frozen=True)
class Stored:
    """A job argument the host already holds under ``key`` (see ``JobHost.put``)."""

    key: str


@dataclass(frozen=True)
class Secret:
    """Stands in the call file for a secret (a server token): the host got its value on stdin, under
    ``key``, and holds it in memory only."""

    key: str


def is_secret_field(field: "dataclasses.Field") -> bool:
    """A dataclass field marked ``metadata={"secret": True}`` (never written to a job folder)."""
    return bool(field.metadata.get("secret"))


def hide_secrets(values: tuple) -> tuple:
    """``(values, secrets)``: each dataclass in ``values`` with its non-empty secret fields replaced by
    :class:`Secret` references, and ``{key: value}`` of what they stand for."""
    secrets: dict = {}

    def hide(value: Any) -> Any:
        if not dataclasses.is_dataclass(value) or isinstance(value, type):
            return value
        hidden = {}
        for field in dataclasses.fields(value):
            text = getattr(value, field.name)
            if is_secret_field(field) and text and not isinstance(text, Secret):
                key = uuid.uuid4().hex
                secrets[key], hidden[field.name] = text, Secret(key)
        return dataclasses.replace(value, **hidden) if hidden else value

    return tuple(hide(value) for value in values), secrets


def reveal_secrets(value: Any, secrets: dict) -> Any:
    """``value`` with the :class:`Secret` fields of a dataclass filled in from ``secrets``."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return value
    revealed = {f.name: secrets[getattr(value, f.name).key] for f in dataclasses.fields(value)
                if isinstance(getattr(value, f.name), Secret)}
    return dataclasses.replace(value, **revealed) if revealed else value


def stored_path(root: Path, key: str) -> Path:
    return root / STORE_FOLDER / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:32] + ".pkl")


STORED_PIECE_BYTES = 4 * 2 ** 20
"""How much of a stored input is written per step (a GUI timer tick: about 10 ms)."""


def write_pieces(path: Path, value: Any, piece_bytes: int = STORED_PIECE_BYTES,
                 pickler: type = pickle.Pickler) -> Iterator[None]:
    """Write ``value`` to ``path`` one piece per step: the generator writes up to ``piece_bytes`` each
    time it is advanced, and the file appears under its name, complete, after the last step (abandoned,
    it leaves nothing). Arrays go out of band (pickle protocol 5): their bytes are written as they lie."""
    import io

    buffers: list = []
    head = io.BytesIO()
    pickler(head, protocol=5, buffer_callback=buffers.append).dump(value)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(struct.pack("<QQ", len(head.getbuffer()), len(buffers)))
        handle.write(head.getbuffer())
        for buffer in buffers:
            raw = buffer.raw()
            handle.write(struct.pack("<Q", raw.nbytes))
            for start in range(0, raw.nbytes, piece_bytes):
                yield
                handle.write(raw[start:start + piece_bytes])


def read_pieces(path: Path, piece_bytes: int = STORED_PIECE_BYTES) -> Iterator[Optional[tuple]]:
    """Read what :func:`write_pieces` wrote, one piece per step: yields ``None`` while reading, then
    ``(value,)`` (its arrays are the bytes read, not copied again)."""
    with open(path, "rb") as handle:
        head_bytes, count = struct.unpack("<QQ", handle.read(16))
        head = handle.read(head_bytes)
        buffers = []
        for _ in range(count):
            (size,) = struct.unpack("<Q", handle.read(8))
            buffer = bytearray(size)
            view = memoryview(buffer)
            for start in range(0, size, piece_bytes):
                yield None
                handle.readinto(view[start:start + piece_bytes])
            buffers.append(buffer)
    yield (pickle.loads(head, buffers=buffers),)


def read_whole(path: Path) -> Any:
    """The value :func:`write_pieces` wrote, read at once."""
    *_, (value,) = read_pieces(path, piece_bytes=2 ** 62)
    return value


def stored_pieces(root: Path, key: str, value: Any, piece_bytes: int = STORED_PIECE_BYTES) -> Iterator[None]:
    """Write a stored input one piece per step (see :func:`write_pieces`)."""
    return write_pieces(stored_path(root, key), value, piece_bytes)


def read_stored(root: Path, key: str) -> Any:
    try:
        return read_whole(stored_path(root, key))
    except FileNotFoundError:
        raise FileNotFoundError(f"the stored job input {key!r} is gone") from None


def write_call(job_dir: Path, target: str, args: tuple, kwargs: dict) -> None:
    """Store the call a job makes (``target`` is ``"package.module:function"``)."""
    if target.count(":") != 1:
        raise ValueError(f"a job target is 'module:function', got {target!r}")
    with atomic_path(job_dir / CALL_FILE) as tmp, open(tmp, "wb") as handle:
        pickle.dump((target, tuple(args), dict(kwargs)), handle, protocol=PICKLE_PROTOCOL)


def import_target(target: str) -> Callable[..., Any]:
    """The function a job target ``"package.module:function"`` names, imported."""
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def read_call(job_dir: Path) -> tuple[Callable[..., Any], tuple, dict]:
    """``(function, args, kwargs)`` of a job folder, the function imported by its name."""
    with open(job_dir / CALL_FILE, "rb") as handle:
        target, args, kwargs = pickle.load(handle)
    return import_target(target), args, kwargs


def write_status(job_dir: Path, status: JobStatus, patience_s: float = WRITE_PATIENCE_S) -> None:
    """Replace the job's status; ``PermissionError`` when the parent held it open for ``patience_s``."""
    with atomic_path(job_dir / STATUS_FILE, patience_s=patience_s) as tmp:
        tmp.write_text(json.dumps(asdict(status)), encoding="utf-8")


def read_status(job_dir: Path, patience_s: float = READ_PATIENCE_S) -> Optional[JobStatus]:
    """The job's last written status, or ``None`` before the host wrote one; ``PermissionError`` when
    the file was being replaced throughout ``patience_s``."""
    try:
        text = retry_refused((job_dir / STATUS_FILE).read_text, patience_s)
    except FileNotFoundError:
        return None
    return JobStatus(**json.loads(text))


def write_host_state(root: Path, state: str, **details: Any) -> None:
    """The host's own record: ``state`` ("running", "exited" with ``code``, "signalled" with ``signal``)."""
    with atomic_path(root / HOST_STATE_FILE, patience_s=WRITE_PATIENCE_S) as tmp:
        tmp.write_text(json.dumps({"pid": os.getpid(), "state": state, **details}), encoding="utf-8")


def read_host_state(root: Path) -> dict:
    """What the host recorded (``{}`` when it recorded nothing)."""
    try:
        return json.loads((root / HOST_STATE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


class _CLayoutPickler(pickle.Pickler):
    """Arrays cross to the parent C-contiguous (the layout Slicer's volume nodes hold): an engine's
    transposed or flipped result is laid out here, in the job process, not on the GUI thread."""

    def reducer_override(self, obj: Any) -> Any:
        import numpy as np

        if isinstance(obj, np.ndarray) and not obj.flags.c_contiguous:
            return np.ascontiguousarray(obj).__reduce_ex__(5)  # out of band, as the other arrays
        return NotImplemented


def write_result(job_dir: Path, result: Any) -> None:
    """The job's return value, arrays out of band so the parent can read it a piece per GUI tick."""
    for _ in write_pieces(job_dir / RESULT_FILE, result, pickler=_CLayoutPickler):
        pass


def read_result(job_dir: Path) -> Any:
    return read_whole(job_dir / RESULT_FILE)


def job_dir_name(path: os.PathLike) -> str:
    """The name a job folder is known by on the host's command line (no separators allowed)."""
    name = Path(path).name
    if not name or name in (".", "..") or any(sep in name for sep in ("/", "\\", " ")):
        raise ValueError(f"invalid job folder name {name!r}")
    return name
