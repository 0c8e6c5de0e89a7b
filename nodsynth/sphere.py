"""The equivalent sphere of a volume: how a nodule's size is told in one number (mm)."""
from __future__ import annotations

import math


def sphere_diameter_mm(volume_mm3: float) -> float:
    """Diameter (mm) of the sphere whose volume is ``volume_mm3`` (mm³)."""
    return float((6.0 * volume_mm3 / math.pi) ** (1.0 / 3.0))
