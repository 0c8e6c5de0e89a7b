"""Embedded demo patient: a deterministic synthetic chest CT with its MAISI label map and nodules.

``make_demo_patient(seed)`` builds, in a few seconds, a 256 x 256 x 128 CT at 1.25 x 1.25 x 2 mm
(LPS, identity direction, centred on the world origin): body, chest wall and ribs, spine,
heart and aorta, two lungs split into the five MAISI lobes by oblique and horizontal fissures,
pulmonary vessel and airway trees, and one nodule of each kind (solid, part-solid,
ground-glass, juxta-pleural, juxta-vascular) with its true mask.
``write_demo_patient`` saves it as NIfTI files plus point and PiNS-style annotation CSVs.
"""
from .export import write_demo_patient
from .nodules import SUBTYPE_OF_KIND
from .patient import GRID_SIZE_IJK, SPACING_MM, DemoPatient, PhantomNodule, lung_mask, make_demo_patient

NODULE_KINDS = tuple(SUBTYPE_OF_KIND)

__all__ = ["DemoPatient", "GRID_SIZE_IJK", "NODULE_KINDS", "PhantomNodule", "SPACING_MM", "SUBTYPE_OF_KIND",
           "lung_mask", "make_demo_patient", "write_demo_patient"]
