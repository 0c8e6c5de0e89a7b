"""nodsynth: the engine of the NodMAISI 3D Slicer extension (nodule-oriented CT synthesis).

Everything here runs without Slicer: in Slicer's Python, a plain virtual environment,
on a remote GPU server and in CI.
"""
from .errors import Cancelled, GeometryError, InputError, NodsynthError, WeightsError
from .progress import CancelToken
from .volume import Volume, require_same_grid, same_grid
from .io.volume_files import read_volume, write_volume

__version__ = "0.1.0"

__all__ = [
    "Cancelled", "CancelToken", "GeometryError", "InputError", "NodsynthError", "Volume",
    "WeightsError", "read_volume", "require_same_grid", "same_grid", "write_volume", "__version__",
]
