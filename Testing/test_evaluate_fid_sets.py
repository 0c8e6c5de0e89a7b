"""Issue 27 item 5: ``evaluate fid --num-images`` takes the first N CTs of each sorted list, as
``compute_fid_2-5d_ct.py`` does, and ``evaluate fid --matrix`` gives the FID of every pair of sets
(real LIDC crops, a tiny TorchScript feature network)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from nodsynth.cli.main import main  # noqa: E402
from nodsynth.evaluate.ct_fid import FidSettings, ct_fid  # noqa: E402
from nodsynth.evaluate.ct_prep import PrepSettings  # noqa: E402
from nodsynth.evaluate.network import load_feature_network  # noqa: E402
from test_evaluate_fid_cli import TARGET, network_file  # noqa: E402,F401

SETTINGS = FidSettings(PrepSettings((40, 40, 16)))


@pytest.fixture
def images():
    return sorted(shared_path("lidc_vois", "image").glob("*.nii.gz"))


def test_num_images_takes_the_first_of_the_sorted_list(images, network_file, tmp_path):
    listed = [images[i] for i in (33, 21, 30, 22, 20)]  # unsorted, as a list file may be
    (tmp_path / "real.txt").write_text("\n".join(str(p) for p in listed) + "\n")
    (tmp_path / "synthetic.txt").write_text("\n".join(str(p) for p in reversed(images[40:45])) + "\n")
    assert main(["evaluate", "fid", "--real", str(tmp_path / "real.txt"), "--synthetic", str(tmp_path / "synthetic.txt"),
                 "--num-images", "3", "--network", str(network_file), "--target-shape", TARGET, "--device", "cpu",
                 "--json", str(tmp_path / "fid.json")]) == 0
    report = json.loads((tmp_path / "fid.json").read_text())
    # the published script: lines sorted, then [:num_images]
    real = sorted(str(p) for p in listed)[:3]
    synthetic = sorted(str(p) for p in images[40:45])[:3]
    network = load_feature_network(str(network_file), None, "cpu")
    expected = ct_fid(real, synthetic, network, "cpu", SETTINGS)
    assert report["n_real"] == report["n_synthetic"] == 3
    assert report["fid_avg"] == pytest.approx(expected["fid_avg"], abs=1e-8)


def test_matrix_gives_the_fid_of_every_pair(images, network_file, tmp_path, capsys):
    groups = {"a": images[20:23], "b": images[30:33], "c": images[40:43]}
    for name, files in groups.items():
        (tmp_path / f"{name}.txt").write_text("\n".join(str(p) for p in files) + "\n")
    assert main(["evaluate", "fid", "--matrix", *[f"{n}={tmp_path / n}.txt" for n in groups], "--network", str(network_file),
                 "--target-shape", TARGET, "--device", "cpu", "--json", str(tmp_path / "matrix.json")]) == 0
    report = json.loads((tmp_path / "matrix.json").read_text())
    matrix = np.asarray(report["fid_avg"])
    print("FID matrix (average of the planes):\n", matrix)
    assert report["sets"] == ["a", "b", "c"] and report["n_images"] == {"a": 3, "b": 3, "c": 3}
    assert np.array_equal(matrix, matrix.T) and not matrix.diagonal().any()
    network = load_feature_network(str(network_file), None, "cpu")
    pair = ct_fid(groups["a"], groups["c"], network, "cpu", SETTINGS)
    assert matrix[0, 2] == pytest.approx(pair["fid_avg"], abs=1e-8) and matrix[0, 2] > 0
    assert main(["evaluate", "fid", "--matrix", f"a={tmp_path / 'a.txt'}", "--network", str(network_file),
                 "--json", str(tmp_path / "one.json")]) == 2
    assert "--matrix needs at least two sets" in capsys.readouterr().err
    assert not (tmp_path / "one.json").exists()


def test_a_rank_computes_only_its_share_of_the_files(monkeypatch):
    from nodsynth.evaluate import ct_fid as ct_fid_module
    from nodsynth.train.distributed import DataParallel

    computed = []

    def features(path, *args, **kwargs):
        computed.append(path.name)
        return {plane: np.full((2, 3), float(path.name[1:])) for plane in ("xy", "yz", "zx")}

    class SecondOfTwo(DataParallel):
        def gather_in_order(self, local):  # what rank 0 would send: files 0, 2, 4
            return [value for _, value in sorted([*local, *[(i, features(Path(f"f{i}"))) for i in (0, 2, 4)]])]

    monkeypatch.setattr(ct_fid_module, "ct_features", features)
    stacked = ct_fid_module.side_features([Path(f"f{i}") for i in range(5)], "real", None, "cpu", SETTINGS, None, "",
                                          parallel=SecondOfTwo(rank=1, world_size=2))
    assert computed[:2] == ["f1", "f3"]  # this rank's files; then the stand-in for rank 0's
    assert stacked["xy"][:, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]  # gathered in file order
