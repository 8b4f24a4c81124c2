"""FeatureExtractor: identical meta-prover inputs are encoded once, in any batch size."""

from __future__ import annotations

import pytest
import torch

from mrt_env.lm.testing import tiny_random_lm
from mrt_env.prover.base import ProverRequest
from mrt_env.prover.features import FeatureExtractor

PROMPT = "Problem: 12+7\n<think>\n"


class CountingModel(torch.nn.Module):
    """Wraps a causal LM and counts the input rows of its forward passes."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.config, self.rows = model, model.config, 0

    def forward(self, input_ids: torch.Tensor, **kwargs: object) -> object:
        self.rows += int(input_ids.shape[0])
        return self.inner(input_ids=input_ids, **kwargs)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_identical_inputs_are_encoded_once_with_the_features_of_each(batch_size: int) -> None:
    lm = tiny_random_lm(seed=0)
    prefixes = ["", "12+7=19.", "", "12+7=1", "12+7=19.", "", "x"]
    requests = [ProverRequest(f"p{i}", PROMPT, "19", p) for i, p in enumerate(prefixes)]
    alone = FeatureExtractor(lm, "tiny", batch_size=1)
    expected = torch.cat([alone.features([r], (1, 2)) for r in requests])  # one by one
    lm.model = CountingModel(lm.model)
    extractor = FeatureExtractor(lm, "tiny", batch_size=batch_size)
    found = extractor.features(requests, (1, 2))
    assert lm.model.rows == 4  # "", "12+7=19.", "12+7=1", "x"
    assert found.shape == (7, 2, lm.model.config.hidden_size)
    assert torch.allclose(found, expected, atol=1e-4)
    assert torch.equal(found[0], found[2]) and torch.equal(found[1], found[4])
    assert not torch.allclose(found[0], found[1], atol=1e-3)
    assert extractor.features([], (1,)).shape == (0, 1, lm.model.config.hidden_size)
