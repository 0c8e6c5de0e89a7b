"""Checks a request must pass before the server accepts it (a failure is a 422 and writes nothing)."""
from __future__ import annotations

from ..engines.base import Engine, InpaintRequest, subtype_index
from ..errors import InputError
from ..histogram import validate_histogram
from ..volume import require_same_grid
from ..io.wire import WireRequest, request_volumes


def validate_request(decoded: WireRequest, engines: dict[str, Engine]) -> None:
    """Raise a :class:`~nodsynth.errors.NodsynthError` naming the first problem of ``decoded``."""
    if decoded.engine not in engines:
        raise InputError(f"engine {decoded.engine!r} is not served here; this server offers: "
                         + ", ".join(sorted(engines)))
    operations = engines[decoded.engine].describe().get("operations")
    if operations is not None and decoded.operation not in operations:
        raise InputError(f"engine {decoded.engine!r} cannot {decoded.operation}; it offers: "
                         + ", ".join(operations))
    request = decoded.request
    volumes = request_volumes(request)
    names = list(volumes)
    if not names:
        raise InputError(f"the {decoded.operation} request carries no volume")
    for other in names[1:]:
        require_same_grid(volumes[names[0]], volumes[other], names[0], other)
    steps = getattr(request, "steps", 1)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise InputError(f"steps must be a positive integer, got {steps!r}")
    seed = getattr(request, "seed", None)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise InputError(f"seed must be an integer or null, got {seed!r}")
    if isinstance(request, InpaintRequest):
        subtype_index(request.subtype)
        if request.histogram is not None:
            validate_histogram(request.histogram)
