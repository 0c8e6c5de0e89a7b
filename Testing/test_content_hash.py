"""The client's file-hash store (issue 28): a CT file read again unchanged is not hashed again; a
touched or rewritten file is."""
from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import shared_path
from nodsynth.io import content_hash as hashing
from nodsynth.io.volume_files import read_volume, write_volume


@pytest.fixture()
def counted(monkeypatch, tmp_path):
    """The number of content_hash calls so far, with the file-hash store in ``tmp_path``."""
    monkeypatch.setenv("NODSYNTH_HASH_CACHE", str(tmp_path / "store" / "hashes.json"))
    calls = []
    real = hashing.content_hash
    monkeypatch.setattr(hashing, "content_hash", lambda volume: calls.append(1) or real(volume))
    return calls


def _ct_file(tmp_path):
    ct = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    path = tmp_path / "ct.nrrd"
    write_volume(ct, path)
    return path


def test_a_file_read_again_unchanged_is_not_hashed_again(counted, tmp_path):
    path = _ct_file(tmp_path)
    first = hashing.read_hashed(path)
    assert len(counted) == 1
    expected = hashing.content_hash(read_volume(path))
    del counted[:]
    again = hashing.read_hashed(path)  # a new array object: only the store knows its hash
    assert again is not first and again.array is not first.array
    assert hashing.cached_content_hash(again) == expected and hashing.cached_content_hash(first) == expected
    assert counted == []


def test_a_touched_or_rewritten_file_is_hashed_again(counted, tmp_path):
    path = _ct_file(tmp_path)
    digest = hashing.cached_content_hash(hashing.read_hashed(path))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: same content
    assert hashing.cached_content_hash(hashing.read_hashed(path)) == digest
    assert len(counted) == 2
    ct = read_volume(path)
    changed = ct.array.copy()
    changed[0, 0, 0] += 1
    write_volume(ct.with_array(changed), path)
    assert hashing.cached_content_hash(hashing.read_hashed(path)) == hashing.content_hash(ct.with_array(changed)) != digest
    assert len(counted) == 4  # read_hashed hashed the rewritten file once; the check above once more


def test_an_unreadable_store_is_started_afresh(counted, tmp_path):
    path = _ct_file(tmp_path)
    store = hashing.file_hash_store()
    store.parent.mkdir(parents=True)
    store.write_text("not json", encoding="utf-8")
    volume = hashing.read_hashed(path)
    assert hashing.cached_content_hash(volume) == hashing.content_hash(read_volume(path))
    assert np.array_equal(volume.array, read_volume(path).array)


def test_a_changed_volume_is_hashed_from_its_base_pieces_outside_the_boxes(monkeypatch):
    import hashlib
    import types

    ct = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    monkeypatch.setattr(hashing, "HASH_PIECE_BYTES", ct.array[0].nbytes)  # one piece per slice
    base = hashing.content_hash(ct)
    changed = ct.array.copy()
    changed[2:4, 10:20, 30:40] += 5
    box = (2, 4, 10, 20, 30, 40)
    hashed = []
    with monkeypatch.context() as counting:
        counting.setattr(hashing, "hashlib", types.SimpleNamespace(
            sha256=lambda data=b"": hashed.append(len(data)) or hashlib.sha256(data)))
        digest = hashing.content_hash(ct.with_array(changed), like=base, boxes=[box])
    assert digest == hashing.content_hash(ct.with_array(changed))
    assert len(hashed) == 2 + 1  # slices 2 and 3, then the digest of geometry and pieces
    assert hashing.content_hash(ct.with_array(changed), like="0" * 64, boxes=[box]) == digest  # unknown base: all
