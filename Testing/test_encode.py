"""Issue 27 item 3: ``nodsynth encode`` prepares CTs as NoMAISI's ``diff_model_create_training_data.py``
(its own functions, run on the same tiny autoencoder and CT, give the same embedding in mean mode and
the same rounded sizes), skips finished CTs, and ``train controlnet --embeddings`` trains on them as on
the CTs themselves."""
from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from conftest import SHARED_DATA  # noqa: E402
from nodsynth.cli.main import main  # noqa: E402
from nodsynth.train import controlnet  # noqa: E402
from nodsynth.train.encode import embedding_path, published_size, read_embedding  # noqa: E402
from nodsynth.volume import Volume
from nodsynth.io.volume_files import write_volume
from test_hrldm import one_thread  # noqa: E402,F401
from test_train_reproducible import _controlnet_options, _run, frozen  # noqa: E402,F401

ANCHOR = SHARED_DATA.parent / "anchors" / "NoMAISI"


@pytest.fixture(scope="module")
def published():
    """NoMAISI's ``scripts/diff_model_create_training_data.py`` as a module (skips when the anchors are absent)."""
    if not (ANCHOR / "scripts" / "diff_model_create_training_data.py").is_file():
        pytest.skip(f"published code not available: {ANCHOR} is missing")
    sys.path.insert(0, str(ANCHOR))
    state = torch.random.get_rng_state()
    try:
        import scripts.diff_model_create_training_data as module  # its import calls set_determinism(0)
    finally:
        sys.path.remove(str(ANCHOR))
        torch.random.set_rng_state(state)
    return module


def test_sizes_round_as_published(published):
    sizes = [1, 40, 64, 192, 300, 320, 330, 448, 512, 1000]
    assert [published_size(n) for n in sizes] == [published.round_number(n) for n in sizes]
    assert (published_size(300), published_size(330), published_size(320)) == (256, 384, 256)


def test_embedding_equals_the_published_preparation_in_mean_mode(published, frozen, tmp_path):
    from nodsynth.engines.maisi import load_autoencoder

    rng = np.random.default_rng(0)
    ct = Volume(rng.integers(-1200, 1500, (40, 70, 50)).astype(np.int16), spacing=(0.8, 0.7, 2.0),
                origin=(10.0, -5.0, 3.0))  # LPS axes: RAS flips x and y; 50, 70, 40 -> 64, 64, 32
    write_volume(ct, tmp_path / "ct.nii.gz")
    assert main(["encode", "--cts", str(tmp_path / "ct.nii.gz"), "--out", str(tmp_path / "emb"), "--config", "maisi_tiny",
                 "--weights", str(frozen), "--device", "cpu"]) == 0
    saved = read_embedding(embedding_path(tmp_path / "emb", tmp_path / "ct.nii.gz"))

    plain = published.create_transforms(dim=None)({"image": str(tmp_path / "ct.nii.gz")})["image"]
    dim = tuple(published.round_number(int(plain.meta["dim"][i]), 32) for i in range(1, 4))
    image = published.create_transforms(dim)({"image": str(tmp_path / "ct.nii.gz")})["image"]
    autoencoder = load_autoencoder(frozen / "autoencoder.pt", "maisi_tiny", "cpu").eval()
    with torch.no_grad():
        reference = autoencoder.encode(image.as_tensor().float()[None])[0]
    print(f"published dims {dim}; latent {tuple(saved['latent'].shape)}; max |difference| "
          f"{float((saved['latent'] - reference).abs().max()):.2e}")
    assert dim == (64, 64, 32) and saved["image_size_xyz"] == list(dim)
    assert torch.equal(saved["latent"], reference)
    assert saved["spacing_xyz_mm"] == pytest.approx([0.8 * 50 / 64, 0.7 * 70 / 64, 2.0 * 40 / 32])


