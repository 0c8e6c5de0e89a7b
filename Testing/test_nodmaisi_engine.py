"""NodMAISIEngine on CPU with the tiny configuration: the published sampling loop, seeds, the demo
patient's twin (grid, air outside the body, progress, cancel), ROI-local edits, grid-limit errors."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from nodsynth.engines import EditRequest, TwinRequest, get_engine  # noqa: E402
from nodsynth.engines.maisi import (build_networks, randomize_zero_parameters, save_autoencoder,  # noqa: E402
                                    save_controlnet, save_diffusion_unet)
from nodsynth.errors import Cancelled, InputError  # noqa: E402
from nodsynth.phantom import make_demo_patient  # noqa: E402
from nodsynth.progress import CancelToken  # noqa: E402
from nodsynth.volume import Volume  # noqa: E402

SCALE_FACTOR = 0.8


def tiny_weights_folder(folder: Path, with_controlnet: bool = True, controlnet_name: str = "controlnet_nodmaisi.pt") -> Path:
    """Random tiny networks (zero-initialised layers randomised) saved under the NoMAISI file names."""
    torch.manual_seed(1)
    nets = build_networks("maisi_tiny", "cpu")
    for seed, module in enumerate((nets.autoencoder, nets.diffusion_unet, nets.controlnet)):
        randomize_zero_parameters(module, seed)
    save_autoencoder(nets.autoencoder, folder / "autoencoder.pt")
    save_diffusion_unet(nets.diffusion_unet, SCALE_FACTOR, folder / "diffusion_unet.pt")
    if with_controlnet:
        save_controlnet(nets.controlnet, folder / controlnet_name)
    return folder


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    folder = tiny_weights_folder(tmp_path_factory.mktemp("tiny_weights"))
    return get_engine("nodmaisi", weights_dir=str(folder), device="cpu", config="maisi_tiny")


@pytest.fixture(scope="module")
def patient():
    return make_demo_patient()


def reference_twin(engine, labels_kji: np.ndarray, spacing_ijk, noise: torch.Tensor, steps: int):
    """The published MAISI-v2 ControlNet inference written out plainly (identity-direction LPS input)."""
    from monai.networks.schedulers import RFlowScheduler

    nets = engine.networks
    labels_xyz = np.flip(labels_kji.transpose(2, 1, 0), axis=(0, 1))  # LPS [k,j,i] -> RAS [x,y,z]
    ids = torch.as_tensor(np.ascontiguousarray(labels_xyz)).long()[None, None]
    bits = ids.unsqueeze(-1).bitwise_and(2 ** torch.arange(8)).ne(0).float().squeeze(1).permute(0, 4, 1, 2, 3)
    spacing = torch.FloatTensor([list(spacing_ijk)]) * 1e2
    modality = torch.ones((1,), dtype=torch.long)
    scheduler = RFlowScheduler(num_train_timesteps=1000, use_discrete_timesteps=False,
                               use_timestep_transform=True, sample_method="uniform")
    latents = noise.clone()
    scheduler.set_timesteps(num_inference_steps=steps, input_img_size_numel=torch.prod(torch.tensor(latents.shape[2:])))
    all_t = scheduler.timesteps
    all_next = torch.cat((all_t[1:], torch.tensor([0], dtype=all_t.dtype)))
    with torch.no_grad():
        for t, next_t in zip(all_t, all_next):
            down, mid = nets.controlnet(x=latents, timesteps=torch.Tensor((t,)), controlnet_cond=bits,
                                        class_labels=modality)
            out = nets.diffusion_unet(x=latents, timesteps=torch.Tensor((t,)), spacing_tensor=spacing,
                                      class_labels=modality, down_block_additional_residuals=down,
                                      mid_block_additional_residual=mid)
            latents, _ = scheduler.step(out, t, latents, next_t)
        image = nets.autoencoder.decode_stage_2_outputs(latents / nets.scale_factor)
    image = torch.clip(image, 0.0, 1.0)[0, 0].numpy() * 2000.0 - 1000.0
    image[labels_xyz == 0] = -1000.0
    return latents, np.flip(image, axis=(0, 1)).transpose(2, 1, 0)


def test_demo_twin_runs_on_the_input_grid_with_progress(engine, patient):
    labels = patient.labelmap
    noise = torch.randn((1, 4, 64, 64, 32), generator=torch.Generator().manual_seed(7))
    reports = []
    request = TwinRequest(labels, steps=3, initial_noise=noise)
    start = time.perf_counter()
    result = engine.twin(request, progress=lambda f, m: reports.append((f, m)))
    seconds = time.perf_counter() - start
    assert seconds < 60, f"tiny twin of the demo patient took {seconds:.1f} s"
    ct = result.ct
    assert ct.shape_kji == labels.shape_kji
    assert np.allclose(ct.spacing, labels.spacing) and np.allclose(ct.origin, labels.origin)
    assert np.all(ct.array[labels.array == 0] == -1000.0)
    body = ct.array[labels.array != 0]
    assert body.min() >= -1000.0 and body.max() <= 1000.0 and body.std() > 1.0
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("step 3/3" in m for _, m in reports)


def test_latent_and_image_equal_a_plain_loop_of_the_published_steps(engine, patient):
    labels = patient.labelmap
    noise = torch.randn((1, 4, 64, 64, 32), generator=torch.Generator().manual_seed(8))
    plan = engine.prepare_twin(TwinRequest(labels, steps=2, initial_noise=noise))
    latent = engine.sample_twin(plan)
    image = engine.decode_twin(plan, latent).array
    ref_latent, ref_image = reference_twin(engine, labels.array, labels.spacing, noise, steps=2)
    assert float((latent - ref_latent).abs().max()) <= 1e-5
    assert float(np.abs(image - ref_image).max()) / 2000.0 <= 1e-5  # on MAISI's 0..1 output scale
    assert float((latent - noise).abs().max()) > 0.1  # the networks did move the latent


def test_seed_repeats_and_another_seed_differs(engine, patient):
    def latent(seed):
        return engine.sample_twin(engine.prepare_twin(TwinRequest(patient.labelmap, steps=1, seed=seed)))

    first, again, other = latent(3), latent(3), latent(4)
    assert torch.equal(first, again)
    assert float((first - other).abs().mean()) > 0.1


def test_cancel_stops_the_twin(engine, patient):
    token = CancelToken()

    def cancel_on_first_step(fraction, message):
        if message.startswith("step"):
            token.cancel()

    with pytest.raises(Cancelled):
        engine.twin(TwinRequest(patient.labelmap, steps=5), progress=cancel_on_first_step, cancel=token)


def _grown_nodule(labelmap: Volume) -> np.ndarray:
    from scipy import ndimage

    components, count = ndimage.label(labelmap.array == 23)
    assert count >= 1
    one = components == 1
    grown = ndimage.binary_dilation(one, iterations=2) & (labelmap.array != 0)
    edited = labelmap.array.copy()
    edited[grown] = 23
    return edited


def test_roi_edit_leaves_everything_outside_the_box_bit_identical(engine, patient):
    edited = patient.labelmap.with_array(_grown_nodule(patient.labelmap))
    request = EditRequest(patient.ct, patient.labelmap, edited, steps=2, margin_mm=3.0)
    result = engine.edit(request)
    out, original = result.ct.array, patient.ct.array
    assert out.dtype == original.dtype and out.shape == original.shape
    start, stop = result.info["box_start_kji"], result.info["box_stop_kji"]
    assert all((b - a) % 32 == 0 for a, b in zip(start, stop))
    inside = np.zeros(out.shape, bool)
    inside[tuple(slice(a, b) for a, b in zip(start, stop))] = True
    assert np.array_equal(out[~inside], original[~inside])
    changed = patient.labelmap.array != edited.array
    assert np.any(out[changed] != original[changed])
    from scipy import ndimage
    far = ndimage.distance_transform_edt(~changed, sampling=patient.ct.spacing[::-1]) > 3.0
    assert np.array_equal(out[far], original[far])
    assert result.info["encode_cached"] is False
    again = engine.edit(request)  # same scan and box: the encoded original comes from the cache
    assert again.info["encode_cached"] is True and np.array_equal(again.ct.array, out)


def test_invalid_grids_are_named(engine):
    small = Volume(np.full((40, 100, 100), 200, np.uint8), spacing=(0.7, 0.7, 1.0))
    with pytest.raises(InputError) as info:
        engine.prepare_twin(TwinRequest(small))
    text = str(info.value)
    assert "x/y size must be one of 256, 384, 512" in text and "z size must be one of" in text
    assert "field of view" in text and "resample_to_valid" in text
    coarse = Volume(np.full((128, 256, 256), 200, np.uint8), spacing=(3.5, 3.5, 6.0))
    with pytest.raises(InputError, match=r"x/y spacing must be 0.5..3.0 mm.*z spacing must be 0.5..5.0 mm"):
        engine.prepare_twin(TwinRequest(coarse))
    with pytest.raises(InputError, match="0..255"):
        engine.prepare_twin(TwinRequest(small.with_array(np.full((40, 100, 100), 300, np.int16))))


def test_resample_to_valid_returns_the_input_grid(engine, patient):
    crop = patient.labelmap.crop((0, 16, 16), (100, 240, 240))  # 224 x 224 x 100: outside MAISI's sizes
    plan = engine.prepare_twin(TwinRequest(crop, steps=1, resample_to_valid=True))
    assert plan.resampled and plan.work_labels.size_ijk == (256, 256, 128)
    ct = engine.decode_twin(plan, plan.noise * 0.0)
    assert ct.shape_kji == crop.shape_kji and np.allclose(ct.origin, crop.origin)
    assert np.all(ct.array[crop.array == 0] == -1000.0)


def test_real_dlcs_label_map_is_prepared_on_its_own_grid(engine):
    from conftest import shared_path
    from nodsynth.io.volume_files import read_volume

    labelmap = read_volume(shared_path("dlcs_labelmaps", "DLCS_0001_seg_sh.nii.gz"))
    plan = engine.prepare_twin(TwinRequest(labelmap, seed=5))
    assert not plan.resampled and plan.labels_xyz.shape == (512, 512, 256)
    assert tuple(plan.noise.shape) == (1, 4, 128, 128, 64)
    assert int((plan.labels_xyz == 23).sum()) == int((labelmap.array == 23).sum()) == 662 + 1346
    assert plan.spacing_xyz_mm == pytest.approx((0.703125, 0.703125, 1.25), abs=1e-3)


def test_real_lidc_slab_needs_resampling_and_gets_a_valid_grid(engine):
    from conftest import shared_path
    from nodsynth.io.volume_files import read_volume

    slab = read_volume(shared_path("lidc_slabs", "LIDC-IDRI-0001_slab.nrrd"))
    labels = slab.with_array(np.where(slab.array > -500, 200, 0).astype(np.uint8))
    with pytest.raises(InputError, match=r"z size must be one of 128, 256.*got 16"):
        engine.prepare_twin(TwinRequest(labels))
    plan = engine.prepare_twin(TwinRequest(labels, resample_to_valid=True))
    assert plan.resampled and plan.work_labels.size_ijk[2] == 128
    assert plan.work_labels.size_ijk[:2] == (512, 512)


def test_twin_verb_without_weights_names_the_files_and_writes_nothing(tmp_path, capsys, monkeypatch, patient):
    from nodsynth.cli.main import main
    from nodsynth.io.volume_files import write_volume

    monkeypatch.delenv("NODSYNTH_WEIGHTS", raising=False)
    labels = write_volume(patient.labelmap, tmp_path / "labels.nii.gz")
    out = tmp_path / "twin.nii.gz"
    empty = tmp_path / "weights"
    empty.mkdir()
    assert main(["twin", "--labelmap", str(labels), "--out", str(out), "--weights", str(empty), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "autoencoder (autoencoder.pt or autoencoder_v1.pt)" in err and f"{empty} (--weights)" in err
    assert not out.exists()


# ---------------------------------------------------------------- issue 15: faithful to the trained weights
def _unet_timesteps(engine, run) -> list[float]:
    """The timesteps the diffusion U-Net is called with while ``run()`` executes."""
    seen: list[float] = []

    def record(module, args, kwargs):
        seen.append(float(kwargs["timesteps"].reshape(-1)[0]))

    handle = engine.networks.diffusion_unet.register_forward_pre_hook(record, with_kwargs=True)
    try:
        run()
    finally:
        handle.remove()
    return seen


def test_roi_edit_samples_the_timesteps_of_a_whole_ct_twin(engine, patient):
    from monai.networks.schedulers import RFlowScheduler

    edited = patient.labelmap.with_array(_grown_nodule(patient.labelmap))
    result = []
    edit_t = _unet_timesteps(engine, lambda: result.append(engine.edit(
        EditRequest(patient.ct, patient.labelmap, edited, steps=4, margin_mm=3.0))))
    twin_t = _unet_timesteps(engine, lambda: engine.sample_twin(
        engine.prepare_twin(TwinRequest(patient.labelmap, steps=4))))
    box = [b - a for a, b in zip(result[0].info["box_start_kji"], result[0].info["box_stop_kji"])]
    assert int(np.prod(box)) <= int(np.prod(patient.ct.shape_kji)) // 4  # the box is much smaller than the CT
    assert len(edit_t) == 4 and edit_t == twin_t
    # MONAI's schedule for the whole CT's latent (256 x 256 x 128 voxels -> 64 x 64 x 32), written out here
    scheduler = RFlowScheduler(num_train_timesteps=1000, use_discrete_timesteps=False,
                               use_timestep_transform=True, sample_method="uniform")
    scheduler.set_timesteps(4, input_img_size_numel=64 * 64 * 32)
    assert edit_t == pytest.approx([float(t) for t in scheduler.timesteps], abs=1e-3)
    assert result[0].info["timesteps"] == pytest.approx(edit_t, abs=1e-3)
    # and the edit still leaves everything outside its box bit-identical
    out, original = result[0].ct.array, patient.ct.array
    inside = np.zeros(out.shape, bool)
    inside[tuple(slice(a, b) for a, b in zip(result[0].info["box_start_kji"], result[0].info["box_stop_kji"]))] = True
    assert np.array_equal(out[~inside], original[~inside])


def test_decode_windows_are_the_published_ones_on_cuda_and_smaller_where_cpu_memory_demands():
    from nodsynth.engines.maisi import load_config
    from nodsynth.engines.maisi.codec import decode_window, window_count

    published = load_config("maisi_v2")
    assert decode_window(published, torch.device("cuda")) == [80, 80, 64]
    # a 512 x 512 x 256 CT has a 128 x 128 x 64 latent: 4 published tiles, 75 of the old 32^3 ones
    assert window_count((128, 128, 64), [80, 80, 64], 0.25) == 4
    assert window_count((128, 128, 64), [32, 32, 32], 0.25) == 75
    gib = 2 ** 30
    assert decode_window(published, torch.device("cpu"), available_bytes=16 * gib) == [32, 32, 32]
    assert decode_window(published, torch.device("cpu"), available_bytes=512 * gib) == [80, 80, 64]


def test_twin_and_edit_report_tiles_and_seconds(engine, patient):
    from nodsynth.engines.maisi.codec import window_count

    plan = engine.prepare_twin(TwinRequest(patient.labelmap, steps=1))
    result = engine.twin(TwinRequest(patient.labelmap, steps=1))
    window = result.info["decode_window_latent"]
    assert window == [64, 64, 64]  # the tiny configuration's window (one tile for the demo patient)
    assert result.info["decode_tiles"] == window_count(tuple(plan.noise.shape[2:]), window, 0.25) == 1
    assert result.info["decode_seconds"] > 0 and result.info["sampling_seconds"] > 0
    edited = patient.labelmap.with_array(_grown_nodule(patient.labelmap))
    info = engine.edit(EditRequest(patient.ct, patient.labelmap, edited, steps=1)).info
    assert info["encode_tiles"] == (0 if info["encode_cached"] else 1) and info["decode_tiles"] == 1
    assert info["encode_seconds"] >= 0 and info["decode_seconds"] > 0


def test_twin_with_only_the_baseline_controlnet_needs_the_flag_and_records_sha256(tmp_path, capsys, monkeypatch, patient):
    import hashlib
    import json

    import SimpleITK as sitk
    from nodsynth.cli.main import main
    from nodsynth.io.volume_files import write_volume

    monkeypatch.delenv("NODSYNTH_WEIGHTS", raising=False)
    monkeypatch.setenv("NODSYNTH_CONFIG", str(tmp_path / "absent-config.json"))
    weights = tiny_weights_folder(tmp_path / "weights", controlnet_name="controlnet_3d_rflow-ct.pt")
    labels = write_volume(patient.labelmap, tmp_path / "labels.nii.gz")
    out, summary = tmp_path / "twin.nii.gz", tmp_path / "twin.json"
    args = ["twin", "--labelmap", str(labels), "--out", str(out), "--weights", str(weights), "--device", "cpu",
            "--config", "maisi_tiny", "--steps", "1", "--json", str(summary)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(weights / "controlnet_3d_rflow-ct.pt") in err and "--allow-baseline-controlnet" in err
    assert not out.exists()
    assert main(args + ["--allow-baseline-controlnet"]) == 0
    digests = {role: hashlib.sha256((weights / name).read_bytes()).hexdigest() for role, name in
               (("autoencoder", "autoencoder.pt"), ("diffusion_unet", "diffusion_unet.pt"),
                ("controlnet", "controlnet_3d_rflow-ct.pt"))}
    info = json.loads(summary.read_text())
    assert {role: c["sha256"] for role, c in info["checkpoints"].items()} == digests
    assert info["checkpoints"]["controlnet"]["fallback"] is True
    notes = sitk.ReadImage(str(out)).GetMetaData("ITK_FileNotes")  # the NIfTI header's descrip field
    assert digests["controlnet"] in notes
