"""The options an engine of a batch row is created with, the same in ``batch check`` and in the workers."""
from __future__ import annotations

from typing import Any, Optional


def row_engine_options(name: str, row_weights: Optional[str], run_weights_dir: Optional[str],
                       engine_options: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``engine_options[name]`` with the weights folder the row uses: the row's ``weights`` parameter, else
    the run's ``--weights``, else ``weights_dir`` of the engine options (absent: the engine's own search)."""
    options = dict(engine_options.get(name, {}))
    chosen = row_weights or run_weights_dir
    if chosen:
        options["weights_dir"] = chosen
    return options
