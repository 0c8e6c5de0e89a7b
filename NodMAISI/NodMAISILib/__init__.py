"""Pure-Python core of the NodMAISI module (no Slicer import): see :mod:`.compute`."""
