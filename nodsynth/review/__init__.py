"""Review kit: real vs synthetic side by side with per-case numbers, blinded reading studies, scoring.

Per-case comparison (``nodsynth review compare``)
    :mod:`.fidelity` (one nodule: HU histogram JSD, re-segmented Dice, reproduced), :mod:`.regions`
    (lobes and body), :mod:`.edit_fidelity` (ROI edits: bit-identical outside, PSNR / SSIM in the box),
    :mod:`.compare` (one pair -> :class:`~.compare.CaseComparison`), :mod:`.planes` and :mod:`.triplets`
    (PNG triplets), :mod:`.html` and :mod:`.report` (CSV, JSON, ``report.html``), :mod:`.pairs`
    (many pairs from a manifest into one report folder).

Visual Turing test (``nodsynth turing build`` / ``score``)
    :mod:`.study_inputs` (manifests of real and synthetic nodules), :mod:`.balance` (subtype and size
    balance), :mod:`.blinded` (no-tell case files), :mod:`.study` (the study folder), :mod:`.key`
    (``key.csv`` and its SHA-256), :mod:`.answers` (answer sheets), :mod:`.stats` and
    :mod:`.agreement` (Wilson, binomial, McNemar, ROC AUC, kappa), :mod:`.score` and
    :mod:`.score_report` (the scoring JSON and HTML), :mod:`.reading` (a reader's session, for Slicer).

Everything here is plain Python (numpy, SciPy, SimpleITK, Pillow, scikit-image); nothing imports Slicer.
"""
