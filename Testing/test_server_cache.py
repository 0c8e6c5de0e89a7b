"""Content-addressed inputs and results as changes (issue 28): the server's per-token volume cache
(byte cap, LRU, restart, corruption, isolation, delete) and RemoteEngine sending a CT once."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from conftest import shared_path
from nodsynth.io import wire
from nodsynth.augment import resize_nodule
from nodsynth.io.content_hash import cached_content_hash, content_hash
from nodsynth.engines.base import EditRequest, InpaintRequest
from nodsynth.engines.classic import ClassicEngine
from nodsynth.engines.remote import RemoteEngine, choose_codec
from nodsynth.errors import InputError
from nodsynth.server.cache import CACHE_FOLDER, VolumeCache
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume
from server_harness import auth_headers, free_port
from test_remote_engine import slab  # noqa: F401 (fixture: a real CT slab, its label map, an edit of it)
from test_server_tokens import TOKENS, server  # noqa: F401 (fixture: a server with tokens alice, bob, ops)


def _remote(server, owner: str = "alice", **kwargs) -> RemoteEngine:
    return RemoteEngine(server.url, token=TOKENS[owner], poll_interval_s=0.05, **kwargs)


def _volumes(count: int, shape=(4, 32, 32)) -> list[Volume]:
    """Distinct small volumes of real CT values (crops of the LIDC slab at different offsets)."""
    ct = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd")).array
    return [Volume(np.ascontiguousarray(ct[:shape[0], 40 * n:40 * n + shape[1], 200:200 + shape[2]]))
            for n in range(count)]


def _put(cache: VolumeCache, owner: str, digest: str, volume: Volume) -> None:
    """Keep a volume and wait for its (deferred) write."""
    cache.put_later(owner, digest, volume)
    cache.flush()


def _wait_for_file(path: Path, timeout_s: float = 30.0) -> None:
    """The server writes cache files after its job, in the background: wait for one."""
    deadline = time.monotonic() + timeout_s
    while not path.is_file():
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.05)


# ------------------------------------------------------------------------------------ cache alone
def test_cache_evicts_least_recently_used_at_its_byte_cap_and_survives_a_restart(tmp_path):
    volumes = _volumes(4)
    digests = [content_hash(v) for v in volumes]
    file_bytes = wire.message_size(wire.encode_volume(volumes[0], digests[0]))
    cache = VolumeCache(tmp_path, cap_bytes=3 * file_bytes, keep_s=3600, memory_bytes=0)
    for n in range(3):
        _put(cache, "alice", digests[n], volumes[n])
        os.utime(cache.folder("alice") / f"{digests[n]}.vol", (1000 + n, 1000 + n))  # distinct use times
    assert cache.get("alice", digests[0]) is not None  # now the most recently used
    _put(cache, "alice", digests[3], volumes[3])  # over the cap: the least recently used (1) goes
    held = sorted(p.stem for p in cache.folder("alice").glob("*.vol"))
    assert held == sorted([digests[0], digests[2], digests[3]])
    restarted = VolumeCache(tmp_path, cap_bytes=3 * file_bytes, keep_s=3600, memory_bytes=0)
    again = restarted.get("alice", digests[3])
    assert again.array.tobytes() == volumes[3].array.tobytes() and content_hash(again) == digests[3]
    assert restarted.get("alice", digests[1]) is None


def test_a_corrupted_cache_file_is_detected_deleted_and_reads_as_absent(tmp_path):
    volume = _volumes(1)[0]
    digest = content_hash(volume)
    _put(VolumeCache(tmp_path, 1 << 30, 3600, 0), "alice", digest, volume)
    path = VolumeCache(tmp_path, 1 << 30, 3600, 0).folder("alice") / f"{digest}.vol"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # one flipped bit in a voxel
    path.write_bytes(bytes(data))
    assert VolumeCache(tmp_path, 1 << 30, 3600, 0).get("alice", digest) is None
    assert not path.exists()
    path.parent.joinpath(f"{digest}.vol").write_bytes(bytes(data[:len(data) // 2]))  # truncated
    assert VolumeCache(tmp_path, 1 << 30, 3600, 0).get("alice", digest) is None


def test_cache_isolates_tokens_expires_unused_files_and_deletes_on_request(tmp_path):
    first, second = _volumes(2)
    one, two = content_hash(first), content_hash(second)
    cache = VolumeCache(tmp_path, 1 << 30, keep_s=3600, memory_bytes=1 << 30)
    _put(cache, "alice", one, first)
    _put(cache, "alice", two, second)
    assert cache.get("bob", one) is None and cache.get("alice", one) is not None
    os.utime(cache.folder("alice") / f"{one}.vol", (time.time() - 7200,) * 2)
    assert cache.expire() == 1 and cache.get("alice", one) is None and cache.get("alice", two) is not None
    assert cache.delete("alice") == 1 and cache.get("alice", two) is None


def test_a_volume_sent_with_a_wrong_hash_is_deleted_once_checked(tmp_path):
    first, second = _volumes(2)
    cache = VolumeCache(tmp_path, 1 << 30, keep_s=3600, memory_bytes=1 << 30)
    cache.put_unchecked("alice", content_hash(second), first)  # claims to be the second
    cache.put_unchecked("alice", content_hash(first), first)
    cache.flush()
    assert cache.get("alice", content_hash(second)) is None
    assert cache.get("alice", content_hash(first)).array.tobytes() == first.array.tobytes()


def test_cache_writes_wait_until_the_job_is_deleted_and_shutdown_writes_what_is_pending(tmp_path):
    first, second = _volumes(2)
    one, two = content_hash(first), content_hash(second)
    cache = VolumeCache(tmp_path, 1 << 30, keep_s=3600, memory_bytes=0)  # no memory tier: pending volumes only
    path = cache.folder("alice") / f"{one}.vol"
    cache.hold("job-1")
    cache.put_unchecked("alice", one, first)
    time.sleep(0.5)
    assert not path.exists()  # not while the job and its download run
    assert cache.get("alice", one).array.tobytes() == first.array.tobytes()  # yet served at once
    assert cache.expire() == 0 and cache.get("alice", one) is not None  # pending is not stale
    assert cache.pending_writes() == 1
    cache.release("job-1")
    _wait_for_file(path)  # the client deleted the job: written
    assert VolumeCache(tmp_path, 1 << 30, 3600, 0).get("alice", one).array.tobytes() == first.array.tobytes()
    cache.hold("job-2")
    cache.put_unchecked("carol", one, first)
    cache.persist("carol", one)  # a job queued now names it: written at once, hold or not
    assert (cache.folder("carol") / f"{one}.vol").is_file() and cache.pending_writes() == 0
    cache.put_later("alice", two, second)
    cache.delete("alice", two)  # forgotten before its write: never written
    cache.put_later("bob", two, second)
    cache.close()  # shutdown does not wait for the job
    assert (cache.folder("bob") / f"{two}.vol").is_file()
    assert not (cache.folder("alice") / f"{two}.vol").exists()
    cache.put_later("dave", two, second)  # a job that ends while the server stops: written at once
    assert (cache.folder("dave") / f"{two}.vol").is_file()


def test_a_hold_lapses_after_the_longest_deferral(tmp_path, monkeypatch):
    from nodsynth.server import cache as cache_module

    monkeypatch.setattr(cache_module, "DEFER_MAX_S", 0.3)
    volume = _volumes(1)[0]
    cache = VolumeCache(tmp_path, 1 << 30, keep_s=3600, memory_bytes=0)
    cache.hold("never-fetched")
    start = time.monotonic()
    _put(cache, "alice", content_hash(volume), volume)
    assert 0.25 <= time.monotonic() - start < 5.0 and cache.pending_writes() == 0


# ---------------------------------------------------------------------------------- over HTTP
def test_second_edit_of_the_same_ct_uploads_no_ct_and_results_are_bit_identical(server, slab):
    ct, labels, edited = slab
    local = ClassicEngine()
    first = EditRequest(ct=ct, labelmap=labels, edited_labelmap=edited, seed=11)
    second = EditRequest(ct=ct, labelmap=labels, edited_labelmap=resize_nodule(labels, "all", 70.0).labelmap,
                         seed=12)
    inpaint = InpaintRequest(ct=ct, nodule_mask=labels.with_array((labels.array == 23).astype(np.uint8)), seed=3)
    with _remote(server, codec="shuffle-zstd") as engine:
        results = []
        for request, operation in ((first, "edit"), (second, "edit"), (inpaint, "inpaint")):
            remote = getattr(engine, operation)(request)
            expected = getattr(local, operation)(request)
            assert remote.ct.array.tobytes() == expected.ct.array.tobytes()
            assert remote.ct.spacing.tobytes() == expected.ct.spacing.tobytes()
            results.append((remote, dict(engine.last_transfer)))
        (_, sent_first), (_, sent_second), (_, sent_inpaint) = results
        assert sent_first["up"] > ct.array.nbytes // 10  # the CT went once, compressed
        assert sent_second["up"] < ct.array.nbytes // 100  # only the new label map, no CT voxels
        assert sent_inpaint["up"] < ct.array.nbytes // 100  # only the nodule mask
        for _, sent in results:  # the changed boxes come back, not the CT
            assert sent["down"] < ct.array.nbytes // 20, sent
        # an edit of a result sends no voxels: the server kept the result under its hash
        edited_result = results[0][0].ct
        engine.edit(EditRequest(ct=edited_result, labelmap=edited, edited_labelmap=edited, seed=1))
        assert engine.last_transfer["up"] < 4 << 10


def test_a_corrupted_server_copy_is_asked_for_again(server, slab):
    ct, labels, edited = slab
    request = EditRequest(ct=ct, labelmap=labels, edited_labelmap=edited, seed=5)
    expected = ClassicEngine().edit(request)
    with _remote(server, "bob") as engine:
        engine.edit(request)
    folder = VolumeCache(server.jobs_dir / CACHE_FOLDER, 1, 1, 0).folder("bob")
    path = folder / f"{cached_content_hash(ct)}.vol"
    _wait_for_file(path)
    data = bytearray(path.read_bytes())
    data[-1000] ^= 0x10
    path.write_bytes(bytes(data))
    server.stop()  # restart: the server's memory tier is gone, it must read (and check) the file
    server.start(port=server.port)
    with _remote(server, "bob") as engine:
        remote = engine.edit(request)
        assert engine.last_transfer["up"] > ct.array.nbytes // 10  # the CT was asked for again
    assert remote.ct.array.tobytes() == expected.ct.array.tobytes()
    with _remote(server, "bob") as engine:
        engine.edit(request)
        assert engine.last_transfer["up"] < 4 << 10  # and is held again, across the restart too


def test_one_token_cannot_use_another_tokens_volumes_and_delete_forgets(server, slab):
    ct, labels, edited = slab
    request = EditRequest(ct=ct, labelmap=labels, edited_labelmap=edited, seed=7)
    with _remote(server, "alice") as engine:
        engine.edit(request)
    refs_only = wire.join(wire.encode_request("edit", "classic", request,
                                              hashes={n: cached_content_hash(v) for n, v in
                                                      wire.request_volumes(request).items()},
                                              refs=("ct", "labelmap", "edited_labelmap")))
    for owner, status in (("ops", 409), ("alice", 202)):  # ops: another token (an admin one) that never sent them
        response = httpx.post(server.url + "/v1/jobs", content=refs_only, headers=auth_headers(TOKENS[owner]),
                              timeout=60)
        assert response.status_code == status, response.text
    assert sorted(response.json()) != [] and "missing" not in response.json()
    with _remote(server, "alice") as engine:
        assert engine.forget_volumes() >= 3
    response = httpx.post(server.url + "/v1/jobs", content=refs_only, headers=auth_headers(TOKENS["alice"]),
                          timeout=60)
    assert response.status_code == 409 and len(response.json()["missing"]) == 3


def test_a_ct_changed_in_place_after_hashing_is_sent_again_not_answered_from_the_old_copy(server, slab):
    ct, labels, edited = slab
    ct = ct.with_array(ct.array.copy())
    request = EditRequest(ct=ct, labelmap=labels, edited_labelmap=edited, seed=2)
    with _remote(server, "bob") as engine:
        engine.edit(request)
        ct.array[0, 0, :10] = 500  # far from the nodule; the remembered hash is now stale
        remote = engine.edit(request)
        assert engine.last_transfer["up"] > ct.array.nbytes // 10  # sent whole after the result did not check
    assert remote.ct.array.tobytes() == ClassicEngine().edit(request).ct.array.tobytes()


def test_auto_codec_sends_raw_on_a_link_faster_than_compression_and_compresses_on_a_slower_one():
    every = wire.available_codecs()
    compressing = "shuffle-zstd" if "shuffle-zstd" in every else "shuffle-zlib"
    rates = {"shuffle-zstd": 800e6, "shuffle-zlib": 120e6}
    assert choose_codec("auto", "http://x", every, link_bytes_s=5e9, compress_bytes_s=rates) == "none"
    assert choose_codec("auto", "http://x", every, link_bytes_s=12.5e6, compress_bytes_s=rates) == compressing
    # compression overlaps sending: a compressor a little faster than the link wins (once compressed, sent)
    assert choose_codec("auto", "http://x", [compressing, "none"], 500e6, {compressing: 600e6}) == compressing
    assert choose_codec("auto", "http://x", ["shuffle-zlib", "none"], 12.5e6, rates) == "shuffle-zlib"
    assert choose_codec("auto", "http://x", ["shuffle-zlib", "none"], 400e6, rates) == "none"
    with pytest.raises(InputError, match="codec 'shuffle-zstd' is not offered by both"):
        choose_codec("shuffle-zstd", "http://old-server", ["shuffle-zlib"], 1e6, rates)


def test_auto_codec_probes_the_link_and_compresses_over_a_throttled_one(server):
    proxy_port = free_port()
    proxy = subprocess.Popen([sys.executable, str(Path(__file__).parent / "benchmarks" / "throttle_proxy.py"),
                              "--listen", str(proxy_port), "--target", str(server.port), "--mbit", "40"])
    try:
        time.sleep(1.0)
        with RemoteEngine(f"http://127.0.0.1:{proxy_port}", token=TOKENS["alice"]) as slow:
            slow.connect()
            assert slow.link["upload_bytes_s"] < 6e6  # 40 Mbit/s = 5 MB/s
            assert slow.codec != "none" and "reused" not in slow.link
        with RemoteEngine(f"http://127.0.0.1:{proxy_port}", token=TOKENS["alice"]) as again:  # another engine
            started = time.monotonic()
            again.connect()
            assert again.link["reused"] and again.codec == slow.codec
            assert time.monotonic() - started < 0.5  # no second probe
    finally:
        proxy.terminate()
        proxy.wait()
    with _remote(server, codec="shuffle-zlib") as fixed:  # an explicit codec is kept, nothing probed
        fixed.connect()
        assert fixed.codec == "shuffle-zlib" and fixed.link == {}

def test_an_edit_of_a_result_the_server_no_longer_holds_sends_only_its_change(server, slab):
    ct, labels, edited = slab
    with _remote(server, "bob") as engine:
        engine.forget_volumes()
        first = engine.edit(EditRequest(ct=ct, labelmap=labels, edited_labelmap=edited, seed=21)).ct
        again = EditRequest(ct=first, labelmap=edited, edited_labelmap=labels, seed=22)
        for volume in (first, labels, edited):
            assert httpx.delete(f"{server.url}/v1/volumes/{cached_content_hash(volume)}",
                                headers=auth_headers(TOKENS["bob"]), timeout=30).json()["deleted"] == 1
        second = engine.edit(again)  # the result went, its input CT is still held: base hash + boxes
        change_bytes = engine.last_transfer["up"]
        assert change_bytes < ct.array.nbytes // 20 + 2 * labels.array.nbytes, change_bytes
        assert second.ct.array.tobytes() == ClassicEngine().edit(again).ct.array.tobytes()
        engine.forget_volumes()  # now the base is gone too: the result goes whole
        whole = engine.edit(again)
        assert engine.last_transfer["up"] > change_bytes + ct.array.nbytes // 10
        assert whole.ct.array.tobytes() == second.ct.array.tobytes()


def test_a_long_poll_answers_when_the_job_ends_or_after_its_wait(server, slab):
    headers = auth_headers(TOKENS["alice"])

    def status(job_id: str, wait_s: object) -> tuple[httpx.Response, float]:
        start = time.monotonic()
        response = httpx.get(f"{server.url}/v1/jobs/{job_id}", params={"wait_s": wait_s}, headers=headers, timeout=60)
        return response, time.monotonic() - start

    assert httpx.get(server.url + "/v1/health", timeout=10).json()["max_status_wait_s"] == 30.0
    ct, labels, edited = slab
    request = EditRequest(ct=ct, labelmap=labels, edited_labelmap=edited)
    body = wire.join(wire.encode_request("edit", "classic", request))
    ids = [httpx.post(server.url + "/v1/jobs", content=body, headers=headers, timeout=30).json()["id"]
           for _ in range(3)]
    waiting, seconds = status(ids[-1], 0.15)  # jobs ahead of it: still waiting after the wait
    assert waiting.json()["state"] in ("queued", "running") and seconds >= 0.15
    done, seconds = status(ids[-1], 25.0)
    assert done.json()["state"] == "done" and seconds < 25.0  # answered when it ended, not at the wait's end
    again, seconds = status(ids[0], 25.0)
    assert again.json()["state"] == "done" and seconds < 5.0  # a finished job: at once
    for wrong in (31, -1, "soon"):
        assert status(ids[0], wrong)[0].status_code == 422
    for job_id in ids:
        httpx.delete(f"{server.url}/v1/jobs/{job_id}", headers=headers, timeout=10)
