"""``RemoteEngine``: the client of ``nodsynth serve``, with the same interface as the local engines.

``RemoteEngine(server_url, token_file=..., engine="nodmaisi").twin(request, progress, cancel)``
uploads the request (:mod:`nodsynth.io.wire`), polls the job, downloads and returns the same
:class:`~nodsynth.engines.base.SynthesisResult` the local engine would have returned, then deletes
the job on the server. Setting the cancel token cancels the job on the server (``DELETE``) and
raises :class:`~nodsynth.errors.Cancelled`.

The calls block; GUIs (the Slicer modules) run them in a worker thread and pass ``progress`` and a
:class:`~nodsynth.progress.CancelToken`. :meth:`RemoteEngine.health` serves a "Test connection"
button. Errors are :class:`RemoteError` (server unreachable, refused token, proxy trouble,
version mismatch) or the server's own error class (``InputError``, ``GeometryError``, ...), so a
caller handles them exactly as the local engine's errors.
"""
from __future__ import annotations

import logging
import time
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Optional

import numpy as np

from .. import errors
from ..io import wire
from ..io.content_hash import cached_content_hash, forget, remember
from ..progress import CancelToken, ProgressFn, no_progress, scaled_progress
from ..server import API_VERSION, WIRE_MEDIA_TYPE
from ..server.auth import read_token_file
from .base import EditRequest, Engine, InpaintRequest, SynthesisResult, TwinRequest, UnsupportedOperation

log = logging.getLogger(__name__)

KEEP_CHANGES = 16
"""Results whose change from their input this client keeps (newest), to send a later edit of one as
that change when the server no longer holds it."""
UPLOAD_PIECE_BYTES = 1 << 20
"""Upload granularity (1 MiB): progress and cancel are checked between pieces."""
RETRY_STATUS = (502, 503, 504)
"""Answers of a reverse proxy whose server is down or restarting; polls retry them."""
MAX_BACKOFF_S = 2.0
"""Longest wait between two tries while the server is unreachable (the back-off doubles up to it)."""


class RemoteError(errors.NodsynthError):
    """The remote server cannot be reached, refuses us, or speaks another API version."""


class ServerUnreachable(RemoteError):
    """No connection, or a proxy says the server behind it is down (502/503/504), after all retries."""


class MissingVolumes(RemoteError):
    """The server does not hold (any more) the volumes a request names by content hash (409)."""

    def __init__(self, message: str, hashes: list[str]) -> None:
        super().__init__(message)
        self.hashes = hashes


ERROR_TYPES: dict[str, type] = {
    "NodsynthError": errors.NodsynthError, "InputError": errors.InputError,
    "GeometryError": errors.GeometryError, "WeightsError": errors.WeightsError,
    "Cancelled": errors.Cancelled, "UnsupportedOperation": UnsupportedOperation,
    "WireError": wire.WireError,
}
"""Server error classes raised again, as themselves, on the client (anything else: RemoteError)."""


def normalize_server_url(url: str) -> str:
    """``host:port`` -> ``http://host:port`` (with a warning saying so); no trailing ``/`` or ``/v1``."""
    url = (url or "").strip()
    if not url:
        raise errors.InputError("no server URL given (e.g. http://gpu-box:8765)")
    if "://" not in url:
        message = f"server URL {url!r} has no scheme; using http://{url} (use https:// behind a TLS proxy)"
        warnings.warn(message, stacklevel=3)
        log.warning(message)
        url = "http://" + url
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise errors.InputError(f"server URL must start with http:// or https://, got {url!r}")
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


def _error_detail(response: Any) -> tuple[str, str]:
    """``(detail, error_type)`` of an error response (JSON from our server, else the text)."""
    try:
        body = response.json()
        if isinstance(body, dict):
            detail = body.get("detail")
            return (detail if isinstance(detail, str) else str(detail)), str(body.get("error_type") or "")
    except ValueError:
        pass
    return response.text.strip()[:300], ""


