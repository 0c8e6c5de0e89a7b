"""The NodMAISI engine: MAISI-v2 rectified flow with a nodule-aware ControlNet (see :mod:`.engine`)."""
from .engine import NodMAISIEngine, TwinPlan

__all__ = ["NodMAISIEngine", "TwinPlan"]
