"""Pure-Python core of the LesionAugment module (no Slicer import): see :mod:`.compute`."""
