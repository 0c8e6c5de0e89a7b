"""Pure-Python core of the HRLDMInpaint module (no Slicer import): see :mod:`.compute`."""