def test_finished_cts_are_skipped_and_training_reads_embeddings_as_the_cts(frozen, tmp_path, capsys):
    ct, labels = frozen / "demo_ct.nii.gz", frozen / "demo_labels.nii.gz"
    encode = ["encode", "--cts", str(ct), "--labelmaps", str(labels), "--out", str(tmp_path / "emb"),
              "--config", "maisi_tiny", "--weights", str(frozen), "--device", "cpu"]
    assert main(encode) == 0
    target = embedding_path(tmp_path / "emb", ct)
    before = target.stat().st_mtime_ns
    assert main(encode) == 0
    assert "encoded 0 CT(s), 1 already done" in capsys.readouterr().out
    assert target.stat().st_mtime_ns == before

    steps = ["--steps", "2", "--batch-size", "1"]
    from_cts = [a for a in _controlnet_options(frozen, tmp_path / "cts", *steps) if a not in ("--patch", "32")]
    from_embeddings = [a for a in _controlnet_options(frozen, tmp_path / "emb_run", *steps)[3:] if a not in ("--patch", "32")]
    _run(controlnet, from_cts)
    _run(controlnet, ["--embeddings", str(target), *from_embeddings])
    # the 64-voxel crop is a multiple of the tiny configuration's 32: the preparation changes nothing
    assert (tmp_path / "emb_run" / "controlnet.pt").read_bytes() == (tmp_path / "cts" / "controlnet.pt").read_bytes()


def test_an_embedding_from_another_autoencoder_is_refused(frozen, tmp_path, capsys):
    ct = frozen / "demo_ct.nii.gz"
    other = tmp_path / "other.pt"
    from nodsynth.engines.maisi import load_autoencoder
    from nodsynth.engines.maisi.checkpoints import save_autoencoder

    autoencoder = load_autoencoder(frozen / "autoencoder.pt", "maisi_tiny", "cpu")
    with torch.no_grad():
        next(autoencoder.parameters()).add_(1.0)
    save_autoencoder(autoencoder, other)
    common = ["--cts", str(ct), "--out", str(tmp_path / "emb"), "--config", "maisi_tiny", "--device", "cpu"]
    assert main(["encode", *common, "--autoencoder", str(other)]) == 0
    assert main(["encode", *common, "--weights", str(frozen)]) == 2
    assert "was made with another autoencoder (SHA-256)" in capsys.readouterr().err


def test_the_encode_batch_op_writes_the_embeddings_nodsynth_encode_writes(frozen, tmp_path):
    """A 2-CT manifest through the batch runner: the same bytes as ``nodsynth encode``; a rerun skips both;
    an embedding already at a row's output (from ``nodsynth encode``) is kept, not recomputed."""
    import json

    from nodsynth.batch import run_manifest
    from nodsynth.io.volume_files import read_volume

    ct, labels = frozen / "demo_ct.nii.gz", frozen / "demo_labels.nii.gz"
    other = read_volume(ct)
    other.array = other.array[::-1].copy()  # a second CT on the same grid
    write_volume(other, tmp_path / "other_ct.nii.gz")
    cts = [ct, tmp_path / "other_ct.nii.gz"]
    assert main(["encode", "--cts", *map(str, cts), "--labelmaps", str(labels), str(labels), "--out",
                 str(tmp_path / "cli"), "--config", "maisi_tiny", "--weights", str(frozen), "--device", "cpu"]) == 0

    def manifest(folder, outputs):
        rows = [{"id": f"enc-{i}", "op": "encode", "inputs": {"ct": str(c), "labelmap": str(labels)},
                 "params": {"config": "maisi_tiny"}, "seed": 0, "outputs": {"embedding": out}}
                for i, (c, out) in enumerate(zip(cts, outputs))]
        folder.mkdir()
        (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return folder / "manifest.jsonl"

    path = manifest(tmp_path / "batch", ["out/a_embedding.pt", "out/b_embedding.pt"])
    summary = run_manifest(path, executor="inline", weights_dir=str(frozen), device="cpu")
    assert summary.ok and summary.ran == ["enc-0", "enc-1"], summary.outcomes
    for c, name in zip(cts, ("a", "b")):
        made = (tmp_path / "batch" / "out" / f"{name}_embedding.pt").read_bytes()
        assert made == embedding_path(tmp_path / "cli", c).read_bytes()
    assert run_manifest(path, executor="inline", weights_dir=str(frozen), device="cpu").ran == []

    kept = manifest(tmp_path / "kept", [str(embedding_path(tmp_path / "cli", c)) for c in cts])
    summary = run_manifest(kept, executor="inline", weights_dir=str(frozen), device="cpu", allow_outside=True)
    assert summary.ran == ["enc-0", "enc-1"]
    records = sorted(summary.layout.records.glob("enc-*.json"))
    assert [json.loads(r.read_text())["facts"]["reused"] for r in records] == [True, True]
