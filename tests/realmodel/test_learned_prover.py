"""The learned meta-prover on SmolLM2: real hidden-state features, a fitted probe, J of real
prefixes, batching, persistence, and the tokenizer check naming both models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mrt_env.prover.base import ProverRequest
from mrt_env.prover.features import FeatureExtractor, tokenizer_fingerprint
from mrt_env.prover.fit import FitConfig, fit_probe
from mrt_env.prover.learned import CARD_FILE, LearnedMetaProver, ProbeHead
from mrt_env.templates import resolve_template

pytestmark = pytest.mark.realmodel

LAYER = 20
"""A middle-to-late layer of SmolLM2's 30 (the probe's input)."""
STATED, UNSTATED = 0.9, 0.1
"""J of a prefix that states a result, and of one that has not started (the synthetic labels)."""


def _problems(seed: int, count: int) -> list[tuple[str, int]]:
    rng = np.random.default_rng(seed)
    pairs = [(int(rng.integers(11, 60)), int(rng.integers(11, 40))) for _ in range(count)]
    return [(f"What is {a} + {b}?", a + b) for a, b in pairs]


def _requests(lm: Any, seed: int, count: int) -> tuple[list[ProverRequest], list[bool]]:
    """Per problem: a prefix that states its sum, and one that only starts thinking."""
    template = resolve_template("chat", lm)
    requests, stated = [], []
    for index, (problem, answer) in enumerate(_problems(seed, count)):
        prompt = template.render_prompt(problem)
        for says in (True, False):
            prefix = f"Adding the numbers gives {answer}." if says else "Let me think about it."
            requests.append(ProverRequest(f"s{seed}-{index}", prompt, str(answer), prefix))
            stated.append(says)
    return requests, stated


@pytest.fixture(scope="module")
def fitted(real_lm: Any) -> LearnedMetaProver:
    """A logistic probe on SmolLM2's layer-20 features of 10 synthetic problems (K = 8)."""
    requests, stated = _requests(real_lm, seed=0, count=10)
    extractor = FeatureExtractor(real_lm, "chat")
    features = extractor.features(requests, layers=(LAYER,))[:, 0]
    assert features.shape == (20, real_lm.model.config.hidden_size)
    rng = np.random.default_rng(0)
    correct = torch.tensor(
        [float(rng.binomial(8, STATED if s else UNSTATED)) for s in stated], dtype=torch.float32
    )
    samples = torch.full((len(requests),), 8.0)
    val = torch.tensor([r.problem_id in ("s0-8", "s0-9") for r in requests])
    head, _ = fit_probe(
        features, correct, samples, ~val, val, hidden=0, config=FitConfig(lr=0.05, max_epochs=300)
    )
    card = {"feature_model": real_lm.name, "labels": {"k": [8], "rows": len(requests)}}
    return LearnedMetaProver(real_lm, head, layer=LAYER, template="chat", card=card)


def test_learned_prover_estimates_j_from_smollm2_features(
    fitted: LearnedMetaProver, real_lm: Any
) -> None:
    requests, stated = _requests(real_lm, seed=1, count=4)  # problems the probe never saw
    estimates = fitted.estimate(requests)
    assert len(estimates) == len(requests) and fitted.forward_passes == 1
    assert all(0 < e.j < 1 and e.source == "learned" and e.num_samples == 0 for e in estimates)
    says = [e.j for e, s in zip(estimates, stated, strict=True) if s]
    starts = [e.j for e, s in zip(estimates, stated, strict=True) if not s]
    assert all(a > b for a, b in zip(says, starts, strict=True)), (says, starts)
    assert np.mean(says) > 0.6 and np.mean(starts) < 0.4, (says, starts)


def test_padded_batches_estimate_what_one_at_a_time_does(
    fitted: LearnedMetaProver, real_lm: Any
) -> None:
    requests, _ = _requests(real_lm, seed=2, count=3)
    one = LearnedMetaProver(real_lm, fitted.head, layer=LAYER, template="chat", batch_size=1)
    padded = LearnedMetaProver(real_lm, fitted.head, layer=LAYER, template="chat", batch_size=6)
    lengths = {len(one.extractor.input_ids(r)) for r in requests}
    assert len(lengths) > 1  # the batch really pads
    alone = [e.j for e in one.estimate(requests)]
    assert [e.j for e in padded.estimate(requests)] == pytest.approx(alone, abs=2e-3)
    assert len(set(np.round(alone, 6))) > 1  # different prefixes, different J


def test_j_of_the_prefixes_of_a_real_smollm2_response(
    fitted: LearnedMetaProver, real_lm: Any, short_math500: Path
) -> None:
    from mrt_env.config import default_segmenter
    from mrt_env.lm.base import SamplingParams
    from mrt_env.prover.labels import response_prefixes

    problem = json.loads(short_math500.read_text().splitlines()[0])
    template = resolve_template("chat", real_lm)
    prompt = template.render_prompt(problem["problem"])
    params = SamplingParams(max_new_tokens=128, temperature=0.0)
    [[completion]] = real_lm.generate([prompt], params, seeds=[0])
    prefixes = response_prefixes(completion.text, template, default_segmenter(template, real_lm))
    assert len(prefixes) >= 2, completion.text  # the empty thinking and at least one episode
    requests = [ProverRequest("p", prompt, str(problem["answer"]), p) for p in prefixes]
    estimates = fitted.estimate(requests)
    assert len(estimates) == len(prefixes)
    assert all(0 < e.j < 1 and e.source == "learned" for e in estimates)


def test_save_and_load_on_smollm2(fitted: LearnedMetaProver, real_lm: Any, tmp_path: Path) -> None:
    folder = fitted.save_pretrained(tmp_path / "mu")
    card = json.loads((folder / CARD_FILE).read_text())
    assert card["layer"] == LAYER and card["template"] == "chat"
    assert card["head"] == {"kind": "logistic", "hidden": 0, "input_dim": 576}
    assert card["tokenizer_fingerprint"] == tokenizer_fingerprint(real_lm.tokenizer)
    loaded = LearnedMetaProver.from_pretrained(folder, feature_lm=real_lm, policy_lm=real_lm)
    requests, _ = _requests(real_lm, seed=3, count=2)
    before = [e.j for e in fitted.estimate(requests)]
    assert [e.j for e in loaded.estimate(requests)] == pytest.approx(before, abs=1e-6)


def test_a_feature_model_with_another_tokenizer_names_both_models(real_lm: Any) -> None:
    from mrt_env.tinymath import load_tiny_lm

    tiny = load_tiny_lm()
    with pytest.raises(ValueError, match="different tokenizers") as error:
        LearnedMetaProver(real_lm, ProbeHead(576), layer=LAYER, template="chat", policy_lm=tiny)
    assert real_lm.name in str(error.value) and tiny.name in str(error.value)
    # the shipped tiny-LM prover asked to serve SmolLM2 as the policy: both names again
    with pytest.raises(ValueError, match="different tokenizers") as error:
        LearnedMetaProver.from_pretrained("tiny", policy_lm=real_lm)
    assert real_lm.name in str(error.value) and "tiny" in str(error.value)
