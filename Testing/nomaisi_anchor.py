"""The published NodMAISI FID script (``../shared/anchors/NoMAISI/scripts/compute_fid_2-5d_ct.py``),
loaded as a module for tests and benchmarks that compare with it.

Executing the file runs only its imports and definitions (its ``torch.hub.load`` sits in ``main``);
``fire``, which only its ``__main__`` block uses, is stubbed while loading when it is not installed,
and its logger gets a handler first so that the script does not configure the root logger.
"""
from __future__ import annotations

import importlib.util
import logging
import sys
import types
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parent.parent
FID_SCRIPT = REPO_ROOT.parent / "shared" / "anchors" / "NoMAISI" / "scripts" / "compute_fid_2-5d_ct.py"


def load_fid_script() -> Optional[types.ModuleType]:
    """The script as a module, or ``None`` when ``../shared/anchors`` is absent."""
    if not FID_SCRIPT.is_file():
        return None
    logging.getLogger("fid_2-5d_ct").addHandler(logging.NullHandler())
    stubbed = importlib.util.find_spec("fire") is None
    if stubbed:
        sys.modules["fire"] = types.ModuleType("fire")
    try:
        spec = importlib.util.spec_from_file_location("nomaisi_compute_fid_2p5d", FID_SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if stubbed:
            sys.modules.pop("fire", None)
    return module
