"""Glue shared by the NodMAISI Slicer modules (PseudoNoduleSeg, LesionAugment, NodMAISI, HRLDMInpaint).

Pure helpers (no Slicer needed, unit-tested with plain pytest):
``geometry`` (points between frames), ``terminology`` (segment terminology strings),
``tables`` (measurement rows -> table columns with units), ``settings`` (engine settings,
server URL validation), ``requirements`` (dependency bounds), ``engines`` (engine from settings,
connection test, consent rule), ``labelmaps`` (MAISI label maps from named masks), ``arrays``
(voxel types Slicer's volume nodes accept), ``batch`` (what the headless batch scripts share; only
its scene functions import ``slicer``).

Slicer-side helpers (import ``slicer``/``qt``): ``volumes`` (volume node <-> ``nodsynth.Volume``),
``segments`` (segment <-> mask), ``markups`` (control points -> LPS), ``tablenodes``
(``vtkMRMLTableNode`` output), ``qtjob`` (a job in the module's job process, polled by a QTimer
driving a progress bar and a Cancel button), ``dependencies`` (install torch/MONAI only after the user agrees),
``enginepanel`` (engine location kept in ``qt.QSettings``, consent prompt, connection test),
``widgetbase`` (the module widget plumbing), ``labelmapnodes`` (label map node from a CT and a
segmentation), ``views`` (result beside its original in linked views).
"""
