"""The softmax hidden tests' own cross-entropy (float64 numpy, so the grader never imports torch)
is torch's ``cross_entropy`` and its autograd gradient, on ordinary and on extreme scores."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.conftest import REPO


def _hidden_module():
    path = REPO / "solutions" / "softmax" / "tests" / "test_softmax_hidden.py"
    spec = importlib.util.spec_from_file_location("softmax_hidden_oracle", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("scale", [1.0, 30.0, 1000.0])
def test_the_hidden_tests_cross_entropy_is_torchs(scale):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    hidden = _hidden_module()
    rng = np.random.default_rng(7)
    for n, c in [(1, 2), (5, 3), (64, 10), (7, 200)]:
        scores = rng.normal(size=(n, c)) * scale
        y = rng.integers(0, c, size=n)
        s = torch.from_numpy(scores.copy()).requires_grad_(True)
        loss = F.cross_entropy(s, torch.from_numpy(y))
        loss.backward()
        np.testing.assert_allclose(hidden._reference_loss(scores, y), loss.item(), rtol=1e-12)
        np.testing.assert_allclose(hidden._reference_grad(scores, y), s.grad.numpy(),
                                   rtol=1e-10, atol=1e-15)
