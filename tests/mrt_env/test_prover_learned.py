"""The learned meta-prover: probe recovery, save/load, environment wiring and bad folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mrt_env.prover.base import ProverRequest
from mrt_env.prover.fit import FitConfig, binomial_nll, fit_probe, split_by_problem
from mrt_env.prover.labels import LabelRow
from mrt_env.prover.learned import (
    CARD_FILE,
    HEAD_FILE,
    LearnedMetaProver,
    ProbeHead,
    ProverFolderError,
)

PROMPT = "Problem: 12+7\n<think>\n"


def test_binomial_nll_matches_the_formula_in_float64() -> None:
    logits = torch.tensor([0.3, -1.2], dtype=torch.float64)
    correct = torch.tensor([3.0, 0.0], dtype=torch.float64)
    samples = torch.tensor([8.0, 4.0], dtype=torch.float64)
    p = 1 / (1 + np.exp(-np.array([0.3, -1.2])))
    expected = -(3 * np.log(p[0]) + 5 * np.log(1 - p[0]) + 4 * np.log(1 - p[1])) / 12
    assert float(binomial_nll(logits, correct, samples)) == pytest.approx(expected, abs=1e-12)


def test_split_by_problem_never_shares_a_problem() -> None:
    ids = [f"p{i % 10}" for i in range(100)]
    train, val = split_by_problem(ids, 0.3, seed=1)
    train_ids = {p for p, t in zip(ids, train.tolist(), strict=True) if t}
    val_ids = {p for p, v in zip(ids, val.tolist(), strict=True) if v}
    assert not train_ids & val_ids and len(val_ids) == 3 and bool((train ^ val).all())


@pytest.mark.parametrize("hidden", [0, 16])
def test_probe_on_synthetic_features_recovers_a_known_j(hidden: int) -> None:
    """K = 8 binomial labels of J = sigmoid(w.x + b): the fitted J is within 0.05 on average."""
    generator = torch.Generator().manual_seed(0)
    w, b = torch.tensor([1.5, -1.0, 0.5, 0.0, 0.0, 0.0]), -0.3
    x = torch.randn(3000, 6, generator=generator)
    j = torch.sigmoid(x @ w + b)
    samples = torch.full((3000,), 8.0)
    correct = torch.binomial(samples, j, generator=generator)
    ids = [str(i // 10) for i in range(3000)]  # 300 problems of 10 prefixes
    train, val = split_by_problem(ids, 0.2, seed=0)
    head, report = fit_probe(
        x,
        correct,
        samples,
        train,
        val,
        hidden=hidden,
        config=FitConfig(lr=0.05, max_epochs=1500, patience=100),
    )
    fresh = torch.randn(2000, 6, generator=generator)
    error = (head.probability(fresh) - torch.sigmoid(fresh @ w + b)).abs()
    assert float(error.mean()) < 0.05, float(error.mean())
    assert report["best_epoch"] >= 1 and report["val_loss"] < report["train_loss"] + 0.1


def _synthetic_rows(n_problems: int, seed: int) -> list[LabelRow]:
    """A finished sum (J = 0.9) or one cut before its result (J = 0.1), K = 8."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_problems):
        for good in (True, False):
            a = int(rng.integers(10, 90))
            prefix = f"{a}+7={a + 7}." if good else f"{a}+7="
            correct = int(rng.binomial(8, 0.9 if good else 0.1))
            rows.append(
                LabelRow(f"p{p}", f"Problem: {a}+7\n<think>\n", str(a + 7), prefix, correct, 8, 4.0)
            )
    return rows


@pytest.fixture(scope="module")
def tiny_lm():  # type: ignore[no-untyped-def]
    from mrt_env.tinymath import load_tiny_lm

    return load_tiny_lm()


