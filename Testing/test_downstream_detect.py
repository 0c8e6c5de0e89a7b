"""``nodsynth downstream detect``: a MONAI ``lung_nodule_ct_detection`` bundle folder in the real format (config
with the published parameters, ``models/model.pt`` of a randomly initialised RetinaNet of the bundle's architecture)
on the demo patient. Coordinates are checked end to end against SimpleITK on the detector's own resampled image and
on the CT file; annotations from label maps against the phantom's true nodules and ``evaluate froc``; a full-width
state dict built by MONAI's own ``resnet_fpn_feature_extractor`` loads strictly and gives the same outputs."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
sitk = pytest.importorskip("SimpleITK")

from nodsynth.cli.main import main  # noqa: E402
from nodsynth.errors import InputError, WeightsError  # noqa: E402

SMALL = 0.0625
PATCH = "64,64,32"
# configs/inference.json of Project-MONAI model-zoo lung_nodule_ct_detection 0.6.8: the entries detection reads
BUNDLE_CONFIG = {
    "whether_raw_luna16": True,
    "spatial_dims": 3, "num_classes": 1, "force_sliding_window": False,
    "size_divisible": [16, 16, 8], "infer_patch_size": [512, 512, 192],
    "anchor_generator": {"_target_": "monai.apps.detection.utils.anchor_utils.AnchorGeneratorWithAnchorShape",
                         "feature_map_scales": [1, 2, 4],
                         "base_anchor_shapes": [[6, 8, 4], [8, 6, 5], [10, 10, 6]]},
    "backbone": "$monai.networks.nets.resnet.resnet50(spatial_dims=3,n_input_channels=1,conv1_t_stride=[2,2,1],"
                "conv1_t_size=[7,7,7])",
    "feature_extractor": "$monai.apps.detection.networks.retinanet_network.resnet_fpn_feature_extractor(@backbone,3,"
                         "False,[1,2],None)",
    "network_def": {"_target_": "RetinaNet", "spatial_dims": "@spatial_dims", "num_classes": "@num_classes",
                    "num_anchors": 3, "feature_extractor": "@feature_extractor", "size_divisible": "@size_divisible",
                    "use_list_output": False},
    "detector_ops": [
        "$@detector.set_target_keys(box_key='box', label_key='label')",
        "$@detector.set_box_selector_parameters(score_thresh=0.02,topk_candidates_per_level=1000,nms_thresh=0.22,"
        "detections_per_img=300)",
        "$@detector.set_sliding_window_inferer(roi_size=@infer_patch_size,overlap=0.25,sw_batch_size=1,"
        "mode='constant',device='cpu')"],
    "preprocessing": {"_target_": "Compose", "transforms": [
        {"_target_": "LoadImaged", "keys": "image", "reader": "itkreader", "affine_lps_to_ras": True},
        {"_target_": "EnsureChannelFirstd", "keys": "image"},
        {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
        {"_target_": "Spacingd", "keys": "image", "pixdim": [0.703125, 0.703125, 1.25]},
        {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -1024.0, "a_max": 300.0, "b_min": 0.0,
         "b_max": 1.0, "clip": True},
        {"_target_": "EnsureTyped", "keys": "image"}]},
}

# MONAI's own bundle network, built where its torchvision imports are answered by stand-ins of torchvision's
# documented behaviour: IntermediateLayerGetter keeps the model's children in order up to the last returned
# layer and returns those layers' outputs; an untrained backbone trains all 5 layers.
MONAI_REFERENCE = r'''
import sys, types, collections, torch
from torch import nn

class IntermediateLayerGetter(nn.ModuleDict):
    def __init__(self, model, return_layers):
        wanted, layers = dict(return_layers), collections.OrderedDict()
        for name, module in model.named_children():
            layers[name] = module
            wanted.pop(name, None)
            if not wanted:
                break
        super().__init__(layers)
        self.return_layers = dict(return_layers)

    def forward(self, x):
        out = collections.OrderedDict()
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                out[self.return_layers[name]] = x
        return out

for name in ("torchvision", "torchvision.models", "torchvision.models._utils", "torchvision.models.detection",
             "torchvision.models.detection.backbone_utils", "torchvision.models.detection._utils"):
    sys.modules[name] = types.ModuleType(name)
sys.modules["torchvision.models"]._utils = sys.modules["torchvision.models._utils"]
sys.modules["torchvision.models._utils"].IntermediateLayerGetter = IntermediateLayerGetter
sys.modules["torchvision.models.detection.backbone_utils"]._validate_trainable_layers = lambda *a, **k: 5

from monai.apps.detection.networks.retinanet_network import RetinaNet, resnet_fpn_feature_extractor
from monai.networks.nets import resnet

torch.manual_seed(7)
backbone = resnet.resnet50(spatial_dims=3, n_input_channels=1, conv1_t_stride=[2, 2, 1], conv1_t_size=[7, 7, 7])
network = RetinaNet(spatial_dims=3, num_classes=1, num_anchors=3,
                    feature_extractor=resnet_fpn_feature_extractor(backbone, 3, False, [1, 2], None),
                    size_divisible=[16, 16, 8], use_list_output=False).eval()
image = torch.rand(1, 1, 32, 32, 16)
with torch.no_grad():
    out = network(image)
torch.save(network.state_dict(), sys.argv[1])
torch.save({"image": image, "classification": out["classification"], "box_regression": out["box_regression"]},
           sys.argv[2])
'''


def write_bundle(folder: Path, state_dict) -> Path:
    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    (folder / "configs" / "inference.json").write_text(json.dumps(BUNDLE_CONFIG, indent=1))
    torch.save(state_dict, folder / "models" / "model.pt")
    return folder


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def small_random_state(settings):
    """A randomly initialised bundle RetinaNet at width SMALL; its class prior raised (bias 0: p = 0.5 before the
    random features) so that it reports boxes above the bundle's score threshold."""
    from nodsynth.downstream.detect_network import retinanet

    torch.manual_seed(0)
    network = retinanet(settings, SMALL)
    with torch.no_grad():
        network.classification_head.cls_logits.bias.zero_()
    return network.state_dict()


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """Demo patient; a CT and label-map crop around the solid nodule (real) and a shifted-intensity copy (twin);
    the list; the bundle; and one ``downstream detect`` run with annotations."""
    from nodsynth.downstream.detect_bundle import BundleSettings, read_bundle
    from nodsynth.io.volume_files import read_volume, write_volume

    folder = tmp_path_factory.mktemp("detect")
    assert main(["demo", "--out", str(folder / "demo"), "--steps", "phantom"]) == 0
    phantom = folder / "demo" / "phantom"
    truth = {r["name"]: r for r in read_csv(phantom / "points.csv")}
    ct, labelmap = read_volume(phantom / "ct.nii.gz"), read_volume(phantom / "labelmap.nii.gz")
    centre = ct.world_to_kji([float(truth["solid"][k]) for k in ("x_lps", "y_lps", "z_lps")])
    start, stop = np.subtract(centre, (12, 24, 24)), np.add(centre, (12, 24, 24))
    write_volume(ct.crop(start, stop), folder / "real_ct.nii.gz")
    write_volume(labelmap.crop(start, stop), folder / "real_labelmap.nii.gz")
    twin = ct.crop(start, stop)
    write_volume(twin.with_array(np.asarray(twin.array) + 40), folder / "twin_ct.nii.gz")
    (folder / "cts.csv").write_text("seriesuid,ct,labelmap\nreal,real_ct.nii.gz,real_labelmap.nii.gz\n"
                                    "twin,twin_ct.nii.gz,real_labelmap.nii.gz\n")
    write_bundle(folder / "bundle", {})
    settings: BundleSettings = read_bundle(folder / "bundle")
    torch.save(small_random_state(settings), folder / "bundle" / "models" / "model.pt")
    assert main(["downstream", "detect", "--bundle", str(folder / "bundle"), "--cts", str(folder / "cts.csv"),
                 "--out", str(folder / "detections.csv"), "--annotations-from-labelmaps",
                 str(folder / "annotations.csv"), "--widen-factor", str(SMALL), "--patch-voxels", PATCH]) == 0
    return folder, settings, truth


