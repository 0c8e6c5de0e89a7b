"""DICOM/SNOMED CT terminology strings for the segments the modules create (pure).

Slicer stores a segment's terminology as one tag string (``vtkSegment.GetTerminologyEntryTagName()``):
``context~category~type~typeModifier~anatomicContext~anatomicRegion~anatomicRegionModifier``
where each code is ``scheme^value^meaning`` and an absent code is ``^^``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

SEGMENTATION_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"


@dataclass(frozen=True)
class Code:
    """One coded concept: coding scheme designator, code value, code meaning."""

    scheme: str
    value: str
    meaning: str

    def serialized(self) -> str:
        for part in (self.scheme, self.value, self.meaning):
            if "~" in part or "^" in part or "|" in part:
                raise ValueError(f"a terminology code may not contain '~', '^' or '|': {part!r}")
        return f"{self.scheme}^{self.value}^{self.meaning}"


MORPHOLOGICALLY_ALTERED_STRUCTURE = Code("SCT", "49755003", "Morphologically Altered Structure")
NODULE = Code("SCT", "27925004", "Nodule")
LUNG = Code("SCT", "39607008", "Lung")
ANATOMICAL_STRUCTURE = Code("SCT", "123037004", "Anatomical Structure")


def terminology_entry(category: Code, type_: Code, region: Optional[Code] = None,
                      type_modifier: Optional[Code] = None, region_modifier: Optional[Code] = None) -> str:
    """The serialized terminology entry Slicer reads from a segment's terminology tag."""

    def code(c: Optional[Code]) -> str:
        return c.serialized() if c is not None else "^^"

    return "~".join([SEGMENTATION_CONTEXT, code(category), code(type_), code(type_modifier),
                     ANATOMIC_CONTEXT, code(region), code(region_modifier)])


LUNG_NODULE_TERMINOLOGY = terminology_entry(MORPHOLOGICALLY_ALTERED_STRUCTURE, NODULE, LUNG)
"""Category 'Morphologically Altered Structure', type 'Nodule', anatomic region 'Lung'."""


def parse_terminology_entry(entry: str) -> dict[str, Optional[Code]]:
    """Split a serialized entry back into its named codes (``None`` where absent)."""
    parts = entry.split("~")
    if len(parts) != 7:
        raise ValueError(f"a terminology entry has 7 '~'-separated fields, got {len(parts)}: {entry!r}")
    names = ("context", "category", "type", "type_modifier", "anatomic_context", "region", "region_modifier")
    out: dict[str, Optional[Code]] = {}
    for name, part in zip(names, parts):
        if name.endswith("context"):
            continue
        fields = part.split("^")
        if len(fields) != 3:
            raise ValueError(f"terminology field {name!r} must be scheme^value^meaning, got {part!r}")
        out[name] = Code(*fields) if any(fields) else None
    return out
