"""Synthetic cohorts by design: a spec of counts per subtype and size bin planned into nodules placed in real
lungs (:mod:`.plan`), one batch job per case (op ``cohort_case``), exported as training sets (:mod:`.export`).

Sizes are **equivalent-sphere diameters** (mm): the sphere of the nodule's volume, as everywhere in nodsynth.
Distances between voxel sets (nodule to nodule, nodule to pleura) are between voxel centres (mm), so two
touching voxels are one voxel spacing apart.
"""