@pytest.fixture(scope="module")
def trained(tiny_lm, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A learned μ trained end to end on the tiny LM's features of synthetic prefixes."""
    from mrt_env.prover.train import train_from_labels

    folder = tmp_path_factory.mktemp("prover")
    labels = folder / "labels.jsonl"
    labels.write_text("".join(json.dumps(r.__dict__) + "\n" for r in _synthetic_rows(40, 0)))
    prover = train_from_labels(
        labels,
        folder / "mu",
        feature_lm=tiny_lm,
        layers=(4,),
        kinds=("logistic",),
        config=FitConfig(lr=0.05, max_epochs=400),
    )
    return prover, folder / "mu"


def test_learned_prover_separates_right_from_wrong_partial_work(trained) -> None:  # type: ignore[no-untyped-def]
    prover, _ = trained
    rows = _synthetic_rows(20, seed=1)  # fresh problems
    estimates = prover.estimate(
        [ProverRequest(r.problem_id, r.prompt, r.gold, r.prefix) for r in rows]
    )
    good = [e.j for e, r in zip(estimates, rows, strict=True) if r.prefix.endswith(".")]
    bad = [e.j for e, r in zip(estimates, rows, strict=True) if not r.prefix.endswith(".")]
    assert np.mean(good) > 0.7 and np.mean(bad) < 0.3, (np.mean(good), np.mean(bad))
    assert all(e.source == "learned" and e.num_samples == 0 for e in estimates)
    assert estimates[0].answer_tokens == pytest.approx(4.0)


def test_save_load_round_trip(trained, tiny_lm) -> None:  # type: ignore[no-untyped-def]
    prover, folder = trained
    card = json.loads((folder / CARD_FILE).read_text())
    assert card["feature_model"] == "tiny" and card["layer"] == 4
    assert card["labels"]["k"] == [8] and card["labels"]["rows"] == 80
    assert card["head"]["kind"] == "logistic" and len(card["labels"]["sha256"]) == 64
    loaded = LearnedMetaProver.from_pretrained(folder, feature_lm=tiny_lm, policy_lm=tiny_lm)
    requests = [ProverRequest("q", PROMPT, "19", p) for p in ("", "12+7=19.", "12+7=15.")]
    before = [e.j for e in prover.estimate(requests)]
    assert [e.j for e in loaded.estimate(requests)] == pytest.approx(before, abs=1e-7)
    from_spec = LearnedMetaProver.from_pretrained(folder)  # the card's "tiny" is loaded
    assert [e.j for e in from_spec.estimate(requests)] == pytest.approx(before, abs=1e-6)


def test_gym_make_with_a_learned_prover_reports_its_source(trained) -> None:  # type: ignore[no-untyped-def]
    import gymnasium as gym

    import mrt_env  # noqa: F401  (registers MRTMath-v0)

    _, folder = trained
    env = gym.make("MRTMath-v0", prover=f"learned:{folder}", problems="tinymath:heldout")
    _, info = env.reset(seed=0)
    assert 0 < info["j"] < 1
    *_, info = env.step("1+1=2.\n\n")
    assert info["j_source"] == "prover" and info["j_estimator"] == "learned"
    assert 0 < info["j_after"] < 1


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "mu"
    target.mkdir()
    for name in (HEAD_FILE, CARD_FILE):
        (target / name).write_bytes((folder / name).read_bytes())
    return target


def test_truncated_head_names_the_file(trained, tiny_lm, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = _copy(trained[1], tmp_path)
    data = (folder / HEAD_FILE).read_bytes()
    (folder / HEAD_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ProverFolderError, match=f"{HEAD_FILE}.*checksum"):
        LearnedMetaProver.from_pretrained(folder, feature_lm=tiny_lm)


def test_truncated_head_with_a_matching_checksum_names_the_file(  # type: ignore[no-untyped-def]
    trained, tiny_lm, tmp_path
) -> None:
    import hashlib

    folder = _copy(trained[1], tmp_path)
    data = (folder / HEAD_FILE).read_bytes()[:40]
    (folder / HEAD_FILE).write_bytes(data)
    card = json.loads((folder / CARD_FILE).read_text())
    card["head_sha256"] = hashlib.sha256(data).hexdigest()
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ProverFolderError, match=f"{HEAD_FILE} cannot be read"):
        LearnedMetaProver.from_pretrained(folder, feature_lm=tiny_lm)


def test_card_naming_another_feature_model_is_an_error(trained, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mrt_env.lm.testing import tiny_random_lm

    folder = _copy(trained[1], tmp_path)
    card = json.loads((folder / CARD_FILE).read_text())
    card["feature_model_fingerprint"] = "0123456789abcdef"
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ProverFolderError, match=f"{CARD_FILE} names feature model 'tiny'"):
        LearnedMetaProver.from_pretrained(folder)
    with pytest.raises(ProverFolderError, match="does not exist"):
        LearnedMetaProver.from_pretrained(tmp_path / "missing", feature_lm=tiny_random_lm())


def test_feature_model_with_another_tokenizer_than_the_policy_names_both(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    from mrt_env.lm.testing import tiny_random_lm

    policy = tiny_random_lm(seed=0)
    with pytest.raises(ValueError, match="different tokenizers") as error:
        LearnedMetaProver(tiny_lm, ProbeHead(96), layer=4, policy_lm=policy)
    assert tiny_lm.name in str(error.value) and policy.name in str(error.value)
    with pytest.raises(ValueError, match="hidden size"):
        LearnedMetaProver(tiny_lm, ProbeHead(7), layer=4)


def test_the_shipped_tiny_prover_loads_by_name_with_its_figures() -> None:
    prover = LearnedMetaProver.from_pretrained("tiny")
    card = prover.card
    assert card["feature_model"] == "tiny:explain" and card["labels"]["k"] == [8]
    assert card["template"] == "tiny-explain" and card["features"] == "hidden+gold"
    assert {"results", "jstar_share_graded", "command"} <= set(card["calibration"])
    assert card["calibration"]["jstar_share_graded"] >= 0.25  # measured on a graded set
    [estimate] = prover.estimate([ProverRequest("q", PROMPT, "19", "12+7=19.")])
    assert 0 < estimate.j < 1 and estimate.source == "learned"


def test_the_classic_tiny_prover_reads_the_classic_tiny_lm() -> None:
    from mrt_env.tinymath import load_tiny_lm

    prover = LearnedMetaProver.from_pretrained("tiny:classic")
    assert prover.card["feature_model"] == "tiny:classic" and prover.template.name == "tiny"
    assert prover.extractor.lm.name.endswith("tiny-lm")
    with pytest.raises(ProverFolderError, match="fingerprint"):  # not the default tiny LM
        LearnedMetaProver.from_pretrained("tiny:classic", feature_lm=load_tiny_lm())


def test_the_shipped_graded_prover_follows_checks_and_slips() -> None:
    """prover-tiny-graded against the graded tiny LM's own forced answers (its card, K = 64:
    J = 0.594 after an unchecked right attempt, 0.813 after one passed recomputation, 0.109
    after a dropped carry)."""
    prover = LearnedMetaProver.from_pretrained("tiny:graded")
    card = prover.card
    assert card["feature_model"] == "tiny:graded" and card["features"] == "hidden+gold"
    assert card["labels"]["policies"] == ["tiny:graded"] and card["labels"]["k"] == [8]
    assert card["calibration"]["jstar_share_graded"] >= 0.25
    attempt = "47+38: 7+8=15, 4+3+1=8, so 85."
    redo = "\n\nBut let me double-check: 47+38: 7+8=15, 4+3+1=8, so 85 (before: 85). Same."
    slipped = "47+38: 7+8=15, 4+3=7, so 75."
    prompt = "Problem: 47+38\n<think>\n"
    right, checked, wrong = (
        e.j
        for e in prover.estimate(
            [ProverRequest("q", prompt, "85", p) for p in (attempt, attempt + redo, slipped)]
        )
    )
    assert 0.35 < right < 0.8 and checked > right + 0.1 and wrong < 0.25


def test_feature_model_fingerprint_ignores_dtype_but_not_weights(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    import copy

    from mrt_env.prover.features import model_fingerprint

    same = copy.deepcopy(tiny_lm.model).to(torch.bfloat16)
    assert model_fingerprint(same) == model_fingerprint(tiny_lm.model)
    other = copy.deepcopy(tiny_lm.model)
    with torch.no_grad():
        next(other.parameters()).add_(0.05)
    assert model_fingerprint(other) != model_fingerprint(tiny_lm.model)


def test_padded_batches_give_the_features_of_one_input_at_a_time(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    from mrt_env.prover.features import FeatureExtractor

    requests = [ProverRequest("q", PROMPT, "19", p) for p in ("", "12+7=19.", "12+7=1", "x")]
    one = FeatureExtractor(tiny_lm, "tiny", batch_size=1).features(requests, (2, 4))
    padded = FeatureExtractor(tiny_lm, "tiny", batch_size=64).features(requests, (2, 4))
    assert torch.allclose(one, padded, atol=1e-4)
    assert not torch.allclose(one[0], one[1], atol=1e-3)  # different prefixes differ


def test_gold_continuation_follows_the_template_suffix() -> None:
    from mrt_env.prover.features import gold_continuation

    assert gold_continuation("a\n</think>\n\\boxed{", "19") == "19}"
    assert gold_continuation("a\n</think>", "19") == "\n\\boxed{19}"


def test_gold_features_are_the_reference_answer_log_likelihood(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    """s = sum of log p(gold token | everything before it), computed here one input at a time
    from the full logits in float64; the extractor reads it from a padded batch."""
    from mrt_env.prover.features import FeatureExtractor
    from mrt_env.templates import resolve_template

    template = resolve_template(None, tiny_lm)  # tiny-explain: its suffix ends "</think>\n"
    prefixes = ("", "12+7=19.", "12+7=18.", "12+7=19.\n</think>\n\\boxed{19}")
    requests = [ProverRequest("q", PROMPT, "19", p) for p in prefixes]
    extractor = FeatureExtractor(tiny_lm, None, features="hidden+gold")
    found = extractor.features(requests, (4,))
    hidden = FeatureExtractor(tiny_lm, None, batch_size=1).features(requests, (4,))
    assert found.shape == (4, 1, 96 + 2)
    assert torch.allclose(found[:, :, :96], hidden, atol=1e-4)  # same states as "hidden"
    for row, prefix in enumerate(prefixes):
        meta = template.render_meta(PROMPT, prefix)
        # after a suffix that ends a line the answer is boxed at once; after </think> (the
        # natural end) on a new line
        answer = "\\boxed{19}" if meta.endswith("\n") else "\n\\boxed{19}"
        context, target = tiny_lm.encode(meta), tiny_lm.encode(answer)
        with torch.no_grad():
            logits = tiny_lm.model(torch.tensor([context + target])).logits[0].double()
        log_p = logits.log_softmax(-1)
        s = sum(float(log_p[len(context) - 1 + i, t]) for i, t in enumerate(target))
        assert float(found[row, 0, 96]) == pytest.approx(s, rel=1e-4, abs=1e-4)
        assert float(found[row, 0, 97]) == pytest.approx(np.log1p(-np.exp(s)), abs=1e-3)
    prompt = "Problem: 47+38\n<think>\n"
    attempts = ("47+38: 7+8=15, 4+3+1=8, so 85.", "47+38: 7+8=15, 4+3=7, so 75.")
    right, wrong = extractor.features([ProverRequest("r", prompt, "85", a) for a in attempts], (4,))
    assert float(right[0, 96]) > float(wrong[0, 96])  # it prefers the answer its work wrote


def test_one_forward_pass_per_estimate_call(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    prover = LearnedMetaProver(tiny_lm, ProbeHead(98), layer=3, features="hidden+gold")
    calls: list[int] = []
    handle = tiny_lm.model.register_forward_hook(lambda m, i, o: calls.append(1))
    try:
        requests = [ProverRequest("q", PROMPT, "19", "12+7=" * n) for n in range(7)]
        prover.estimate(requests)
    finally:
        handle.remove()
    assert len(calls) == 1 and prover.forward_passes == 1


def test_features_from_a_model_in_train_mode_are_read_in_eval_mode(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    from mrt_env.prover.features import FeatureExtractor

    extractor = FeatureExtractor(tiny_lm, "tiny")
    request = ProverRequest("q", PROMPT, "19", "12+7=19.")
    tiny_lm.model.eval()
    expected = extractor.features([request], (2,))
    tiny_lm.model.train()
    try:
        assert torch.equal(extractor.features([request], (2,)), expected)
        assert tiny_lm.model.training  # put back as it was
    finally:
        tiny_lm.model.eval()


def test_follow_policy_reads_the_policy_itself(trained, tiny_lm) -> None:  # type: ignore[no-untyped-def]
    _, folder = trained
    prover = LearnedMetaProver.from_pretrained(folder, policy_lm=tiny_lm, follow_policy=True)
    assert prover.extractor.lm is tiny_lm
    with pytest.raises(ValueError, match="follow_policy=True reads features from policy_lm"):
        LearnedMetaProver.from_pretrained(folder, follow_policy=True)


def test_a_call_over_the_token_cap_is_split_into_passes_with_the_same_features(tiny_lm) -> None:  # type: ignore[no-untyped-def]
    from mrt_env.prover.features import FeatureExtractor

    requests = [ProverRequest("q", PROMPT, "19", "12+7=19. " * n) for n in range(6)]
    lengths = [len(FeatureExtractor(tiny_lm, "tiny").input_ids(r)) for r in requests]
    cap = 2 * max(lengths)  # two of the longest inputs fit in one pass, three do not
    capped = FeatureExtractor(tiny_lm, "tiny", max_batch_tokens=cap)
    passes = capped._passes(lengths)
    assert sorted(i for rows in passes for i in rows) == list(range(6))
    assert all(len(rows) * max(lengths[i] for i in rows) <= cap for rows in passes)
    assert len(passes) >= 3 and len(FeatureExtractor(tiny_lm, "tiny")._passes(lengths)) == 1
    one = FeatureExtractor(tiny_lm, "tiny", batch_size=1).features(requests, (3,))
    assert torch.allclose(capped.features(requests, (3,)), one, atol=1e-4)