def _never_back(progress: ProgressFn) -> ProgressFn:
    """``progress`` whose fraction never goes back (a request sent again after a 409 restarts its upload)."""
    highest = [0.0]

    def report(fraction: float, message: str) -> None:
        highest[0] = max(highest[0], fraction)
        progress(highest[0], message)
    return report


def _json_field(response: Any, key: str) -> Any:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get(key) if isinstance(body, dict) else None


LINK_KEEP_S = 600.0
"""How long a link probe's figures serve the engines of one process for the same server."""
_LINKS: dict[str, tuple[float, dict]] = {}
"""server URL -> (monotonic time, link figures) of the last probe (:meth:`RemoteEngine._measured_link`)."""

PATCH_BASES = {"inpaint": ("ct", "nodule_mask"), "edit": ("ct",)}
"""Per operation, the request volumes its result volumes of the same name come back as changes of (a
twin's CT is new): copied while the server works. Another would still be rebuilt, from a copy made then."""
PROBE_SECONDS = 0.05
PROBE_MAX_BYTES = 16 << 20
PROBE_PIECE_BYTES = 1 << 20
"""The link probe streams random 1 MiB pieces to ``POST /v1/probe`` for PROBE_SECONDS (at most
PROBE_MAX_BYTES) and is timed until the server has read them all (buffers drained)."""
REQUEST_RATIO = {"shuffle-zstd": 3.6, "shuffle-zlib": 3.4, "none": 1.0}
"""Raw / sent bytes of an inpaint request (CT and masks, 512 x 512 x 256, no slice repeated) per codec,
measured by Testing/benchmarks/bench_remote.py (256 MiB -> 70 / 76 MiB)."""


def choose_codec(wanted: str, server_url: str, server_codecs: list[str], link_bytes_s: float,
                 compress_bytes_s: dict[str, float]) -> str:
    """The payload codec for a link: ``wanted`` unless ``auto``; ``auto`` takes, of the codecs both ends
    offer, the one that sends a request soonest: ``none`` takes raw / link seconds, a compressing codec
    the longer of raw / compression rate and raw / (its :data:`REQUEST_RATIO` x link), as a message is
    sent while it is compressed; in effect a compressing codec wherever it compresses faster than the
    link carries. ``link_bytes_s`` is the probed upload rate (:meth:`RemoteEngine.probe_link`),
    ``compress_bytes_s`` this machine's rate per compressing codec (:func:`nodsynth.io.wire.compression_rate`)."""
    shared = [codec for codec in wire.available_codecs() if codec in server_codecs]
    if wanted != "auto":
        if wanted not in shared:
            raise errors.InputError(f"codec {wanted!r} is not offered by both this client and {server_url} "
                                    f"(both offer: {', '.join(shared) or 'none'})")
        return wanted

    def seconds_per_byte(codec: str) -> float:
        sending = 1.0 / (REQUEST_RATIO[codec] * link_bytes_s)
        return sending if codec == "none" else max(sending, 1.0 / compress_bytes_s[codec])
    candidates = [codec for codec in shared if codec == "none" or codec in compress_bytes_s]
    return min(candidates, key=seconds_per_byte) if candidates else wire.DEFAULT_CODEC


def compressing_codec(codecs: list[str]) -> list[str]:
    """The compressing codec worth measuring of those both ends offer: zstandard where both have it
    (it compresses smaller and faster than zlib), else zlib."""
    return [codec for codec in ("shuffle-zstd", "shuffle-zlib") if codec in codecs][:1]