def test_the_bundle_config_is_read_as_the_bundle_states_it(case):
    _, settings, _ = case
    assert settings.spacing_mm == [0.703125, 0.703125, 1.25] and settings.axcodes == "RAS"
    assert settings.intensity == {"a_min": -1024.0, "a_max": 300.0, "b_min": 0.0, "b_max": 1.0, "clip": True}
    assert (settings.conv1_t_stride, settings.conv1_t_size, settings.returned_layers) == ([2, 2, 1], [7, 7, 7], [1, 2])
    assert settings.base_anchor_shapes == [[6, 8, 4], [8, 6, 5], [10, 10, 6]] and settings.feature_map_scales == [1, 2, 4]
    assert (settings.score_thresh, settings.nms_thresh, settings.detections_per_img) == (0.02, 0.22, 300)
    assert settings.window_voxels == [512, 512, 192] and settings.size_divisible == [16, 16, 8]


def test_detections_are_the_detector_boxes_mapped_to_world_lps_mm(case):
    """The CSV rows are the detector's boxes (in its resampled RAS image) mapped by SimpleITK on an image of that
    grid; that grid is where the CT's content is: the detector image's value at a box centre voxel equals the CT
    file's (read by SimpleITK) at the mapped LPS point, scaled by the bundle's window."""
    from nodsynth.downstream.detect import build_detector, detect_scan
    from nodsynth.downstream.detect_image import detector_image
    from nodsynth.io.volume_files import read_volume

    folder, settings, _ = case
    rows = [r for r in read_csv(folder / "detections.csv") if r["seriesuid"] == "real"]
    ct = read_volume(folder / "real_ct.nii.gz")
    window = [int(v) for v in PATCH.split(",")]
    found = detect_scan(build_detector(settings, SMALL, window, "cpu"), ct, settings, window, "cpu")
    assert len(rows) == len(found.scores) > 10
    np.testing.assert_allclose([float(r["probability"]) for r in rows], found.scores, atol=1e-5)

    image = detector_image(ct, settings)
    affine = np.asarray(image.affine)
    grid = sitk.Image(*[int(v) for v in image.shape[1:]], sitk.sitkFloat32)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    grid.SetSpacing(spacing.tolist())
    grid.SetDirection((np.diag([-1.0, -1.0, 1.0]) @ affine[:3, :3] / spacing).ravel().tolist())
    grid.SetOrigin((affine[:3, 3] * [-1, -1, 1]).tolist())
    expected = np.array([grid.TransformContinuousIndexToPhysicalPoint(((b[:3] + b[3:]) / 2).tolist())
                         for b in found.boxes])
    written = np.array([[float(r[c]) for c in ("coordX", "coordY", "coordZ")] for r in rows])
    np.testing.assert_allclose(written, expected, atol=1e-3)

    source = sitk.ReadImage(str(folder / "real_ct.nii.gz"), sitk.sitkFloat64)
    array = image.as_tensor().numpy()[0]
    inside = [(b, np.rint((b[:3] + b[3:]) / 2).astype(int)) for b in found.boxes]
    inside = [(b, v) for b, v in inside if np.all(v >= 2) and np.all(v < np.array(array.shape) - 2)][:20]
    assert len(inside) >= 5
    for _, voxel in inside:
        point = grid.TransformIndexToPhysicalPoint(voxel.tolist())
        hu = source.EvaluateAtPhysicalPoint(point, sitk.sitkLinear)
        assert array[tuple(voxel)] == pytest.approx(np.clip((hu + 1024.0) / 1324.0, 0, 1), abs=2e-3)


