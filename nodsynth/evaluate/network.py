"""The 2-D feature network, loaded from local files only (never downloaded).

``--network`` names either

* a **TorchScript** file (``torch.jit.save``): loaded with ``torch.jit.load``; or
* a **torch.hub folder**, e.g. a user's copy of ``github.com/Warvito/radimagenet-models`` (the
  folder holding ``hubconf.py``), loaded with ``torch.hub.load(folder, entry, source="local")``.
  For the RadImageNet entry ``radimagenet_resnet50`` its weights file
  ``RadImageNet-ResNet50_notop.pth`` is looked for in ``--network-weights``, the folder itself,
  ``FOLDER/checkpoints`` and torch.hub's ``checkpoints`` folder, and handed to the entry, whose
  own fallback would download it; any other entry runs with torch.hub's downloads refused.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Iterator, Optional

from ..errors import InputError, WeightsError

RADIMAGENET_ENTRY = "radimagenet_resnet50"
RADIMAGENET_WEIGHTS = "RadImageNet-ResNet50_notop.pth"
RADIMAGENET_REPO = "github.com/Warvito/radimagenet-models"


def _where_to_place(path: Path) -> str:
    return (f"place there a TorchScript file of the feature network, or a copy of {RADIMAGENET_REPO} "
            f"(the folder holding hubconf.py) with its weights {RADIMAGENET_WEIGHTS} in that folder or "
            "its checkpoints/ sub-folder; nodsynth never downloads networks")


def radimagenet_weight_places(folder: Path, weights: Optional[Path] = None) -> list[Path]:
    """Where the RadImageNet weights are looked for, in order."""
    import torch

    if weights is not None:
        return [Path(weights)]
    return [folder / RADIMAGENET_WEIGHTS, folder / "checkpoints" / RADIMAGENET_WEIGHTS,
            Path(torch.hub.get_dir()) / "checkpoints" / RADIMAGENET_WEIGHTS]


@contextlib.contextmanager
def downloads_refused() -> Iterator[None]:
    """While active, torch.hub's download helpers raise :class:`WeightsError` instead of downloading."""
    import torch.hub

    def refuse(url, *args, **kwargs):
        raise WeightsError(f"the hub entry tried to download {url}; nodsynth never downloads: put the file "
                           f"in {Path(torch.hub.get_dir()) / 'checkpoints'} yourself")

    saved = (torch.hub.download_url_to_file, torch.hub.load_state_dict_from_url)
    torch.hub.download_url_to_file, torch.hub.load_state_dict_from_url = refuse, refuse
    try:
        yield
    finally:
        torch.hub.download_url_to_file, torch.hub.load_state_dict_from_url = saved


def _load_hub(folder: Path, entry: str, weights: Optional[Path]):
    import torch

    kwargs = {}
    if entry == RADIMAGENET_ENTRY:
        places = radimagenet_weight_places(folder, weights)
        found = next((p for p in places if p.is_file()), None)
        if found is None:
            raise WeightsError(f"the {entry} weights {RADIMAGENET_WEIGHTS} were not found; looked in "
                               + ", ".join(str(p) for p in places) + f" (get them once from {RADIMAGENET_REPO}; "
                               "nodsynth never downloads)")
        kwargs = {"model_dir": str(found.parent), "file_name": found.name}
    try:
        with downloads_refused():
            return torch.hub.load(str(folder), entry, source="local", **kwargs)
    except ModuleNotFoundError as exc:
        raise InputError(f"the torch.hub folder {folder} needs the Python module {exc.name!r}; "
                         f"install it (pip install {exc.name})") from exc
    except (AttributeError, RuntimeError) as exc:
        raise InputError(f"cannot load entry {entry!r} from the torch.hub folder {folder}: {exc}") from exc


def load_feature_network(path: str | os.PathLike, entry: str = RADIMAGENET_ENTRY, device=None,
                         weights: Optional[str | os.PathLike] = None):
    """The network in eval mode on ``device``; :class:`InputError`/:class:`WeightsError` say what to place where."""
    import torch

    path = Path(path).expanduser()
    if path.is_dir():
        if not (path / "hubconf.py").is_file():
            raise InputError(f"--network {path} is a folder without hubconf.py; " + _where_to_place(path))
        network = _load_hub(path, entry, Path(weights).expanduser() if weights else None)
    elif path.is_file():
        try:
            network = torch.jit.load(str(path), map_location="cpu")
        except (RuntimeError, ValueError) as exc:
            raise InputError(f"--network {path} is not a TorchScript file ({str(exc).strip().splitlines()[0]}); "
                             + _where_to_place(path)) from exc
    else:
        raise InputError(f"--network {path} does not exist; " + _where_to_place(path))
    if not isinstance(network, torch.nn.Module):
        raise InputError(f"--network {path} (entry {entry!r}) did not give a torch module but {type(network).__name__}")
    return network.to(device or "cpu").eval()


def network_fingerprint(network) -> str:
    """SHA-256 of the network's class and of every parameter and buffer (names, shapes, values)."""
    import torch

    digest = hashlib.sha256(type(network).__name__.encode())
    for name, tensor in sorted(network.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(data.shape)}:{data.dtype}".encode())
        digest.update(data.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
