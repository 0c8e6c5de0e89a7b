"""``nodsynth evaluate fid`` on real LIDC CT crops: report keys, feature cache, the network loader
(TorchScript, local torch.hub folder, never a download) and bad input (clear error, nothing written)."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from conftest import shared_path

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from nodsynth.cli.main import main  # noqa: E402
from nodsynth.errors import InputError, WeightsError  # noqa: E402
from nodsynth.evaluate import ct_fid as ct_fid_module  # noqa: E402
from nodsynth.evaluate.ct_fid import FidSettings, ct_fid  # noqa: E402
from nodsynth.evaluate.ct_prep import PrepSettings  # noqa: E402
from nodsynth.evaluate.feature_cache import FeatureCache  # noqa: E402
from nodsynth.evaluate.network import load_feature_network, network_fingerprint  # noqa: E402
from nodsynth.io.volume_files import read_volume, write_volume
from test_evaluate_fid_anchor import tiny_network  # noqa: E402

TARGET = "40x40x16"
REPORT_KEYS = {"fid_xy", "fid_yz", "fid_zx", "fid_avg", "n_real", "n_synthetic", "n_slices_real", "n_slices_synthetic"}


@pytest.fixture(scope="module")
def network_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "tiny.pt"
    torch.jit.script(tiny_network()).save(str(path))
    return path


@pytest.fixture
def sides(tmp_path):
    """Two folders of three real LIDC CT crops each (paths listed, not copied into the repository)."""
    images = sorted(shared_path("lidc_vois", "image").glob("*.nii.gz"))
    real, synthetic = tmp_path / "real.txt", tmp_path / "synthetic.csv"
    real.write_text("\n".join(str(p) for p in images[20:23]) + "\n")
    synthetic.write_text("path\n" + "\n".join(str(p) for p in images[40:43]) + "\n")
    return real, synthetic, images


def test_cli_fid_report_has_exactly_the_published_keys(sides, network_file, tmp_path):
    real, synthetic, _ = sides
    out = tmp_path / "reports" / "fid.json"
    assert main(["evaluate", "fid", "--real", str(real), "--synthetic", str(synthetic), "--network", str(network_file),
                 "--json", str(out), "--target-shape", TARGET, "--center-slices-ratio", "0.5", "--batch-size", "5"]) == 0
    data = json.loads(out.read_text())
    assert set(data) == REPORT_KEYS
    assert data["n_real"] == 3 and data["n_synthetic"] == 3
    assert data["n_slices_real"] == {"xy": 3 * 8, "yz": 3 * 20, "zx": 3 * 20}
    assert data["fid_avg"] == pytest.approx(np.mean([data["fid_xy"], data["fid_yz"], data["fid_zx"]]))
    assert min(data["fid_xy"], data["fid_yz"], data["fid_zx"]) > 0


def test_cache_makes_reruns_incremental(sides, tmp_path, monkeypatch):
    _, _, images = sides
    network, cache = tiny_network(), FeatureCache(tmp_path / "cache")
    settings = FidSettings(PrepSettings((40, 40, 16)))
    real, synthetic = images[20:23], images[40:43]
    first = ct_fid(real, synthetic, network, "cpu", settings, cache)
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 6
    read = []

    def counting_read(path):
        read.append(path)
        return read_volume(path)

    monkeypatch.setattr(ct_fid_module, "read_volume", counting_read)
    assert ct_fid(real, synthetic, network, "cpu", settings, cache) == first
    assert read == []
    ct_fid(real, synthetic + [images[43]], network, "cpu", settings, cache)
    assert read == [images[43]]
    ct_fid(real, synthetic, network, "cpu", FidSettings(PrepSettings((40, 40, 16)), 0.5), cache)
    assert len(read) == 1 + 6  # other settings: other key
    torch.manual_seed(99)
    other_network = torch.nn.Sequential(torch.nn.Conv2d(3, 12, 5, stride=2), torch.nn.ReLU(),
                                        torch.nn.Conv2d(12, 12, 3, stride=2), torch.nn.Tanh()).eval()
    assert network_fingerprint(other_network) != network_fingerprint(network)
    ct_fid(real[:2], synthetic[:2], other_network, "cpu", settings, cache)
    assert len(read) == 7 + 4


def test_hub_folder_loaded_locally_and_never_downloads(tmp_path, monkeypatch):
    """A local torch.hub folder shaped like github.com/Warvito/radimagenet-models: its entry falls back
    to downloading when the weights are missing, which nodsynth never lets it reach."""
    hub = tmp_path / "radimagenet-models"
    hub.mkdir()
    (hub / "hubconf.py").write_text(textwrap.dedent('''
        dependencies = ["torch"]
        import os
        import torch

        def _net():
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())

        def radimagenet_resnet50(model_dir=None, file_name="RadImageNet-ResNet50_notop.pth", progress=True):
            path = os.path.join(model_dir or "", file_name)
            if not os.path.exists(path):
                raise RuntimeError("would download the weights here")
            model = _net()
            model.load_state_dict(torch.load(path))
            return model

        def tiny_downloading():
            torch.hub.load_state_dict_from_url("https://example.invalid/weights.pth")
            return _net()

        def tiny():
            return _net()
    '''))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(WeightsError, match="RadImageNet-ResNet50_notop.pth were not found; looked in"):
        load_feature_network(hub)
    reference = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    (hub / "checkpoints").mkdir()
    torch.save(reference.state_dict(), hub / "checkpoints" / "RadImageNet-ResNet50_notop.pth")
    loaded = load_feature_network(hub)
    assert not loaded.training
    assert torch.equal(loaded[0].weight, reference[0].weight)
    assert network_fingerprint(load_feature_network(hub, entry="tiny")) != network_fingerprint(loaded)
    with pytest.raises(WeightsError, match="nodsynth never downloads"):
        load_feature_network(hub, entry="tiny_downloading")
    with pytest.raises(InputError, match="cannot load entry 'missing'"):
        load_feature_network(hub, entry="missing")


@pytest.mark.parametrize("case, message", [
    ("missing-network", "does not exist; place there a TorchScript file of the feature network, or a copy of "
                        "github.com/Warvito/radimagenet-models"),
    ("not-torchscript", "is not a TorchScript file"),
    ("empty-folder", "holds no CT volume"),
    ("one-file", "FID is undefined with fewer than 2 samples per side"),
    ("not-hu", "not a CT in Hounsfield units"),
    ("overwrite", "would overwrite the input"),
])
def test_cli_fid_bad_input(sides, network_file, tmp_path, capsys, case, message):
    real, synthetic, images = sides
    network, out = network_file, tmp_path / "out" / "fid.json"
    if case == "missing-network":
        network = tmp_path / "nowhere" / "radimagenet"
    elif case == "not-torchscript":
        network = tmp_path / "weights.pt"
        network.write_bytes(b"not a network")
    elif case == "empty-folder":
        real = tmp_path / "empty"
        real.mkdir()
    elif case == "one-file":
        real.write_text(str(images[20]) + "\n")
    elif case == "not-hu":
        volume = read_volume(images[21])
        folder = tmp_path / "scaled"
        write_volume(volume.with_array(((volume.array + 1024.0) / 4096.0).astype(np.float32)), folder / "scaled.nii.gz")
        real = folder / "list.txt"
        real.write_text(f"scaled.nii.gz\n{images[22]}\n")
    elif case == "overwrite":
        out = images[20]
        real.write_text("\n".join(str(p) for p in images[20:23]) + "\n")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    code = main(["evaluate", "fid", "--real", str(real), "--synthetic", str(synthetic), "--network", str(network),
                 "--json", str(out), "--target-shape", TARGET])
    assert code == 2
    assert message in capsys.readouterr().err
    if case != "overwrite":
        assert not out.exists()
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == before
