"""CT rendering: model-free label-map edits and nodule insertion (the ClassicEngine), and the two ways an
augmented label map becomes a CT (:mod:`.modes`: ROI edit or whole-CT twin)."""
