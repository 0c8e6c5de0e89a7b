"""Downstream experiments as the papers ran them: classifiers trained with and without synthetic nodules.

Inputs are ``classification`` tables (:mod:`.cases`); ``nodsynth downstream classify`` runs a protocol
(:mod:`.protocols`) and writes splits, predictions, results with DeLong statistics (:mod:`.delong`) and a report.
"""
