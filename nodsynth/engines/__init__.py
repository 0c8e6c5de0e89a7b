"""CT generators behind one interface (see :mod:`nodsynth.engines.base`)."""
from .base import (SUBTYPES, EditRequest, Engine, InpaintRequest, SynthesisResult, TwinRequest,
                   UnsupportedOperation, subtype_index)
from .registry import engine_names, get_engine

__all__ = ["SUBTYPES", "EditRequest", "Engine", "InpaintRequest", "SynthesisResult", "TwinRequest",
           "UnsupportedOperation", "engine_names", "get_engine", "subtype_index"]
