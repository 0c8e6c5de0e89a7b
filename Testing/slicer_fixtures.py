"""The demo patient, built once per test session for the Slicer-layer tests (it takes ~10 s; the tests
only read it)."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def demo_patient():
    from nodsynth.phantom import make_demo_patient

    return make_demo_patient()
