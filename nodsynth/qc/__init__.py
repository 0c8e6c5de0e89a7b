"""MAISI's quality check of a generated CT: the median HU of each organ group inside a range learned from real CTs.

* :mod:`.groups` - the organ groups (MAISI label ids) whose medians are checked;
* :mod:`.stats` - per-volume group medians and the ranges learned from real CTs (``nodsynth qc stats``);
* :mod:`.check` - the verdict for one CT (``nodsynth qc check``), the rule of MAISI's ``is_outlier``;
* :mod:`.regenerate` - a twin re-sampled with a new seed until it passes (``nodsynth twin --qc-stats``).
"""
