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


def plain(value):
    """``value`` as a message should show it: numpy scalars and arrays (also inside lists and tuples) become
    plain Python numbers and lists, so ``f"{plain(x)!r}"`` reads ``23.4``, never ``np.float32(23.4)`` (nor
    the float32's 23.399999618530273: a float shows the shortest digits of its own precision)."""
    if type(value).__module__ != "numpy" or not hasattr(value, "tolist"):
        return type(value)(plain(v) for v in value) if isinstance(value, (list, tuple)) else value
    if getattr(value, "ndim", 0):
        return [plain(v) for v in value]
    return float(str(value)) if value.dtype.kind == "f" else value.item()
