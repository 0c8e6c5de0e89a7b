"""The wire format: bit-exact round trips of real volumes with their geometry, and clear rejections."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from conftest import shared_path
from nodsynth.io import wire
from nodsynth.io.changed_boxes import box_voxels, changed_boxes, put_boxes, take_boxes
from nodsynth.io.content_hash import cached_content_hash, content_hash, forget
from nodsynth.engines.base import EditRequest, InpaintRequest, SynthesisResult, TwinRequest
from nodsynth.errors import InputError
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume


def _lidc_case(name: str = "LIDC-IDRI-0001_R_1.nii.gz") -> tuple[Volume, Volume]:
    ct = read_volume(shared_path("lidc_vois", "image", name))
    mask = read_volume(shared_path("lidc_vois", "nodule_mask", name))
    return ct, mask


def _oblique(volume: Volume) -> Volume:
    """The same voxels on an oblique, non-trivially spaced grid (geometry that must survive exactly)."""
    angle = np.deg2rad(17.3)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])
    return Volume(volume.array, volume.spacing * np.array([1.0, 1.0000001, 0.3333333]),
                  volume.origin + np.array([0.1, -1e-7, 1234.56789]), rot @ volume.direction)


def assert_same_volume(a: Volume, b: Volume) -> None:
    assert a.array.dtype == b.array.dtype and a.array.shape == b.array.shape
    assert a.array.tobytes() == b.array.tobytes()
    for attr in ("spacing", "origin", "direction"):
        assert getattr(a, attr).tobytes() == getattr(b, attr).tobytes(), attr


def test_inpaint_request_round_trip_is_bit_exact_with_geometry():
    ct, mask = _lidc_case()
    ct = _oblique(ct)
    mask = ct.with_array(mask.array)
    histogram = np.random.default_rng(3).random(40)
    request = InpaintRequest(ct=ct, nodule_mask=mask, subtype="ground-glass", histogram=histogram,
                             steps=50, sampler="ddim", seed=None)
    data = wire.join(wire.encode_request("inpaint", "hrldm", request))
    decoded = wire.decode_request(data)
    assert (decoded.operation, decoded.engine) == ("inpaint", "hrldm")
    got = decoded.request
    assert isinstance(got, InpaintRequest)
    assert_same_volume(got.ct, ct)
    assert_same_volume(got.nodule_mask, mask)
    assert got.lung_mask is None and got.seed is None
    assert (got.subtype, got.steps, got.sampler) == ("ground-glass", 50, "ddim")
    assert got.histogram.dtype == np.float64 and got.histogram.tobytes() == histogram.tobytes()
    assert got.ct.array.flags.writeable  # engines may work on the arrays they get


def test_real_ct_compresses_and_label_maps_compress_much_more():
    ct, mask = _lidc_case()
    ct_bytes = len(wire.join(wire.encode_request("twin", "nodmaisi", TwinRequest(labelmap=ct))))
    mask_bytes = len(wire.join(wire.encode_request("twin", "nodmaisi", TwinRequest(labelmap=mask))))
    assert ct_bytes < 0.8 * ct.array.nbytes
    assert mask_bytes < 0.2 * mask.array.nbytes


def test_twin_request_keeps_tuples_and_every_dtype_round_trips():
    _, mask = _lidc_case()
    for dtype in (np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64,
                  np.float16, np.float32, np.float64, np.dtype(">i2")):
        volume = mask.with_array((mask.array * 3 - 1).astype(dtype))
        noise = np.random.default_rng(0).standard_normal((1, 4, 8, 8, 4)).astype(np.float32)
        request = TwinRequest(labelmap=volume, output_size_ijk=(512, 512, 256), output_spacing_mm=(0.7, 0.7, 1.25),
                              steps=3, seed=7, initial_noise=noise)
        got = wire.decode_request(wire.join(wire.encode_request("twin", "nodmaisi", request))).request
        assert got.output_size_ijk == (512, 512, 256) and got.output_spacing_mm == (0.7, 0.7, 1.25)
        assert np.array_equal(got.labelmap.array, volume.array)
        assert got.labelmap.array.dtype == volume.array.dtype.newbyteorder("=")
        assert got.initial_noise.tobytes() == noise.tobytes()


def test_large_volume_spans_many_chunks():
    ct, _ = _lidc_case()
    big = Volume(np.tile(ct.array, (8, 10, 10)), ct.spacing, ct.origin)  # ~ 60 MB int16: > CHUNK_BYTES
    pieces = wire.encode_request("edit", "classic", EditRequest(ct=big, labelmap=big, edited_labelmap=big))
    header, _ = wire.read_header(pieces.head)
    assert header["arrays"][0]["chunks"] > 1
    got = wire.decode_request(wire.join(pieces)).request
    assert_same_volume(got.ct, big)


def test_result_round_trip():
    ct, mask = _lidc_case()
    result = SynthesisResult(volumes={"ct": ct, "nodule_mask": mask}, engine="classic", seconds=1.25,
                             info={"voxels": np.int64(42), "note": "x", "centre": np.array([1.5, 2.0])})
    got = wire.decode_result(wire.join(wire.encode_result(result)))
    assert set(got.volumes) == {"ct", "nodule_mask"}
    assert_same_volume(got.ct, ct)
    assert_same_volume(got.volumes["nodule_mask"], mask)
    assert got.engine == "classic" and got.seconds == 1.25
    assert got.info == {"voxels": 42, "note": "x", "centre": [1.5, 2.0]}


def _message(header: dict, payload: bytes = b"", version: int = wire.WIRE_VERSION) -> bytes:
    head = json.dumps(header).encode()
    return struct.pack("<8sHI", wire.MAGIC, version, len(head)) + head + payload


def _frame(chunk: bytes) -> bytes:
    """One payload chunk as a message carries it: its length, then its bytes."""
    return struct.pack("<I", len(chunk)) + chunk


def test_unknown_version_and_garbage_are_rejected_clearly():
    ct, _ = _lidc_case()
    data = wire.join(wire.encode_request("twin", "nodmaisi", TwinRequest(labelmap=ct)))
    newer = data[:8] + struct.pack("<H", wire.WIRE_VERSION + 1) + data[10:]
    with pytest.raises(wire.WireError, match=r"version 4 is not supported.*reads version 3 .*newer"):
        wire.decode_request(newer)
    for old in (1, 2):  # before content-addressed inputs; before chunks carried their own length
        old_client = data[:8] + struct.pack("<H", old) + data[10:]
        with pytest.raises(wire.WireError, match=rf"version {old} is not supported.*reads version 3 .*older.*same nodsynth"):
            wire.decode_request(old_client)
    with pytest.raises(wire.WireError, match="magic"):
        wire.decode_request(b"PK\x03\x04" + data[4:])
    with pytest.raises(wire.WireError, match="truncated"):
        wire.decode_request(data[:-10])
    with pytest.raises(wire.WireError, match="unexpected bytes"):
        wire.decode_request(data + b"\0")
    corrupt = bytearray(data)
    corrupt[-20] ^= 0xFF
    with pytest.raises(wire.WireError, match="corrupt"):
        wire.decode_request(bytes(corrupt))
    with pytest.raises(wire.WireError, match="expected a result"):
        wire.decode_result(data)


def test_decompression_limit_and_malformed_entries():
    entry = {"name": "labelmap", "kind": "volume", "dtype": "<f8", "shape": [4096, 4096, 4096],
             "spacing": [1, 1, 1], "origin": [0, 0, 0], "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1],
             "codec": wire.DEFAULT_CODEC, "chunks": 1}
    header = {"kind": "request", "operation": "twin", "engine": "x", "parameters": {}, "arrays": [entry]}
    with pytest.raises(wire.WireError, match="over the limit"):
        wire.decode_request(_message(header, _frame(b"\0" * 10)))
    for bad in ({"dtype": "O"}, {"shape": [2, 2]}, {"codec": "pickle"}, {"origin": [0, 0]}):
        with pytest.raises(wire.WireError):
            wire.decode_request(_message(dict(header, arrays=[{**entry, "shape": [1, 1, 1], **bad}])))


def test_unknown_fields_and_operations_are_input_errors():
    ct, _ = _lidc_case()
    pieces = wire.encode_request("twin", "nodmaisi", TwinRequest(labelmap=ct))
    header, start = wire.read_header(pieces.head)
    payload = b"".join(list(pieces)[1:])
    with pytest.raises(InputError, match="no field.*guidance"):
        wire.decode_request(_message(dict(header, parameters={"guidance": 3}), payload))
    with pytest.raises(InputError, match="unknown operation 'train'"):
        wire.decode_request(_message(dict(header, operation="train"), payload))
    with pytest.raises(InputError, match="needs a InpaintRequest|needs a"):
        wire.encode_request("inpaint", "classic", TwinRequest(labelmap=ct))


def test_decoding_holds_the_array_once_not_a_second_copy():
    import tracemalloc

    slab = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd")).array
    ct = Volume(np.tile(slab, (max(1, (96 << 20) // slab.nbytes), 1, 1)))  # real CT values, >= 96 MiB
    message = wire.join(wire.encode_request("twin", "nodmaisi", TwinRequest(labelmap=ct)))
    tracemalloc.start()
    try:
        decoded = wire.decode_request(message).request.labelmap
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoded.array.tobytes() == ct.array.tobytes()
    # the array, plus at most one inflated chunk per decoding thread (before: the array three times)
    assert peak < ct.array.nbytes + 4 * 2 * wire.CHUNK_BYTES, (peak / 2**20, ct.array.nbytes / 2**20)


def test_a_zip_bomb_is_refused_from_its_header_before_anything_is_allocated():
    from server_harness import zip_bomb

    for shape, dtype in (((1024, 1024, 1024), "<i2"), ((1024, 1024, 512), "|u1")):
        with pytest.raises(wire.WireError, match=r"'ct' has \d+ elements .*over the limit of 268435456 voxels"):
            wire.decode_request(zip_bomb(shape, dtype))


@pytest.mark.parametrize("codec", wire.available_codecs())
def test_every_codec_round_trips_bit_exactly(codec):
    ct, mask = _lidc_case()
    ct = _oblique(ct)
    request = InpaintRequest(ct=ct, nodule_mask=ct.with_array(mask.array.astype(np.uint8)), seed=1)
    decoded = wire.decode_request(wire.join(wire.encode_request("inpaint", "classic", request, codec=codec)))
    assert_same_volume(decoded.request.ct, ct)
    assert_same_volume(decoded.request.nodule_mask, request.nodule_mask)
    header, _ = wire.read_header(wire.encode_request("inpaint", "classic", request, codec=codec).head)
    assert {entry["codec"] for entry in header["arrays"]} == {codec}


def test_zstd_chunk_claiming_another_size_is_refused():
    if "shuffle-zstd" not in wire.available_codecs():
        pytest.skip("zstandard is not installed")
    ct, _ = _lidc_case()
    pieces = wire.encode_request("twin", "nodmaisi", TwinRequest(labelmap=ct), codec="shuffle-zstd")
    header, _ = wire.read_header(pieces.head)
    bigger = wire._zstd_compress(memoryview(bytes(ct.array.nbytes + 1)), 1)  # one byte more than stated
    header["arrays"][0]["chunks"] = 1
    with pytest.raises(wire.WireError, match="does not decompress to its stated size"):
        wire.decode_request(_message(header, _frame(bigger)))


def _changed(ct: Volume) -> Volume:
    """The CT with two separate boxes changed, as an inpaint of two nodules changes it."""
    out = ct.array.copy()
    out[1:3, 2:6, 3:9] += 7
    out[-2:, -5:, -4:] = -1000
    return ct.with_array(out)


def test_a_result_travels_as_its_changed_boxes_and_rebuilds_exactly():
    ct, _ = _lidc_case("LIDC-IDRI-0003_R_2.nii.gz")
    result = SynthesisResult({"ct": _changed(ct)}, "classic")
    digest = content_hash(result.ct)
    pieces = wire.encode_result(result, bases={"ct": ct}, hashes={"ct": digest})
    header, _ = wire.read_header(pieces.head)
    entry = header["arrays"][0]
    assert entry["kind"] == "patch" and len(entry["boxes"]) == 2
    assert wire.message_size(pieces) < wire.message_size(wire.encode_result(result)) / 4
    checked = {}
    rebuilt = wire.decode_result(wire.join(pieces), bases={"ct": ct}, hashes_out=checked)
    assert_same_volume(rebuilt.ct, result.ct)
    assert checked == {"ct": digest}
    stale = ct.with_array(ct.array.copy())
    stale.array[6, 24, 27] += 1  # outside both boxes: the client's input is not what the server used
    with pytest.raises(wire.PatchMismatch, match="content hash mismatch"):
        wire.decode_result(wire.join(pieces), bases={"ct": stale})
    with pytest.raises(wire.WireError, match="did not send"):
        wire.decode_result(wire.join(pieces), bases={})


def test_a_result_is_rebuilt_into_a_copy_made_beforehand_and_still_checked_against_its_voxels():
    from nodsynth.io.content_hash import HASH_PIECE_BYTES

    slab = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    repeats = -(-3 * HASH_PIECE_BYTES // slab.array.nbytes)
    ct = Volume(np.concatenate([slab.array] * repeats), slab.spacing, slab.origin, slab.direction)  # >= 3 pieces
    out = ct.array.copy()
    out[-3:, 100:140, 200:260] += 9  # the last piece only
    result = SynthesisResult({"ct": ct.with_array(out)}, "classic")
    digest = cached_content_hash(ct)  # as the client hashed its request
    message = wire.join(wire.encode_result(result, bases={"ct": ct}, hashes={"ct": content_hash(result.ct)}))
    copy = wire.base_copy(ct)
    assert copy[0] is not ct.array and copy[1] == digest
    rebuilt = wire.decode_result(message, bases={"ct": ct}, base_copies={"ct": copy})
    assert rebuilt.ct.array is copy[0] and rebuilt.ct.array.tobytes() == out.tobytes()
    ct.array[0, 0, :10] = 500  # changed in place after it was hashed, in a piece the result did not touch
    with pytest.raises(wire.PatchMismatch, match="content hash mismatch"):
        wire.decode_result(message, bases={"ct": ct}, base_copies={"ct": wire.base_copy(ct)})


def test_a_request_volume_travels_as_its_change_from_a_base_the_server_holds():
    ct, mask = _lidc_case("LIDC-IDRI-0003_R_2.nii.gz")
    changed = _changed(ct)
    base_hash, digest = content_hash(ct), content_hash(changed)
    checked = {}
    wire.decode_result(wire.join(wire.encode_result(SynthesisResult({"ct": changed}, "classic"), bases={"ct": ct},
                                                    hashes={"ct": digest})), bases={"ct": ct}, changes_out=checked)
    change = wire.Change(base_hash, *checked["ct"])
    request = TwinRequest(labelmap=changed)
    message = wire.join(wire.encode_request("twin", "nodmaisi", request, hashes={"labelmap": digest},
                                            patches={"labelmap": change}))
    assert len(message) < changed.array.nbytes / 4
    assert wire.ref_hashes(wire.read_header(message)[0]) == [base_hash]  # the server must hold the base
    decoded = wire.decode_request(message, resolve={base_hash: ct}.__getitem__)
    assert_same_volume(decoded.request.labelmap, changed)
    assert decoded.hashes == {"labelmap": digest} and decoded.refs == frozenset()
    stale = ct.with_array(ct.array.copy())
    stale.array[6, 24, 27] += 1  # the server's base is not the client's
    with pytest.raises(wire.PatchMismatch, match="content hash mismatch"):
        wire.decode_request(message, resolve={base_hash: stale}.__getitem__)
    with pytest.raises(wire.WireError, match="needs the content hash of a held base"):
        wire.decode_request(message)


def test_content_hash_covers_voxels_and_geometry_and_is_remembered_per_array():
    ct, _ = _lidc_case()
    digest = content_hash(ct)
    assert content_hash(Volume(ct.array.copy(), ct.spacing, ct.origin, ct.direction)) == digest
    assert content_hash(_oblique(ct)) != digest
    assert content_hash(ct.with_array(ct.array.astype(np.int32))) != digest
    assert content_hash(ct.with_array(ct.array.astype(">i2"))) == digest  # voxel values, not byte order
    assert cached_content_hash(ct) == digest
    ct.array[0, 0, 0] += 1  # changed in place: the remembered hash is stale until forgotten
    assert cached_content_hash(ct) == digest
    forget(ct)
    assert cached_content_hash(ct) == content_hash(ct) != digest


def test_changed_boxes_cover_every_change_and_nothing_far_from_it():
    ct, _ = _lidc_case("LIDC-IDRI-0003_R_2.nii.gz")
    after = _changed(ct).array
    boxes = changed_boxes(ct.array, after)
    assert put_boxes(ct.array, boxes, take_boxes(after, boxes)).tobytes() == after.tobytes()
    assert len(boxes) == 2 and box_voxels(boxes) < ct.array.size / 4
    assert changed_boxes(ct.array, ct.array.copy()) == []
    negative_zero = np.zeros((2, 2, 2), np.float32), np.full((2, 2, 2), -0.0, np.float32)
    assert changed_boxes(*negative_zero) == [(0, 2, 0, 2, 0, 2)]  # bits, not values, are compared


def _blocks_of_changed_voxels(before: np.ndarray, after: np.ndarray, block: int = 8) -> set:
    """Directly: the 8-voxel blocks holding a voxel whose bytes differ."""
    differs = before.view(np.uint8).reshape(*before.shape, before.itemsize) != \
        after.view(np.uint8).reshape(*after.shape, after.itemsize)
    return {tuple(int(n) // block for n in kji) for kji in np.argwhere(differs.any(axis=-1))}


@pytest.mark.parametrize("dtype,columns", [(np.int16, 48), (np.uint8, 40), (np.float32, 54), (np.int16, 53)])
def test_changed_boxes_compare_words_yet_cover_exactly_the_changed_voxels_blocks(dtype, columns):
    ct, _ = _lidc_case("LIDC-IDRI-0003_R_2.nii.gz")
    before = np.ascontiguousarray(ct.array[:, :, :columns]).astype(dtype)
    after = before.copy()
    for k, j, i in ((0, 0, 0), (3, 9, 7), (3, 9, 8), (10, 40, columns - 1), (11, 20, 29)):  # block edges, last column
        after[k, j, i] = after[k, j, i] + 1 if dtype != np.uint8 else after[k, j, i] ^ 1
        boxes = changed_boxes(before, after)
        covered = {(k0 // 8 + a, j0 // 8 + b, i0 // 8 + c) for k0, k1, j0, j1, i0, i1 in boxes
                   for a in range(-(-(k1 - k0) // 8)) for b in range(-(-(j1 - j0) // 8))
                   for c in range(-(-(i1 - i0) // 8))}
        assert _blocks_of_changed_voxels(before, after) <= covered
        assert put_boxes(before, boxes, take_boxes(after, boxes)).tobytes() == after.tobytes()
    assert len(boxes) == 3  # (0, 0, 0), (3, 9, 7) and (3, 9, 8) lie in touching blocks: one box


def _fed(data: bytes, seed: int, resolve=None) -> wire.WireRequest:
    """``data`` through a StreamReader in pieces of random sizes (1 byte to 1 MiB), as an upload arrives."""
    reader = wire.StreamReader()
    rng, start = np.random.default_rng(seed), 0
    while start < len(data):
        stop = start + int(rng.choice([1, 7, 4096, 65536, 1 << 20]))
        reader.feed(data[start:stop])
        start = stop
    return reader.request(resolve)


@pytest.mark.parametrize("codec", wire.available_codecs())
def test_a_request_decoded_as_it_arrives_equals_the_whole_message_decoded(codec):
    slab = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))  # several chunks
    mask = slab.with_array((slab.array > 0).astype(np.uint8))
    request = InpaintRequest(ct=_oblique(slab), nodule_mask=_oblique(mask), subtype="solid", seed=4, steps=20)
    hashes = {"ct": content_hash(request.ct), "nodule_mask": content_hash(request.nodule_mask)}
    data = wire.join(wire.encode_request("inpaint", "classic", request, codec=codec, hashes=hashes,
                                         refs={"nodule_mask"}))
    held = {hashes["nodule_mask"]: request.nodule_mask}
    whole, streamed = wire.decode_request(data, resolve=held.__getitem__), _fed(data, 1, held.__getitem__)
    assert_same_volume(streamed.request.ct, whole.request.ct)
    assert_same_volume(streamed.request.ct, request.ct)
    assert streamed.request.nodule_mask is request.nodule_mask  # the ref, resolved
    assert (streamed.hashes, streamed.refs, streamed.request.steps) == (whole.hashes, whole.refs, 20)
    assert streamed.request.ct.array.flags.writeable
    with pytest.raises(wire.WireError, match="truncated inside array 'ct'"):
        _fed(data[:len(data) // 2], 2, held.__getitem__)
    with pytest.raises(wire.WireError, match="3 unexpected bytes"):
        _fed(data + b"abc", 3, held.__getitem__)
    with pytest.raises(wire.WireError, match="is a ref"):
        _fed(data, 4)
    corrupt = bytearray(data)
    corrupt[-200] ^= 0xFF
    if codec != "none":  # raw chunks cannot tell a flipped bit
        with pytest.raises(wire.WireError, match="corrupt array payload"):
            _fed(bytes(corrupt), 5, held.__getitem__)
    with pytest.raises(wire.WireError, match="bad magic"):
        wire.StreamReader().feed(b"GET / HTTP/1.1\r\n")
