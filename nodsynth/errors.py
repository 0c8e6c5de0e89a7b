"""Exception types shared by every layer of nodsynth.

Every error a user can cause derives from :class:`NodsynthError` so that the CLI,
the server and the Slicer modules can show its message instead of a traceback.
"""


class NodsynthError(Exception):
    """Base class of all errors nodsynth raises on purpose."""


class InputError(NodsynthError, ValueError):
    """An input (file, parameter, volume) is invalid; the message names the problem."""


class GeometryError(InputError):
    """Two volumes that must share a voxel grid do not, or a point lies outside a volume."""


class WeightsError(NodsynthError, FileNotFoundError):
    """Model weights are missing or do not match the network they are loaded into."""


class Cancelled(NodsynthError):
    """Long work stopped because its cancel token was set."""