def test_annotations_are_the_label_23_nodules_and_score_cpm_one_at_their_centres(case, tmp_path):
    folder, _, truth = case
    annotations = read_csv(folder / "annotations.csv")
    assert [r["seriesuid"] for r in annotations] == ["real", "twin"]
    solid = truth["solid"]
    for row in annotations:
        centre = [float(row[c]) for c in ("coordX", "coordY", "coordZ")]
        assert np.linalg.norm(np.subtract(centre, [float(solid[k]) for k in ("x_lps", "y_lps", "z_lps")])) < 1.0
        assert float(row["diameter_mm"]) == pytest.approx(float(solid["diameter_mm"]), rel=0.05)
    at_centres = tmp_path / "at_centres.csv"
    at_centres.write_text("seriesuid,coordX,coordY,coordZ,probability\n" + "".join(
        f"{r['seriesuid']},{r['coordX']},{r['coordY']},{r['coordZ']},0.9\n" for r in annotations))
    assert main(["evaluate", "froc", "--annotations", str(folder / "annotations.csv"), "--detections",
                 str(at_centres), str(folder / "detections.csv"), "--json", str(tmp_path / "froc.json"),
                 "--bootstrap", "0"]) == 0
    systems = json.loads((tmp_path / "froc.json").read_text())["systems"]
    assert systems["at_centres"]["cpm"] == 1.0
    assert 0.0 <= systems["detections"]["cpm"] <= 1.0


