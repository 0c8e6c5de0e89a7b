"""DICOM in and out: CT series read as :class:`~nodsynth.volume.Volume` (by the one reader,
:func:`nodsynth.io.volume_files.read_volume`), and synthetic CTs written as CT series, SEG and TID 1500 SR."""
