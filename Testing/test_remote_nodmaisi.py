"""NodMAISI through ``nodsynth serve`` on loopback equals NodMAISI run locally, bit for bit.

The networks are the tiny MAISI-v2-shaped configuration (``maisi_tiny``) with seeded random weights,
saved in the real checkpoint formats to a weights folder that the server (``--weights``) and the
local engine both load.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("monai", reason="the NodMAISI engine needs torch and MONAI (pip install 'nodsynth[engines]')")

import torch  # noqa: E402

from conftest import shared_path  # noqa: E402
from nodsynth.augment import resize_nodule  # noqa: E402
from nodsynth.engines.base import EditRequest, TwinRequest  # noqa: E402
from nodsynth.engines.maisi import build_networks, save_autoencoder, save_controlnet, save_diffusion_unet  # noqa: E402
from nodsynth.engines.maisi.networks import randomize_zero_parameters  # noqa: E402
from nodsynth.engines.nodmaisi import NodMAISIEngine  # noqa: E402
from nodsynth.engines.remote import RemoteEngine  # noqa: E402
from nodsynth.labelmap import as_integer_labelmap  # noqa: E402
from nodsynth.volume import Volume
from nodsynth.io.volume_files import read_volume
from server_harness import TOKEN, ServerProcess, write_token  # noqa: E402

ENGINE_OPTIONS = {"nodmaisi": {"config": "maisi_tiny", "roi_box_voxels": 64,
                               "allow_baseline_controlnet": True}}  # the fixture saves the MAISI-v2 name


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_weights")
    torch.manual_seed(0)
    nets = build_networks("maisi_tiny", "cpu")
    for seed, net in enumerate((nets.autoencoder, nets.diffusion_unet, nets.controlnet)):
        randomize_zero_parameters(net, seed)  # MONAI zero-initialises output layers
    save_autoencoder(nets.autoencoder, folder / "autoencoder.pt")
    save_diffusion_unet(nets.diffusion_unet, 1.0, folder / "diffusion_unet.pt")
    save_controlnet(nets.controlnet, folder / "controlnet_3d_rflow-ct.pt")
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_weights):
    folder = tmp_path_factory.mktemp("serve_nodmaisi")
    options = folder / "engine_options.json"
    options.write_text(json.dumps(ENGINE_OPTIONS))
    proc = ServerProcess(folder / "jobs", write_token(folder), engines="nodmaisi,classic",
                         extra_args=["--weights", str(tiny_weights), "--engine-options", str(options)],
                         env={"OMP_NUM_THREADS": str(torch.get_num_threads())})  # same CPU threads as here
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def local(tiny_weights) -> NodMAISIEngine:
    return NodMAISIEngine(weights_dir=str(tiny_weights), device="cpu", **ENGINE_OPTIONS["nodmaisi"])


def assert_identical(a: Volume, b: Volume) -> None:
    assert a.array.dtype == b.array.dtype and a.array.shape == b.array.shape
    assert a.array.tobytes() == b.array.tobytes()
    for attr in ("spacing", "origin", "direction"):
        assert getattr(a, attr).tobytes() == getattr(b, attr).tobytes()


def test_health_reports_nodmaisi_weights(server):
    with RemoteEngine(server.url, token=TOKEN, engine="nodmaisi") as engine:
        described = engine.describe()
    assert described["reachable"] and described["weights_found"] and described["config"] == "maisi_tiny"
    assert set(described["operations"]) == {"twin", "edit"}


def test_twin_through_server_is_bit_identical_to_local(server, local):
    labels = as_integer_labelmap(read_volume(shared_path("dlcs_labelmaps", "DLCS_0002_seg_sh.nii.gz")))
    request = TwinRequest(labelmap=labels, output_size_ijk=(256, 256, 128), output_spacing_mm=(1.4, 1.4, 2.5),
                          steps=1, seed=3)
    with RemoteEngine(server.url, token=TOKEN, engine="nodmaisi", poll_interval_s=0.2) as engine:
        remote = engine.twin(request)
    expected = local.twin(request)
    assert_identical(remote.ct, expected.ct)
    assert remote.engine == "nodmaisi" and remote.info["config"] == "maisi_tiny"
    assert np.unique(expected.ct.array).size > 100  # a generated image, not a constant


def test_edit_through_server_is_bit_identical_to_local(server, local):
    slab = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    mask = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab_nodule_2of4.nrrd"))
    # two stacked copies of the 16-slice slab: 32 slices, the networks' smallest input
    ct = Volume(np.tile(slab.array, (2, 1, 1)), slab.spacing, slab.origin, slab.direction)
    nodule = np.tile(mask.array, (2, 1, 1)) > 0
    labels = ct.with_array(np.where(nodule, 23, np.where(ct.array < -500, 28, 0)).astype(np.uint8))
    request = EditRequest(ct=ct, labelmap=labels, edited_labelmap=resize_nodule(labels, "all", 50.0).labelmap,
                          steps=2, seed=4)
    with RemoteEngine(server.url, token=TOKEN, engine="nodmaisi", poll_interval_s=0.2) as engine:
        remote = engine.edit(request)
    expected = local.edit(request)
    assert_identical(remote.ct, expected.ct)
    assert not np.array_equal(expected.ct.array, ct.array)
