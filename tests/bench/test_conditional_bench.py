"""`ganserve bench conditional`: the keys it reports, on a run far too short to mean anything (not a quality test:
the README's figures come from the command)."""

from __future__ import annotations

import pytest

from bench import conditional
from tests.conftest import mnist_available


def test_reports_accuracy_and_encoder_errors() -> None:
    if not mnist_available():
        pytest.skip("MNIST is not in GANSERVE_DATA_DIR")
    r = conditional.run("quick", 2, 2, 0, classifier_epochs=1, data_iterations=3, g_hidden=(32,), d_hidden=(16,),
                        e_hidden=(32,), encoder_iterations=5)
    assert r["iterations"] == 2 and r["samples"] == 20 and 0.0 <= r["conditional_accuracy"] <= 1.0
    assert r["classifier_test_accuracy"] > 0.9                   # one epoch of the classifier already reads digits
    assert r["classifier"]["epochs"] == 1                       # the scores' classifier, as its job trains it
    for key in ("recon_mse_test", "random_z_mse_test", "recon_mse_own_samples", "recon_nn_sq_dist_median",
                "test_nn_sq_dist_median", "cpu"):
        assert key in r and key in r["refined"] or key == "cpu"
    assert r["refined"]["encoder_data_iterations"] == 3
