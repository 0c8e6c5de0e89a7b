"""HU statistics of real and synthetic CT per lung lobe (MAISI 28-32) and for the body (200).

The lobes are the lung parenchyma of the MAISI label space (vessels drawn inside a lobe carry the
lobe's id; nodules, label 23, do not count); ``body`` is label 200, the tissue no other class holds.
Each region gets the mean and standard deviation of both CTs, the mean difference (synthetic - real)
and the Jensen-Shannon divergence of their 40-bin HR-LDM histograms.
"""
from __future__ import annotations

import numpy as np

from ..histogram import hu_histogram, jensen_shannon
from ..labelmap import as_integer_labelmap
from ..labels import BODY, LOBES
from ..volume import Volume, require_same_grid

REGIONS = {**LOBES, BODY: "body"}
"""Label id -> region name, in report order."""


def region_stats(real: Volume, synthetic: Volume, labelmap: Volume) -> list[dict]:
    """One row per region of :data:`REGIONS` present in ``labelmap`` (see the module docstring)."""
    require_same_grid(real, synthetic, "real CT", "synthetic CT")
    require_same_grid(real, labelmap, "real CT", "label map")
    labels = as_integer_labelmap(labelmap).array
    rows = []
    for label, name in REGIONS.items():
        inside = labels == label
        if not inside.any():
            continue
        a = np.asarray(real.array)[inside].astype(np.float64)
        b = np.asarray(synthetic.array)[inside].astype(np.float64)
        rows.append({"region": name, "label": label, "voxels": int(a.size),
                     "mean_hu_real": round(float(a.mean()), 2), "std_hu_real": round(float(a.std()), 2),
                     "mean_hu_synthetic": round(float(b.mean()), 2), "std_hu_synthetic": round(float(b.std()), 2),
                     "mean_difference_hu": round(float(b.mean() - a.mean()), 2),
                     "jsd": round(jensen_shannon(hu_histogram(a), hu_histogram(b)), 6)})
    return rows
