"""Issue 27 item 2: ``torchrun --standalone --nproc_per_node 2 -m nodsynth train ...`` (gloo on CPU) makes the
weight updates of one process with the same global batch, records ``world_size`` 2 in a checkpoint of
today's format (no ``module.`` prefix), and refuses a global batch the processes do not divide."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from nodsynth.train import controlnet, hrldm  # noqa: E402
from nodsynth.train.keyed import seeded_init  # noqa: E402
from test_hrldm import one_thread  # noqa: E402,F401  (autouse: one torch thread, as torchrun's processes)
from test_hrldm_train import manifest  # noqa: E402,F401  (fixture: three LIDC nodules, one per subtype)
from test_train_reproducible import _controlnet_options, _hrldm_options, _run, frozen  # noqa: E402,F401

ROOT = Path(__file__).resolve().parent.parent


def _torchrun(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "nodsynth", "train", *argv], env=env, capture_output=True, text=True, timeout=300)


def _update_agreement(initial: dict, one: dict, two: dict) -> tuple[float, float]:
    """Cosine and relative distance of the weight updates ``one - initial`` and ``two - initial``."""
    keys = [k for k, v in initial.items() if v.is_floating_point()]
    first = torch.cat([(one[k].double() - initial[k].double()).flatten() for k in keys])
    second = torch.cat([(two[k].double() - initial[k].double()).flatten() for k in keys])
    cosine = float(torch.nn.functional.cosine_similarity(first, second, dim=0))
    return cosine, float((first - second).norm() / first.norm())


def test_controlnet_two_processes_update_as_one(frozen, tmp_path):
    common = ["--steps", "3", "--batch-size", "2"]
    _run(controlnet, _controlnet_options(frozen, tmp_path / "one", *common))
    done = _torchrun("controlnet", *_controlnet_options(frozen, tmp_path / "two", *common))
    assert done.returncode == 0, done.stderr[-3000:]
    nets, _ = controlnet.frozen_networks("maisi_tiny", str(frozen), "cpu", seed=0)
    one, two = (torch.load(tmp_path / name / controlnet.CHECKPOINT_NAME, weights_only=True) for name in ("one", "two"))
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert set(two["controlnet_state_dict"]) == set(nets.controlnet.state_dict())  # no "module." prefix
    cosine, distance = _update_agreement(nets.controlnet.state_dict(), one["controlnet_state_dict"],
                                         two["controlnet_state_dict"])
    print(f"train controlnet, 3 steps, global batch 2: 2 processes vs 1: cosine {cosine:.9f}, relative distance {distance:.2e}")
    assert cosine >= 0.999 and distance <= 1e-3
    # resumable at another world size: one process continues the two-process run
    _run(controlnet, _controlnet_options(frozen, tmp_path / "two", "--steps", "4", "--batch-size", "2", "--resume"))
    assert torch.load(tmp_path / "two" / controlnet.CHECKPOINT_NAME, weights_only=True)["step"] == 4


def test_hrldm_two_processes_update_as_one(manifest, tmp_path):
    from nodsynth.engines.hrldm import HRLDMNet, load_hrldm_config

    # the default options: one example per pass whatever the world size (a pass of 2 in one process rounds
    # differently from two single passes, and Adam turned that into updates 2.5e-3 apart)
    common = ["--steps", "3", "--batch-size", "2"]
    _run(hrldm, _hrldm_options(manifest, tmp_path / "one", *common))
    done = _torchrun("hrldm", *_hrldm_options(manifest, tmp_path / "two", *common))
    assert done.returncode == 0, done.stderr[-3000:]
    with seeded_init(0):
        initial = HRLDMNet(load_hrldm_config("hrldm_tiny")).state_dict()
    one, two = (torch.load(tmp_path / name / hrldm.CHECKPOINT_NAME, weights_only=True) for name in ("one", "two"))
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert set(two["network_state_dict"]) == set(initial)
    cosine, distance = _update_agreement(initial, one["network_state_dict"], two["network_state_dict"])
    print(f"train hrldm, 3 steps, global batch 2: 2 processes vs 1: cosine {cosine:.9f}, relative distance {distance:.2e}")
    assert cosine >= 0.999 and distance <= 1e-3
    assert (tmp_path / "two" / hrldm.LOG_NAME).read_text().splitlines()[0] == "step,loss,noise,hist"


def test_a_global_batch_the_processes_do_not_divide_is_refused(frozen, tmp_path):
    done = _torchrun("controlnet", *_controlnet_options(frozen, tmp_path / "odd", "--steps", "1", "--batch-size", "3"))
    assert done.returncode != 0
    assert "--batch-size 3 (the global batch) must be a multiple of the 2 processes" in done.stderr
    assert not (tmp_path / "odd" / controlnet.CHECKPOINT_NAME).exists()


def test_fid_features_of_two_processes_are_gathered_in_file_order(tmp_path):
    from conftest import shared_path
    from test_evaluate_fid_anchor import tiny_network

    images = sorted(shared_path("lidc_vois", "image").glob("*.nii.gz"))
    (tmp_path / "real.txt").write_text("\n".join(str(p) for p in images[20:25]) + "\n")  # 5 files: 3 + 2
    (tmp_path / "synthetic.txt").write_text("\n".join(str(p) for p in images[40:43]) + "\n")
    torch.jit.script(tiny_network()).save(str(tmp_path / "tiny.pt"))
    common = ["fid", "--real", str(tmp_path / "real.txt"), "--synthetic", str(tmp_path / "synthetic.txt"),
              "--network", str(tmp_path / "tiny.pt"), "--target-shape", "40x40x16", "--device", "cpu"]
    from nodsynth.cli.main import main

    assert main(["evaluate", *common, "--json", str(tmp_path / "one.json")]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "nodsynth", "evaluate", *common, "--json", str(tmp_path / "two.json")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    print(f"2.5D FID, 1 process {one['fid_avg']!r}, 2 processes {two['fid_avg']!r}")
    assert one["n_slices_real"] == two["n_slices_real"] and one["n_real"] == two["n_real"] == 5
    for key in ("fid_xy", "fid_yz", "fid_zx", "fid_avg"):
        assert two[key] == pytest.approx(one[key], abs=1e-8)
