"""Model-free CT rendering: label-map edits and nodule insertion (the ClassicEngine)."""
