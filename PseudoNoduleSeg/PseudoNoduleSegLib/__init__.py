"""Pure-Python core of the PseudoNoduleSeg module (no Slicer import): see :mod:`.compute`."""
