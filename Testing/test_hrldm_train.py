"""HR-LDM training (Algorithm 1) smoke tests on real LIDC nodules: tiny configuration, random
autoencoder. Loss falls on a fixed batch, --lambda-hist 0 runs, resume continues."""
from __future__ import annotations

import argparse
import csv

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from conftest import shared_path  # noqa: E402
from nodsynth.engines.hrldm import HRLDMNet, load_hrldm_checkpoint, load_hrldm_config  # noqa: E402
from nodsynth.engines.maisi import build_autoencoder  # noqa: E402
from nodsynth.errors import InputError  # noqa: E402
from nodsynth.presets import preset_histogram, read_voi_table, subtype_from_texture, write_histogram  # noqa: E402
from nodsynth.train import hrldm as train_hrldm  # noqa: E402
from test_hrldm import one_thread  # noqa: E402,F401  (autouse: one torch thread)



def _rows_by_subtype(count_per_subtype: int = 1) -> list[dict]:
    """The first ``count_per_subtype`` LIDC nodules of each subtype, as training manifest entries."""
    vois = shared_path("lidc_vois")
    rows = list(csv.DictReader(open(vois / "nodules.csv")))
    chosen = []
    for subtype in ("solid", "part-solid", "ground-glass"):
        chosen += [r for r in rows if subtype_from_texture(r["Texture_value"]) == subtype][:count_per_subtype]
    return [{"image": vois / "image" / r["file"], "mask": vois / "nodule_mask" / r["file"],
             "subtype": subtype_from_texture(r["Texture_value"])} for r in chosen]


def test_loss_falls_on_a_fixed_batch():
    config = load_hrldm_config("hrldm_tiny")
    torch.manual_seed(0)
    autoencoder = build_autoencoder(config["autoencoder_config"], "cpu")
    entries = [{"image": n.image, "mask": n.mask, "subtype": n.subtype}
               for n in read_voi_table(shared_path("lidc_vois"))[:4]]  # the first four nodules of the table
    samples = train_hrldm.load_samples(entries, autoencoder, config)
    batch = train_hrldm.collate(samples, torch.device("cpu"))
    scale = train_hrldm.latent_scale_factor(batch["latent"])
    torch.manual_seed(0)
    trainer = train_hrldm.HRLDMTrainer(HRLDMNet(config), autoencoder, config, scale, lambda_hist=10.0,
                                       learning_rate=1e-3, total_steps=1000, device=torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    timesteps = torch.randint(0, 1000, (len(samples),), generator=generator)
    noise = torch.randn(batch["latent"].shape, generator=generator)
    losses = [trainer.step(batch, timesteps, noise) for _ in range(30)]
    first, last = losses[0], losses[-1]
    drop = 1.0 - last["loss"] / first["loss"]
    print(f"fixed batch of {len(samples)} LIDC nodules ({', '.join(e['subtype'] for e in entries)}), t={timesteps.tolist()}: "
          f"total loss {first['loss']:.4f} -> {last['loss']:.4f} ({drop:.0%} lower) over 30 steps; "
          f"noise {first['noise']:.4f} -> {last['noise']:.4f}, hist {first['hist']:.4f} -> {last['hist']:.4f}")
    assert all(np.isfinite(x["loss"]) for x in losses)
    assert drop >= 0.30


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train_hrldm.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("manifest")
    entries = _rows_by_subtype(1)
    write_histogram(preset_histogram("ground-glass"), folder / "ggo.json")
    with open(folder / "train.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "mask", "subtype", "histogram"])
        writer.writeheader()
        for entry in entries:
            writer.writerow({**entry, "histogram": "ggo.json" if entry["subtype"] == "ground-glass" else ""})
    return folder / "train.csv"


def test_cli_lambda_hist_zero(manifest, tmp_path):
    out = tmp_path / "ablation"
    args = _args("--manifest", str(manifest), "--out", str(out), "--config", "hrldm_tiny", "--random-autoencoder",
                 "--steps", "3", "--lambda-hist", "0", "--batch-size", "2", "--device", "cpu")
    assert train_hrldm.run(args) == 0
    log = list(csv.DictReader(open(out / "train_log.csv")))
    assert [int(r["step"]) for r in log] == [1, 2, 3]
    assert all(float(r["hist"]) == 0.0 and float(r["loss"]) == float(r["noise"]) for r in log)
    _, _, _, checkpoint = load_hrldm_checkpoint(out / "hrldm.pt")
    assert checkpoint["step"] == 3


def test_cli_resume(manifest, tmp_path):
    out = tmp_path / "run"
    common = ["--manifest", str(manifest), "--out", str(out), "--random-autoencoder", "--batch-size", "2",
              "--device", "cpu", "--save-every", "2", "--lr", "1e-3"]
    assert train_hrldm.run(_args(*common, "--config", "hrldm_tiny", "--steps", "4")) == 0
    first_net, _, scale_first, first = load_hrldm_checkpoint(out / "hrldm.pt")
    log_first = list(csv.DictReader(open(out / "train_log.csv")))
    assert first["step"] == 4 and len(log_first) == 4
    assert train_hrldm.run(_args(*common, "--resume", str(out / "hrldm.pt"), "--steps", "6")) == 0
    second_net, _, scale_second, second = load_hrldm_checkpoint(out / "hrldm.pt")
    log_second = list(csv.DictReader(open(out / "train_log.csv")))
    print("resumed log:", [(r["step"], r["loss"]) for r in log_second])
    assert second["step"] == 6 and [int(r["step"]) for r in log_second] == list(range(1, 7))
    assert log_second[:4] == log_first
    assert scale_second == pytest.approx(scale_first)
    assert second["optimizer_state_dict"]["state"][0]["step"] == 6  # Adam continued, not restarted
    assert second["lr_scheduler_state_dict"]["last_epoch"] == 6
    changed = [not torch.equal(a, b) for a, b in zip(first_net.state_dict().values(), second_net.state_dict().values())]
    assert any(changed)


def test_bad_training_input(tmp_path):
    (tmp_path / "bad.csv").write_text("image,mask\nx.nii.gz,y.nii.gz\n")
    with pytest.raises(InputError, match="subtype"):
        train_hrldm.read_manifest(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="not found"):
        train_hrldm.read_manifest(tmp_path / "none.csv")
    config = load_hrldm_config("hrldm_tiny")
    with pytest.raises(InputError, match="lambda-hist"):
        train_hrldm.HRLDMTrainer(HRLDMNet(config), build_autoencoder(config["autoencoder_config"], "cpu"), config,
                                 1.0, -1.0, 1e-5, 10, torch.device("cpu"))