class RemoteEngine(Engine):
    """An engine running on a ``nodsynth serve`` server (see the module docstring)."""

    name = "remote"

    def __init__(self, server_url: str, token: Optional[str] = None, token_file: Optional[str] = None,
                 engine: str = "classic", engine_config: Optional[dict] = None, timeout_s: float = 60.0,
                 poll_interval_s: float = 0.5, retries: Optional[int] = None, backoff_s: float = 0.5,
                 retry_window_s: float = 60.0, reconnect_s: float = 300.0, verify_tls: bool = True,
                 codec: str = "auto", **_ignored: Any) -> None:
        """``engine_config`` (weights folder, device) is chosen by the server's administrator and is
        therefore not sent; giving one only triggers a warning. ``timeout_s`` bounds each HTTP exchange
        (not the whole job). While the server cannot be reached (restarting, or a proxy answers
        502/503/504) a request is tried again for ``retry_window_s`` seconds (at most ``retries`` times
        when given), waiting ``backoff_s``, then twice as long each time up to :data:`MAX_BACKOFF_S`;
        an operation says so through its progress ("server ... not reachable, retrying (n s left)").
        While a job runs, the client keeps polling through a server restart for ``reconnect_s``.

        Volumes travel by content hash (:mod:`nodsynth.io.content_hash`): the server is sent only those it
        does not hold, and an inpaint's or edit's result comes back as its changed boxes, rebuilt here
        from the input and checked against the server's hash. ``codec`` (a :data:`nodsynth.io.wire.CODECS`
        name, or ``auto``: :func:`choose_codec`) is the payload codec both ways."""
        import httpx

        self.server_url = normalize_server_url(server_url)
        if token is None and token_file:
            token = read_token_file(token_file, warn_if_readable_by_others=False)
        self.token, self.engine = token, engine
        if engine_config:
            warnings.warn(f"engine options {sorted(engine_config)} are set on the server (nodsynth serve "
                          "--weights / --devices), not by the client; ignoring them", stacklevel=2)
        self.timeout_s, self.poll_interval_s = float(timeout_s), float(poll_interval_s)
        self.retries = None if retries is None else int(retries)
        self.backoff_s, self.retry_window_s = float(backoff_s), float(retry_window_s)
        self.reconnect_s = float(reconnect_s)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.server_url, headers=headers, verify=verify_tls,
                                  timeout=httpx.Timeout(self.timeout_s))
        self._server_info: Optional[dict] = None
        self.codec = codec
        self._changes: OrderedDict[str, wire.Change] = OrderedDict()  # result hash -> change from its input
        self.link: dict[str, Any] = {}
        """What ``auto`` chose the codec by: the probed upload rate and this machine's compression rates."""
        self.last_transfer: dict[str, int] = {}
        """Bytes of the last operation: ``up`` (requests sent, all tries), ``down`` (the result)."""
        self.last_seconds: dict[str, float] = {}
        """Where the last operation's time went: ``connect`` (the first: link probe; the request's
        volumes are hashed meanwhile), ``hash`` (what hashing took beyond that), ``upload`` (all tries),
        ``server`` (queued and running), ``download``, ``rebuild`` (decoding, rebuilding patches,
        checking their hashes)."""

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "RemoteEngine":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------------------ HTTP plumbing
    def _send(self, method: str, path: str, retry_status: bool = True, window_s: Optional[float] = None,
              on_retry: Optional[Callable[[float], None]] = None, **kwargs: Any):
        """One HTTP exchange; connection failures (and proxy 502/503/504 when ``retry_status``) are tried
        again with back-off for ``window_s`` (default ``retry_window_s``), calling ``on_retry(seconds_left)``
        before each wait."""
        import httpx

        start = time.monotonic()
        deadline = start + (self.retry_window_s if window_s is None else window_s)
        delay, tries = self.backoff_s, 0
        while True:
            tries += 1
            response, failure = None, None
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.ConnectError as exc:
                failure = ServerUnreachable(f"cannot connect to {self.server_url} ({exc}; tried for "
                                            f"{time.monotonic() - start:.0f} s); is `nodsynth serve` running there, "
                                            "and the URL/port right (an SSH tunnel up)?")
                failure.__cause__ = exc
            except httpx.TimeoutException as exc:
                raise RemoteError(f"{self.server_url} did not answer within {self.timeout_s:g} s "
                                  f"({type(exc).__name__}); the server or network is overloaded, or a "
                                  "proxy holds the connection; raise timeout_s") from exc
            except httpx.TransportError as exc:
                if method == "POST":
                    raise RemoteError(f"connection to {self.server_url} failed: {exc}") from exc
                failure = RemoteError(f"connection to {self.server_url} failed: {exc}")
                failure.__cause__ = exc
            if response is not None and not (retry_status and response.status_code in RETRY_STATUS):
                return self._check(response)
            left = deadline - time.monotonic()
            if left <= 0 or (self.retries is not None and tries > self.retries):
                if failure is not None:
                    raise failure
                return self._check(response)  # raises ServerUnreachable naming the proxy's answer
            if on_retry is not None:
                on_retry(left)
            time.sleep(min(delay, left))
            delay = min(2 * delay, MAX_BACKOFF_S)

    def _retrying(self, progress: ProgressFn, fraction: Callable[[], float] = lambda: 0.0) -> Callable[[float], None]:
        """An ``on_retry`` for :meth:`_send` that tells the user through ``progress``."""
        return lambda left: progress(fraction(), f"server {self.server_url} not reachable, retrying "
                                                 f"({left:.0f} s left)")

    def _check(self, response):
        """Return a successful response; raise the clearest error for any other."""
        code = response.status_code
        if code < 400:
            return response
        detail, error_type = _error_detail(response)
        if code == 401:
            raise RemoteError(f"{self.server_url} refused the token (401): "
                              + ("no token was given; pass token_file / --token-file" if not self.token
                                 else "the token does not match the server's --token-file"))
        if code == 409 and isinstance(_json_field(response, "missing"), list):
            raise MissingVolumes(f"{self.server_url}: {detail}", [str(h) for h in _json_field(response, "missing")])
        if code == 413:
            raise RemoteError(f"the request is too large for {self.server_url} (413): {detail}. "
                              "Ask the administrator to raise --max-upload-mb (and the proxy's body size limit, "
                              "e.g. nginx client_max_body_size)")
        if code == 422:
            raise ERROR_TYPES.get(error_type, errors.InputError)(f"the server rejected the request: {detail}")
        if code in RETRY_STATUS:
            raise ServerUnreachable(f"{self.server_url} answered {code} {response.reason_phrase}: a reverse proxy in "
                              "front of the server could not reach it in time (server down, restarting or "
                              "the proxy's read timeout too short for this upload)")
        if code == 404 and response.request.url.path.startswith("/v1/jobs/"):
            raise RemoteError(f"the server no longer knows this job (404): {detail}")
        if code == 404:
            raise RemoteError(f"{self.server_url} has no nodsynth API v{API_VERSION} (404 for "
                              f"{response.request.url.path}); is this the right URL?")
        raise RemoteError(f"{self.server_url} answered {code} {response.reason_phrase}: {detail}")

    # --------------------------------------------------------------------------------- connection
    def health(self, on_retry: Optional[Callable[[float], None]] = None) -> dict:
        """The server's ``/v1/health`` (no token needed): versions, engines, devices. Raises if unreachable."""
        response = self._send("GET", "/v1/health", on_retry=on_retry)
        try:
            info = response.json()
        except ValueError as exc:
            raise RemoteError(f"{self.server_url} is not a nodsynth server (health is not JSON)") from exc
        if not isinstance(info, dict) or info.get("server") != "nodsynth":
            raise RemoteError(f"{self.server_url} is not a nodsynth server")
        return info

    def connect(self, on_retry: Optional[Callable[[float], None]] = None) -> dict:
        """Check the server speaks our API and wire versions and serves our engine; cached."""
        if self._server_info is None:
            info = self.health(on_retry)
            from .. import __version__

            if info.get("api_version") != API_VERSION or info.get("wire_version") != wire.WIRE_VERSION:
                raise RemoteError(f"version mismatch: server {self.server_url} runs nodsynth "
                                  f"{info.get('server_version')} (API v{info.get('api_version')}, wire "
                                  f"v{info.get('wire_version')}), this client nodsynth {__version__} (API "
                                  f"v{API_VERSION}, wire v{wire.WIRE_VERSION}); install the same version on both")
            if self.engine not in info.get("engines", {}):
                raise RemoteError(f"server {self.server_url} does not serve engine {self.engine!r}; it serves: "
                                  + ", ".join(sorted(info.get("engines", {}))))
            codecs = info.get("codecs", [wire.DEFAULT_CODEC])
            if self.codec == "auto":
                self.link = self._measured_link(codecs)
                self.codec = choose_codec("auto", self.server_url, codecs, self.link["upload_bytes_s"],
                                          self.link["compress_bytes_s"])
                log.info("link to %s: %.0f MB/s up; codec %s", self.server_url,
                         self.link["upload_bytes_s"] / 1e6, self.codec)
            else:
                self.codec = choose_codec(self.codec, self.server_url, codecs, 0.0, {})
            self._server_info = info
        return self._server_info

    def _measured_link(self, codecs: list[str]) -> dict:
        """This server's link and this machine's compression rates: measured now, or as measured by another
        engine of this process within :data:`LINK_KEEP_S` (a new engine for the same server does not probe again)."""
        known = _LINKS.get(self.server_url)
        if known is not None and time.monotonic() - known[0] < LINK_KEEP_S:
            return dict(known[1], reused=True)
        rate, sent = self.probe_link()
        link = {"upload_bytes_s": rate, "probe_bytes": sent,
                "compress_bytes_s": {codec: wire.compression_rate(codec) for codec in
                                     compressing_codec([c for c in codecs if c in wire.available_codecs()])}}
        _LINKS[self.server_url] = (time.monotonic(), link)
        return link

    def probe_link(self) -> tuple[float, int]:
        """The upload rate to the server in bytes per second (see :data:`PROBE_SECONDS`) and the bytes the
        probe sent."""
        piece = np.random.default_rng(0).bytes(PROBE_PIECE_BYTES)  # incompressible: a proxy cannot shrink it
        start = [0.0]

        def body() -> Iterator[bytes]:
            start[0], sent = time.perf_counter(), 0
            while sent < PROBE_MAX_BYTES and time.perf_counter() - start[0] < PROBE_SECONDS:
                sent += len(piece)
                yield piece
        received = _json_field(self._send("POST", "/v1/probe", retry_status=False, content=_Replayable(body)),
                               "received")
        return float(received or 0) / max(time.perf_counter() - start[0], 1e-6), int(received or 0)

    def describe(self) -> dict:
        """The served engine's description plus the server URL; ``reachable: False`` and the error if down."""
        try:
            info = self.connect()
        except errors.NodsynthError as exc:
            return {"name": self.name, "engine": self.engine, "server": self.server_url,
                    "reachable": False, "error": str(exc)}
        return dict(info["engines"][self.engine], name=self.name, engine=self.engine,
                    server=self.server_url, reachable=True, devices=info.get("devices", []))

    # --------------------------------------------------------------------------------- operations
    def twin(self, request: TwinRequest, progress: Optional[ProgressFn] = None,
             cancel: Optional[CancelToken] = None) -> SynthesisResult:
        return self.run("twin", request, progress, cancel)

    def inpaint(self, request: InpaintRequest, progress: Optional[ProgressFn] = None,
                cancel: Optional[CancelToken] = None) -> SynthesisResult:
        return self.run("inpaint", request, progress, cancel)

    def edit(self, request: EditRequest, progress: Optional[ProgressFn] = None,
             cancel: Optional[CancelToken] = None) -> SynthesisResult:
        return self.run("edit", request, progress, cancel)

    def run(self, operation: str, request: Any, progress: Optional[ProgressFn] = None,
            cancel: Optional[CancelToken] = None) -> SynthesisResult:
        """Upload, wait, download, delete: progress 0-10 % upload, 10-95 % server, 95-100 % download.

        A result that does not rebuild to the server's content hash (an input changed in place after it
        was hashed here) is asked for once more with every input sent whole."""
        try:
            return self._run(operation, request, progress, cancel, rehash=False)
        except wire.PatchMismatch as exc:
            log.warning("%s; sending the inputs whole", exc)
            return self._run(operation, request, progress, cancel, rehash=True)

    def _run(self, operation: str, request: Any, progress: Optional[ProgressFn], cancel: Optional[CancelToken],
             rehash: bool) -> SynthesisResult:
        report = _never_back(progress or no_progress)
        cancel = cancel or CancelToken()
        clock = _Stopwatch()
        volumes = wire.request_volumes(request)
        if rehash:
            for volume in volumes.values():
                forget(volume)
        report(0.0, f"hashing the {operation} request's volumes")
        with ThreadPoolExecutor(1) as pool:  # hashed while the first call connects and probes the link
            hashing = pool.submit(lambda: {name: cached_content_hash(volume) for name, volume in volumes.items()})
            info = self.connect(self._retrying(report))
            connect_s = clock.lap()
            hashes = hashing.result()
        cancel.raise_if_cancelled()
        self.last_transfer = {"up": 0, "down": 0}
        self.last_seconds = {"connect": connect_s, "hash": clock.lap()}
        refs, patches = set(hashes), {}
        while True:
            report(0.0, f"encoding the {operation} request")
            message = wire.encode_request(operation, self.engine, request, codec=self.codec, hashes=hashes,
                                          refs=refs, patches=patches)
            try:
                job_id = self._submit(message, info.get("max_upload_mb"), scaled_progress(report, 0.0, 0.1), cancel)
                break
            except MissingVolumes as exc:
                refs, patches = self._fallback(hashes, refs, patches, set(exc.hashes))
        self.last_seconds["upload"] = clock.lap()
        copying = ThreadPoolExecutor(1)  # what a result is rebuilt into: copied and hashed while the server works
        bases = [name for name in PATCH_BASES.get(operation, ()) if name in volumes]
        copies = copying.submit(lambda: {name: wire.base_copy(volumes[name]) for name in bases})
        try:
            self._wait(job_id, scaled_progress(report, 0.1, 0.95), cancel)
            self.last_seconds["server"] = clock.lap()
            report(0.95, "downloading the result")
            data = self._send("GET", f"/v1/jobs/{job_id}/result").content
            self.last_seconds["download"] = clock.lap()
            self.last_transfer["down"] = len(data)
            checked: dict[str, str] = {}
            changes: dict[str, tuple[list, Any]] = {}
            result = wire.decode_result(data, bases=volumes, hashes_out=checked, changes_out=changes,
                                        base_copies=copies.result())
            self.last_seconds["rebuild"] = clock.lap()
        finally:  # after the rebuild: the server defers its cache writes until the job is deleted
            copying.shutdown(wait=True)
            self._delete_quietly(job_id)
        self.last_seconds["delete"] = clock.lap()
        for name, digest in checked.items():  # the server holds these too: editing the result sends no voxels
            remember(result.volumes[name], digest)
            self._changes[digest] = wire.Change(hashes[name], *changes[name])
            while len(self._changes) > KEEP_CHANGES:
                self._changes.popitem(last=False)
        report(1.0, "done")
        return result

    def _fallback(self, hashes: dict[str, str], refs: set[str], patches: dict[str, wire.Change],
                  missing: set[str]) -> tuple[set[str], dict[str, wire.Change]]:
        """What to send next after the server answered that it lacks the volumes ``missing``: a ref it
        lacks becomes a patch when the volume is a result rebuilt here from a base (its change is
        known), else the whole volume; a patch whose base it lacks, the whole volume."""
        lacking = {name for name in refs if hashes[name] in missing}
        patched = {name: change for name, change in patches.items() if change.base not in missing}
        if not lacking and len(patched) == len(patches):  # the server asks for volumes sent whole: it cannot keep them
            raise MissingVolumes(f"{self.server_url} does not keep the volumes sent to it", sorted(missing))
        patched.update({name: self._changes[hashes[name]] for name in lacking if hashes[name] in self._changes})
        return refs - lacking, patched

    def forget_volumes(self) -> int:
        """Delete every volume this client's token holds in the server's cache; returns how many."""
        return int(self._send("DELETE", "/v1/volumes").json().get("deleted", 0))

    def _submit(self, message: wire.Message, cap_mb: Any, progress: ProgressFn, cancel: CancelToken) -> str:
        """Stream ``message`` up while it is being compressed (chunked transfer: its size is known once
        sent); refused here as soon as it passes the server's upload cap ``cap_mb``."""
        cap = cap_mb * 2**20 if isinstance(cap_mb, (int, float)) else float("inf")

        def body() -> Iterator[bytes]:
            sent = 0
            for count, piece in enumerate(message, 1):
                for start in range(0, len(piece), UPLOAD_PIECE_BYTES):
                    cancel.raise_if_cancelled()
                    chunk = piece[start:start + UPLOAD_PIECE_BYTES]
                    sent += len(chunk)
                    self.last_transfer["up"] += len(chunk)
                    if sent > cap:
                        raise RemoteError(f"the request exceeds {sent / 2**20:.0f} MiB, over the server's upload "
                                          f"cap of {cap_mb:.0f} MiB (nodsynth serve --max-upload-mb)")
                    yield chunk
                progress(count / message.pieces, f"uploading ({sent / 2**20:.1f} MiB sent)")

        headers = {"Content-Type": WIRE_MEDIA_TYPE}
        response = self._send("POST", "/v1/jobs", retry_status=False, on_retry=self._retrying(progress),
                              content=_Replayable(body), headers=headers)
        return str(response.json()["id"])

    def _wait(self, job_id: str, progress: ProgressFn, cancel: CancelToken) -> None:
        """Long-poll the job until it is done (each status answered when the job ends or after
        ``poll_interval_s``: the end is heard at once, progress every interval); raise its error or
        :class:`Cancelled` otherwise."""
        last = 0.0
        wait_s = min(self.poll_interval_s, float(self.connect().get("max_status_wait_s", 0.0)))  # 0: no long poll
        while True:
            if cancel.cancelled:
                self._cancel_and_wait(job_id)
                raise errors.Cancelled("cancelled by the user (the server job was cancelled)")
            asked = time.monotonic()
            status = self._send("GET", f"/v1/jobs/{job_id}", window_s=self.reconnect_s,
                                on_retry=self._retrying(progress, lambda: last), params={"wait_s": wait_s}).json()
            state = status.get("state")
            if state == "done":
                return
            if state == "failed":
                error_class = ERROR_TYPES.get(status.get("error_type"), RemoteError)
                raise error_class(status.get("error") or "the job failed on the server")
            if state == "cancelled":
                raise errors.Cancelled("the job was cancelled on the server")
            if state == "queued":
                position = status.get("queue_position", 0)
                progress(0.0, f"queued on {self.server_url}" + (f" ({position} job(s) ahead)" if position else ""))
            else:
                last = float(status.get("progress", 0.0))
                progress(last, str(status.get("message", state)))
            time.sleep(max(0.0, self.poll_interval_s - (time.monotonic() - asked)))  # what the server did not wait

    def _cancel_and_wait(self, job_id: str) -> None:
        """``DELETE`` the job, then wait (at most ``timeout_s``) until the server has stopped it."""
        self._send("DELETE", f"/v1/jobs/{job_id}")
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self._send("GET", f"/v1/jobs/{job_id}").json().get("state") != "running":
                return
            time.sleep(self.poll_interval_s)
        log.warning("job %s on %s is still stopping after %.0f s", job_id, self.server_url, self.timeout_s)

    def _delete_quietly(self, job_id: str) -> None:
        """Best effort ``DELETE``: cancels a job still running after a client-side failure, or frees a
        finished job's files on the server once its result is here."""
        try:
            self._http.request("DELETE", f"/v1/jobs/{job_id}", timeout=5.0)
        except Exception as exc:  # the original error matters more than this clean-up
            log.warning("could not cancel job %s on %s: %s", job_id, self.server_url, exc)


class _Stopwatch:
    """Seconds since the previous :meth:`lap` (or since it was made)."""

    def __init__(self) -> None:
        self._last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        seconds, self._last = now - self._last, now
        return seconds


class _Replayable:
    """An upload body that can be sent again when the first connection attempt fails."""

    def __init__(self, make: Callable[[], Iterator[bytes]]) -> None:
        self._make = make

    def __iter__(self) -> Iterator[bytes]:
        return self._make()