def test_a_full_width_bundle_state_dict_from_monai_loads_strictly_and_computes_the_same(tmp_path):
    from nodsynth.downstream.detect_bundle import read_bundle
    from nodsynth.downstream.detect_network import load_weights, retinanet

    weights, reference = tmp_path / "monai.pt", tmp_path / "reference.pt"
    script = tmp_path / "monai_reference.py"
    script.write_text(MONAI_REFERENCE)
    subprocess.run([sys.executable, str(script), str(weights), str(reference)], check=True, timeout=600)
    state = torch.load(weights, weights_only=True)
    assert "feature_extractor.body.conv1.weight" in state and "feature_extractor.fpn.layer_blocks.1.weight" in state
    assert not any(k.startswith("feature_extractor.body.layer3") for k in state)
    settings = read_bundle(write_bundle(tmp_path / "bundle", state))
    network = retinanet(settings, 1.0)
    assert {k: tuple(v.shape) for k, v in network.state_dict().items()} == {k: tuple(v.shape) for k, v in state.items()}
    load_weights(network, settings)
    expected = torch.load(reference, weights_only=True)
    with torch.no_grad():
        out = network.eval()(expected["image"])
    for key in ("classification", "box_regression"):
        assert len(out[key]) == len(expected[key]) == 3
        for mine, theirs in zip(out[key], expected[key]):
            torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)
    with pytest.raises(WeightsError, match="--widen-factor"):
        load_weights(retinanet(settings, 0.5), settings)


def test_bad_bundles_and_patches_are_refused_with_one_line_and_nothing_written(case, tmp_path, capsys):
    folder, _, _ = case
    base = ["downstream", "detect", "--cts", str(folder / "cts.csv"), "--out", str(tmp_path / "d.csv")]
    (tmp_path / "no_weights" / "configs").mkdir(parents=True)
    (tmp_path / "no_weights" / "configs" / "inference.json").write_text(json.dumps(BUNDLE_CONFIG))
    (tmp_path / "no_config" / "models").mkdir(parents=True)
    (tmp_path / "no_config" / "models" / "model.pt").write_bytes(b"")
    cases = {"no_weights": "models/model.pt is missing", "no_config": "configs/inference.json is missing"}
    for name, message in cases.items():
        assert main(base + ["--bundle", str(tmp_path / name)]) != 0
        assert message in capsys.readouterr().err
    assert main(base + ["--bundle", str(folder / "bundle"), "--patch-voxels", "60,64,32"]) != 0
    assert "multiples of the bundle's size_divisible 16x16x8" in capsys.readouterr().err
    config = dict(BUNDLE_CONFIG, detector_ops=BUNDLE_CONFIG["detector_ops"][:1])
    (folder / "bundle" / "configs" / "inference.json").write_text(json.dumps(config))
    try:
        assert main(base + ["--bundle", str(folder / "bundle")]) != 0
        assert "do not call set_box_selector_parameters" in capsys.readouterr().err
    finally:
        (folder / "bundle" / "configs" / "inference.json").write_text(json.dumps(BUNDLE_CONFIG, indent=1))
    assert not (tmp_path / "d.csv").exists()
    with pytest.raises(InputError):
        from nodsynth.downstream.detect import read_scan_table

        (tmp_path / "list.csv").write_text("seriesuid,ct\nreal,missing.nii.gz\n")
        read_scan_table(tmp_path / "list.csv", False)
