import math

import numpy as np
import torch

from dars.metrics import ConfusionMatrix, kl_divergence


def test_confusion_matrix_known_values():
    cm = ConfusionMatrix(3)
    target = torch.tensor([0, 0, 1, 1, 2, 255])
    pred = torch.tensor([0, 1, 1, 1, 0, 2])
    cm.update(target, pred)
    assert cm.mat.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    r = cm.compute()
    assert np.allclose(r["iou"], [1 / 3, 2 / 3, 0.0])
    assert math.isclose(r["miou"], (1 / 3 + 2 / 3) / 3)
    assert math.isclose(r["allacc"], 3 / 5)
    assert np.allclose(r["acc"], [0.5, 1.0, 0.0])


def test_confusion_matrix_sums_over_updates_and_skips_absent_classes():
    cm = ConfusionMatrix(4)
    cm.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    cm.update(torch.tensor([1, 255]), torch.tensor([1, 3]))
    r = cm.compute()
    assert cm.mat.sum() == 3
    assert math.isnan(r["iou"][2]) and math.isnan(r["iou"][3])
    assert r["miou"] == 1.0


def test_kl_divergence():
    assert kl_divergence([1, 1], [1, 1]) < 1e-12
    p, q = np.array([0.7, 0.3]), np.array([0.4, 0.6])
    expected = float(np.sum(p * np.log(p / q)))
    assert math.isclose(kl_divergence(p * 10, q * 5), expected, rel_tol=1e-4)
    assert kl_divergence([1, 0], [0, 1]) > 5  # smoothed, finite
