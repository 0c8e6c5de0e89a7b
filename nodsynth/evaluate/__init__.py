"""Dataset-level fidelity metrics, computed as the seed papers compute them.

* 2.5D FID on whole CTs (NodMAISI; the published ``compute_fid_2-5d_ct.py``):
  :mod:`.ct_inputs` (which files), :mod:`.ct_prep` (RAS, resampling, pad/crop, clip),
  :mod:`.planes` (slices of the three planes), :mod:`.normalisation` (RadImageNet intensities and
  channel order), :mod:`.features_2p5d` (batched network features), :mod:`.network` (a local
  torch.hub folder or a TorchScript file, never downloaded), :mod:`.feature_cache` (per file,
  keyed by content hash and settings), :mod:`.fid` (MONAI ``FIDMetric`` per plane) and
  :mod:`.ct_fid` (the whole run).
* Nodule-centred crops (HR-LDM): :mod:`.nodule_csv`, :mod:`.nodule_crops`, :mod:`.kid`
  (polynomial-kernel unbiased MMD^2 over subsets), :mod:`.mmd` (Gaussian kernel, median
  bandwidth) and :mod:`.nodule_metrics`.
* Lesion detectability (LUNA16 FROC): :mod:`.froc_io`, :mod:`.froc`, :mod:`.froc_bootstrap`,
  :mod:`.froc_report` and :mod:`.froc_plot`.
* :mod:`.report` turns a finished JSON report into rows for display (the NodMAISI Slicer module).

Importing this package is cheap; the modules that need torch or MONAI import them themselves.
"""
