"""MAISI-v2 networks from Resources/configs: full-size checkpoints in the three release formats load
strictly through the engine; mismatching checkpoints are refused by name; network axes match SimpleITK."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from nodsynth.engines import get_engine  # noqa: E402
from nodsynth.engines.maisi import (build_networks, load_config, load_diffusion_unet, save_autoencoder,  # noqa: E402
                                    save_controlnet, save_diffusion_unet)
from nodsynth.engines.maisi.orientation import NetworkAxes  # noqa: E402
from nodsynth.errors import WeightsError  # noqa: E402
from nodsynth.volume import Volume  # noqa: E402


def test_published_config_matches_the_monai_signatures():
    import inspect

    from monai.apps.generation.maisi.networks.autoencoderkl_maisi import AutoencoderKlMaisi
    from monai.apps.generation.maisi.networks.controlnet_maisi import ControlNetMaisi
    from monai.apps.generation.maisi.networks.diffusion_model_unet_maisi import DiffusionModelUNetMaisi

    cfg = load_config("maisi_v2")
    for section, cls in (("autoencoder", AutoencoderKlMaisi), ("diffusion_unet", DiffusionModelUNetMaisi),
                         ("controlnet", ControlNetMaisi)):
        unknown = set(cfg[section]) - set(inspect.signature(cls.__init__).parameters)
        assert not unknown, f"{section}: {unknown}"
    assert cfg["autoencoder"]["num_channels"] == [64, 128, 256] and cfg["autoencoder"]["latent_channels"] == 4
    assert cfg["diffusion_unet"]["num_channels"] == [64, 128, 256, 512]
    assert cfg["diffusion_unet"]["attention_levels"] == [False, False, True, True]
    assert cfg["diffusion_unet"]["num_head_channels"] == [0, 0, 32, 32]
    assert cfg["diffusion_unet"]["include_spacing_input"] is True
    assert cfg["diffusion_unet"]["include_top_region_index_input"] is False
    assert cfg["controlnet"]["conditioning_embedding_num_channels"] == [8, 32, 64]


def test_full_size_release_checkpoints_load_strictly_through_the_engine(tmp_path):
    torch.manual_seed(0)
    nets = build_networks("maisi_v2", "cpu")
    save_autoencoder(nets.autoencoder, tmp_path / "autoencoder_v1.pt")
    save_diffusion_unet(nets.diffusion_unet, 1.0335, tmp_path / "diff_unet_3d_rflow-ct.pt")
    save_controlnet(nets.controlnet, tmp_path / "controlnet_3d_rflow-ct.pt")
    expected = {name: {k: v.clone() for k, v in m.state_dict().items()}
                for name, m in (("autoencoder", nets.autoencoder), ("diffusion_unet", nets.diffusion_unet),
                                ("controlnet", nets.controlnet))}
    del nets

    engine = get_engine("nodmaisi", weights_dir=str(tmp_path), device="cpu", allow_baseline_controlnet=True)
    loaded = engine.networks
    assert loaded.scale_factor == pytest.approx(1.0335)
    for name in expected:
        state = getattr(loaded, name).state_dict()
        assert set(state) == set(expected[name])
        assert all(torch.equal(state[k], expected[name][k]) for k in expected[name])
    assert engine.describe()["weights_found"]


def test_a_checkpoint_of_another_network_is_refused_by_name(tmp_path):
    nets = build_networks("maisi_tiny", "cpu")
    state = nets.diffusion_unet.state_dict()
    state.pop("out.2.conv.weight")
    state["extra.weight"] = torch.zeros(1)
    torch.save({"unet_state_dict": state, "scale_factor": torch.tensor(1.0)}, tmp_path / "diffusion_unet.pt")
    with pytest.raises(WeightsError, match=r"1 missing key\(s\): out.2.conv.weight; 1 unexpected key\(s\): extra.weight"):
        load_diffusion_unet(tmp_path / "diffusion_unet.pt", "maisi_tiny", "cpu")
    torch.save(nets.diffusion_unet.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(WeightsError, match="not a 'unet_state_dict' checkpoint"):
        load_diffusion_unet(tmp_path / "plain.pt", "maisi_tiny", "cpu")


@pytest.mark.parametrize("direction", [np.eye(3), np.diag([-1.0, 1.0, -1.0]),
                                       np.array([[0.0, 1, 0], [0, 0, 1], [1, 0, 0]]),
                                       np.array([[0.0, 0, -1], [1, 0, 0], [0, -1, 0]])])
def test_network_axes_are_simpleitk_ras(direction):
    import SimpleITK as sitk

    volume = Volume(np.random.default_rng(0).integers(0, 100, (5, 6, 7)), spacing=(1, 2, 3), direction=direction)
    axes = NetworkAxes.of(volume)
    ras = sitk.DICOMOrient(volume.to_sitk(), "RAS")
    assert np.array_equal(axes.to_network(volume.array), sitk.GetArrayFromImage(ras).transpose(2, 1, 0))
    assert axes.spacing_xyz(volume) == pytest.approx(ras.GetSpacing())
    assert np.array_equal(axes.from_network(axes.to_network(volume.array)), volume.array)
