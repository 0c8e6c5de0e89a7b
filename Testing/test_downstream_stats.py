"""DeLong statistics and patches of ``nodsynth.downstream`` against independent computations."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from nodsynth.downstream.delong import delong, paired_test
from nodsynth.downstream.patches import PAD_HU, PatchSettings, hu_patch
from nodsynth.downstream.splits import fraction_folds, parse_fractions
from nodsynth.errors import InputError
from nodsynth.volume import Volume
from test_downstream_classify import direct_delong


@pytest.mark.parametrize("m, n, levels", [(30, 45, 1000), (7, 3, 4), (1, 9, 5), (12, 12, 2)])
def test_fast_delong_equals_the_direct_definition(m, n, levels):
    rng = np.random.default_rng(m * 100 + n)
    labels = np.r_[np.ones(m, int), np.zeros(n, int)][rng.permutation(m + n)]
    scores = rng.integers(0, levels, size=(3, m + n)) + labels * rng.random((3, 1))  # ties when levels are few
    aucs, cov = delong(labels, scores)
    expected_aucs, expected_cov = direct_delong(labels, list(scores))
    assert aucs == pytest.approx(expected_aucs, abs=1e-12)
    assert aucs[0] == pytest.approx(roc_auc_score(labels, scores[0]), abs=1e-12)
    assert cov == pytest.approx(np.broadcast_to(expected_cov, (3, 3)), abs=1e-12)


def test_paired_test_of_identical_scores_has_no_variance():
    labels, scores = np.array([0, 1, 0, 1, 1]), np.array([0.1, 0.7, 0.4, 0.3, 0.9])
    result = paired_test(labels, scores, scores)
    assert result["p_value"] is None and "zero variance" in result["reason"]


def test_patch_beyond_a_tight_crop_is_padded_with_air():
    ct = Volume(np.full((5, 6, 7), 40, dtype=np.int16), np.array([0.8, 0.8, 2.0]), np.zeros(3), np.eye(3))
    settings = PatchSettings((20, 20, 12), (0.7, 0.7, 1.25), (-1000.0, 500.0))
    patch = hu_patch(ct, ct.index_to_world(np.array([3.0, 2.5, 2.0])), settings)
    assert patch.shape == (20, 20, 12)
    assert patch[10, 10, 6] == pytest.approx(40) and patch[0, 0, 0] == PAD_HU and patch.min() == PAD_HU


def test_fraction_folds_are_disjoint_and_cover_the_patients():
    patients = [f"p{i:02d}" for i in range(23)]
    for fraction in parse_fractions("100,50,20,10"):
        folds = fraction_folds(patients, fraction, seed=1, run=0)
        assert len(folds) == 100 // fraction
        assert sorted(p for f in folds for p in f) == patients
    with pytest.raises(InputError, match="divide 100"):
        parse_fractions("100,30")
