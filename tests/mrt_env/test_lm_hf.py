"""HFLanguageModel on a tiny random Llama: exactness against transformers, seeding, stops, work."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from mrt_env.lm.base import LanguageModel, SamplingParams, find_stop  # noqa: E402
from mrt_env.lm.hf import HFLanguageModel  # noqa: E402
from mrt_env.lm.sampling import sample_tokens  # noqa: E402
from mrt_env.lm.testing import char_tokenizer, tiny_random_lm, tiny_random_model  # noqa: E402

PROMPTS = ["Problem: 1+1?\n<think>\n", "ab", "The answer is 12 because 3*4 = 12.\n"]


@pytest.fixture(scope="module")
def lm() -> HFLanguageModel:
    return tiny_random_lm(seed=0)


def fresh(**kwargs: object) -> HFLanguageModel:
    return tiny_random_lm(seed=0, **kwargs)


def assert_same_samples(got: list, expected: list) -> None:
    """Equal texts, tokens and finish reasons; logprobs equal up to batch-shape float noise."""
    assert [(c.text, c.token_ids, c.finish_reason) for c in got] == [
        (c.text, c.token_ids, c.finish_reason) for c in expected
    ]
    for a, b in zip(got, expected, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-3)


def reference_greedy(lm: HFLanguageModel, prompt: str, steps: int) -> list[int]:
    ids = torch.tensor([lm.encode(prompt)])
    out = lm.model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=steps, do_sample=False
    )
    tokens = out[0, ids.shape[1] :].tolist()
    return tokens[: tokens.index(2)] if 2 in tokens else tokens


def test_is_a_language_model(lm: HFLanguageModel) -> None:
    assert isinstance(lm, LanguageModel)
    assert lm.eos_token_id == 2
    assert lm.device.type == "cpu"


def test_encode_decode_count_round_trip(lm: HFLanguageModel) -> None:
    text = "Wait, 3 + 4 = 7.\n\nSo x=7"
    assert lm.decode(lm.encode(text)) == text
    assert lm.count_tokens(text) == len(text)  # one token per character, no BOS added


def test_greedy_matches_transformers_generate_token_for_token(lm: HFLanguageModel) -> None:
    # Prompts of different lengths share one left-padded batch; each must match generate().
    out = lm.generate(PROMPTS, SamplingParams(max_new_tokens=24, temperature=0.0), seeds=[0, 1, 2])
    for prompt, [completion] in zip(PROMPTS, out, strict=True):
        assert list(completion.token_ids) == reference_greedy(lm, prompt, 24)


def test_seeds_make_samples_independent_of_batch_composition(lm: HFLanguageModel) -> None:
    params = SamplingParams(max_new_tokens=20, temperature=1.0, top_p=0.9, n=3)
    [alone] = fresh(prefix_cache_size=0).generate([PROMPTS[0]], params, seeds=[5])
    mixed = lm.generate([PROMPTS[1], PROMPTS[0], PROMPTS[2]], params, seeds=[1, 5, 2])
    assert_same_samples(mixed[1], alone)
    assert len({c.text for c in alone}) > 1  # the n samples use different generators


def test_same_seeds_same_samples_and_other_seeds_differ(lm: HFLanguageModel) -> None:
    params = SamplingParams(max_new_tokens=16, n=2)
    first = lm.generate(PROMPTS, params, seeds=[7, 8, 9])
    for again, group in zip(lm.generate(PROMPTS, params, seeds=[7, 8, 9]), first, strict=True):
        assert_same_samples(again, group)
    assert lm.generate(PROMPTS, params, seeds=[17, 18, 19]) != first


def test_logprobs_equal_teacher_forced_log_softmax(lm: HFLanguageModel) -> None:
    params = SamplingParams(max_new_tokens=12, temperature=0.7, top_p=0.8)
    [[completion]] = lm.generate([PROMPTS[0]], params, seeds=[3])
    prompt_ids = lm.encode(PROMPTS[0])
    ids = torch.tensor([prompt_ids + list(completion.token_ids)])
    with torch.no_grad():
        logprobs = torch.log_softmax(lm.model(ids).logits[0].float(), dim=-1)
    start = len(prompt_ids) - 1
    expected = [logprobs[start + i, t].item() for i, t in enumerate(completion.token_ids)]
    assert completion.logprobs == pytest.approx(expected, abs=1e-4)


def test_stop_string_cuts_text_and_tokens(lm: HFLanguageModel) -> None:
    greedy = SamplingParams(max_new_tokens=24, temperature=0.0)
    [[full]] = lm.generate([PROMPTS[0]], greedy)
    stop = full.text[5:8]
    offset = full.text.find(stop, 1)
    [[cut]] = lm.generate([PROMPTS[0]], SamplingParams(24, temperature=0.0, stop=("zzz", stop)))
    assert (cut.text, cut.finish_reason, cut.stop_string) == (full.text[:offset], "stop", stop)
    assert cut.token_ids == full.token_ids[:offset]
    assert len(cut.logprobs) == len(cut.token_ids)


def test_stop_string_at_offset_zero_is_ignored(lm: HFLanguageModel) -> None:
    greedy = SamplingParams(max_new_tokens=24, temperature=0.0)
    [[full]] = lm.generate([PROMPTS[0]], greedy)
    opening = full.text[:2]
    assert find_stop(full.text, [opening]) is None  # it never recurs, so only offset 0 matches
    [[same]] = lm.generate([PROMPTS[0]], SamplingParams(24, temperature=0.0, stop=(opening,)))
    assert_same_samples([same], [full])


def test_eos_ends_a_sample_without_the_eos_token() -> None:
    lm = fresh()
    [[full]] = lm.generate([PROMPTS[0]], SamplingParams(max_new_tokens=10, temperature=0.0))
    eos = full.token_ids[4]
    lm.model.generation_config.eos_token_id = [2, eos]
    lm = HFLanguageModel(lm.model, lm.tokenizer)
    [[ended]] = lm.generate([PROMPTS[0]], SamplingParams(max_new_tokens=10, temperature=0.0))
    first = full.token_ids.index(eos)
    assert (ended.finish_reason, ended.token_ids) == ("eos", full.token_ids[:first])
    assert full.finish_reason == "length"


def test_n_samples_share_one_prefill() -> None:
    lm = fresh()
    params = SamplingParams(max_new_tokens=8, n=8)
    out = lm.generate([PROMPTS[0], PROMPTS[0]], params, seeds=[1, 2])
    assert [len(group) for group in out] == [8, 8]
    assert lm.stats.prefill_tokens == len(PROMPTS[0])  # duplicates and n copies: one prefill
    assert lm.stats.prefill_calls == 1
    assert lm.stats.decode_steps <= 7
    assert lm.stats.forward_calls == lm.stats.prefill_calls + lm.stats.decode_steps


def test_prefix_cache_prefills_only_new_tokens_and_changes_nothing() -> None:
    lm, plain = fresh(), fresh(prefix_cache_size=0)
    params = SamplingParams(max_new_tokens=10, temperature=0.8, n=2)
    grown = [PROMPTS[0], PROMPTS[0] + "First, 1+1=2.", PROMPTS[0] + "First, 1+1=2. So 2."]
    for prompt in grown:
        lm.stats.reset()
        [got] = lm.generate([prompt], params, seeds=[4])
        assert_same_samples(got, plain.generate([prompt], params, seeds=[4])[0])
    assert lm.stats.reused_prefix_tokens == len(grown[1])
    assert lm.stats.prefill_tokens == len(grown[2]) - len(grown[1])


@pytest.mark.parametrize(
    ("tolerance", "slack", "calls"),
    [
        (0.25, 256, 2),  # CUDA defaults: short prompts together, the long one alone
        (None, None, 3),  # CPU defaults: no padding at all, one prefill per length
    ],
)
def test_prompts_of_very_different_lengths_are_bucketed_and_exact(
    tolerance: float | None, slack: int | None, calls: int
) -> None:
    lm = fresh(prefix_cache_size=0, padding_tolerance=tolerance, padding_slack=slack)
    prompts = ["x", "y" * 400, "z" * 3]
    out = lm.generate(prompts, SamplingParams(max_new_tokens=6, temperature=0.0))
    assert lm.stats.prefill_calls == calls
    assert lm.stats.prefill_padded_tokens < 2 * sum(len(p) for p in prompts)
    for prompt, [completion] in zip(prompts, out, strict=True):
        assert list(completion.token_ids) == reference_greedy(lm, prompt, 6)


@pytest.mark.parametrize(
    ("prompts", "seeds", "error"),
    [
        ("abc", None, TypeError),  # a bare string is not a batch of prompts
        (["a", "b"], [1], ValueError),  # one seed per prompt
    ],
)
def test_bad_arguments_raise(lm: HFLanguageModel, prompts, seeds, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        lm.generate(prompts, SamplingParams(max_new_tokens=2), seeds=seeds)


def test_zero_new_tokens_and_empty_batch(lm: HFLanguageModel) -> None:
    [[empty]] = lm.generate(["a"], SamplingParams(max_new_tokens=0))
    assert (empty.text, empty.token_ids, empty.finish_reason) == ("", (), "length")
    assert lm.generate([], SamplingParams(max_new_tokens=3)) == []


def test_nucleus_sampling_draws_only_from_the_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]])).repeat(1000, 1)
    uniforms = torch.linspace(0, 0.999, 1000, dtype=torch.float64)
    tokens, logprobs = sample_tokens(logits, uniforms, temperature=1.0, top_p=0.6)
    counts = torch.bincount(tokens, minlength=3).tolist()
    assert counts[2] == 0 and abs(counts[0] / 1000 - 0.625) < 0.01
    assert logprobs[0].item() == pytest.approx(torch.log(torch.tensor(0.5)).item())
    greedy, _ = sample_tokens(logits[:1], uniforms[:1], temperature=0.0, top_p=1.0)
    assert greedy.item() == 0


def test_char_tokenizer_and_model_are_deterministic() -> None:
    tokenizer = char_tokenizer()
    assert tokenizer.decode(tokenizer.encode("a\nb ~", add_special_tokens=False)) == "a\nb ~"
    first, second = tiny_random_model(seed=3), tiny_random_model(seed=3)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def test_bfloat16_weights_sample_on_cpu_and_match_greedy_generate() -> None:
    """The dtype handling of the CUDA default (bf16 weights) also runs, on the CPU."""
    lm = HFLanguageModel(tiny_random_model(seed=0).to(torch.bfloat16), char_tokenizer())
    for prompt in PROMPTS:  # one prompt per call: no padding, so bf16 rounding matches
        [[greedy]] = lm.generate([prompt], SamplingParams(max_new_tokens=12, temperature=0.0))
        ids = torch.tensor([lm.encode(prompt)])
        ref = lm.model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False
        )
        assert list(greedy.token_ids) == ref[0, ids.shape[1] :].tolist()[: len(greedy.token_ids)]
    sampled = lm.generate(PROMPTS, SamplingParams(max_new_tokens=12, temperature=0.8, n=2))
    assert all(torch.isfinite(torch.tensor(c.logprobs)).all() for row in sampled for c in row)


@pytest.mark.gpu
def test_cuda_bfloat16_runs_and_matches_greedy_generate() -> None:
    lm = HFLanguageModel(tiny_random_model(seed=0).to("cuda", torch.bfloat16), char_tokenizer())
    out = lm.generate(PROMPTS, SamplingParams(max_new_tokens=12, temperature=0.0))
    for prompt, [completion] in zip(PROMPTS, out, strict=True):
        ids = torch.tensor([lm.encode(prompt)], device="cuda")
        ref = lm.model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False
        )
        assert (
            list(completion.token_ids)
            == ref[0, ids.shape[1] :].tolist()[: len(completion.token_ids)]
        )


def test_from_pretrained_loads_a_saved_model_offline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = fresh()
    source.model.save_pretrained(tmp_path)
    source.tokenizer.save_pretrained(tmp_path)
    loaded = HFLanguageModel.from_pretrained(str(tmp_path), device="cpu")
    assert (loaded.name, loaded.model.dtype, loaded.device.type) == (
        str(tmp_path),
        torch.float32,
        "cpu",
    )
    params = SamplingParams(max_new_tokens=8, temperature=0.0)
    assert (
        loaded.generate(["ab"], params)[0][0].token_ids
        == source.generate(["ab"], params)[0][0].token_ids
    )


def test_from_pretrained_passes_backend_options(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = fresh()
    source.model.save_pretrained(tmp_path)
    source.tokenizer.save_pretrained(tmp_path)
    loaded = HFLanguageModel.from_pretrained(str(tmp_path), max_decode_rows=3)
    assert loaded.max_decode_rows == 3


def test_an_uncached_hub_id_offline_says_how_to_provide_the_model(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never touches the network
    with pytest.raises(OSError, match="not in the local Hugging Face cache") as error:
        HFLanguageModel.from_pretrained("mrt-gym-tests/no-such-model")
    message = str(error.value)
    assert "offline" in message and "path of a local model folder" in message
    assert "huggingface-cli download mrt-gym-tests/no-such-model" in message


def test_a_folder_that_is_no_model_is_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OSError, match="is a folder but not a loadable model"):
        HFLanguageModel.from_pretrained(str(tmp_path))


def test_growing_prompts_in_one_call_prefill_the_shared_part_once() -> None:
    lm, plain = fresh(min_shared_tokens=4), fresh(prefix_cache_size=0)
    base = PROMPTS[0] + "Let me think about it."
    prompts = [base + " Then 2.\n\nWait, 1+1=2.", base, base + " Then 2."]  # any order
    params = SamplingParams(max_new_tokens=6, temperature=1.0, n=2)
    out = lm.generate(prompts, params, seeds=[1, 2, 3])
    # each prompt reuses all of the longest shorter one: every distinct token runs once
    assert lm.stats.prefill_tokens == len(prompts[0])
    assert lm.stats.reused_prefix_tokens == len(prompts[1]) + len(prompts[2])
    assert lm.stats.prefill_calls == 3  # three waves
    for got, expected in zip(out, plain.generate(prompts, params, seeds=[1, 2, 3]), strict=True):
        assert_same_samples(got, expected)


@pytest.mark.parametrize("max_decode_rows", [None, 5])  # one batch; chunks of 5 samples
def test_rows_that_finish_early_are_dropped_without_changing_the_others(
    max_decode_rows: int | None,
) -> None:
    lm = fresh(prefix_cache_size=0, max_decode_rows=max_decode_rows)
    params = SamplingParams(max_new_tokens=30, stop=("A", "C"))
    seeds = list(range(12))
    together = lm.generate([PROMPTS[2]] * len(seeds), params, seeds=seeds)
    lengths = [len(group[0].token_ids) for group in together]
    assert min(lengths) < 5 and max(lengths) > 10  # the batch really shrank mid-decoding
    for seed, group in zip(seeds, together, strict=True):
        assert_same_samples(group, lm.generate([PROMPTS[2]], params, seeds=[seed])[0])


def test_preallocated_cache_grows_past_its_reserve() -> None:
    from mrt_env.lm.kv import cache_layers, make_cache

    keys = torch.arange(12.0).reshape(1, 1, 3, 4)
    cache = make_cache([(keys, -keys)], reserve=1)
    for step in range(3):  # the first write fits the reserve, the next ones grow the buffer
        new = torch.full((1, 1, 1, 4), float(step))
        cache.update(new, -new, 0)  # type: ignore[attr-defined]
    [(k, v)] = cache_layers(cache)
    expected = torch.cat(
        [keys, torch.tensor([0.0, 1.0, 2.0]).repeat_interleave(4).reshape(1, 1, 3, 4)], dim=2
    )
    assert torch.equal(k, expected) and torch.equal(v, -expected)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_kv_growing_in_chunks_gives_the_samples_of_the_preallocating_path(
    temperature: float,
) -> None:
    growing = fresh(prefix_cache_size=0, kv_growth_tokens=3)
    preallocating = fresh(prefix_cache_size=0, kv_growth_tokens=None)
    stop = ("A",) if temperature else ()  # greedy runs to the length cap, compared to generate
    params = SamplingParams(max_new_tokens=40, temperature=temperature, n=3, stop=stop)
    seeds = [4, 5, 6]
    got = growing.generate(PROMPTS, params, seeds=seeds)
    for a, b in zip(got, preallocating.generate(PROMPTS, params, seeds=seeds), strict=True):
        assert_same_samples(a, b)
    assert max(len(c.token_ids) for group in got for c in group) > 3  # the cache really grew
    if temperature == 0.0:
        for prompt, group in zip(PROMPTS, got, strict=True):
            assert list(group[0].token_ids) == reference_greedy(growing, prompt, 40)


def test_growing_cache_holds_only_the_chunks_it_needs() -> None:
    from mrt_env.lm.kv import cache_layers, make_cache

    keys = torch.zeros(2, 1, 3, 4)
    cache = make_cache([(keys, keys)], reserve=2, growth=2)
    layer = cache.layers[0]  # type: ignore[attr-defined]
    assert layer._keys.shape[-2] == 5
    for _ in range(3):
        cache.update(torch.ones(2, 1, 1, 4), torch.ones(2, 1, 1, 4), 0)  # type: ignore[attr-defined]
    assert layer._keys.shape[-2] == 7  # grew by one chunk of 2, not doubled to 10
    assert cache_layers(cache)[0][0].shape[-2] == 6


def test_decode_rows_are_bounded_by_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    import mrt_env.lm.hf as hf

    lm = fresh()
    per_token = 2 * 2 * 2 * 8 * 4  # keys+values x layers x kv heads x head dim x float32
    per_row = (10 + 90) * per_token + 40 * lm.model.config.vocab_size
    monkeypatch.setattr(hf, "free_memory_bytes", lambda device: 7 * per_row)
    assert lm.decode_rows(10, 90) == 3  # half of the free memory
    assert fresh(max_decode_rows=5).decode_rows(10, 90) == 5
    params = SamplingParams(max_new_tokens=90, temperature=1.0, n=2)
    out = lm.generate(PROMPTS, params, seeds=[0, 1, 2])  # decoded in three calls of 2 rows
    monkeypatch.undo()
    for a, b in zip(out, fresh().generate(PROMPTS, params, seeds=[0, 1, 2]), strict=True):
        assert_same_samples(a, b)


def test_prefix_cache_is_bounded_in_bytes() -> None:
    from mrt_env.lm.kv import layers_bytes

    lm = fresh(prefix_cache_max_bytes=3 * 30 * 256)  # ~three 30-token prompts of this model
    prompts = [f"{i}" * 30 for i in range(6)]
    lm.generate(prompts, SamplingParams(max_new_tokens=1), seeds=list(range(6)))
    assert 0 < lm.prefix_cache.bytes <= 3 * 30 * 256
    assert len(lm.prefix_cache) == 3  # the oldest were evicted
    assert layers_bytes([(torch.zeros(1, 2, 30, 8), torch.zeros(1, 2, 30, 8))]) * 2 == 30 * 256
    with pytest.raises(ValueError, match="kv_growth_tokens"):
        fresh(kv_growth_tokens=0)


def test_compute_dtype_samples_in_bfloat16_from_float32_weights() -> None:
    lm = fresh(prefix_cache_size=0, compute_dtype=torch.bfloat16)
    seen = []
    hook = lm.model.lm_head.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    params = SamplingParams(max_new_tokens=12, temperature=0.0)
    [[got]] = lm.generate([PROMPTS[0]], params, seeds=[0])
    hook.remove()
    assert set(seen) == {torch.bfloat16}
    assert next(lm.model.parameters()).dtype == torch.float32
    [[exact]] = fresh(prefix_cache_size=0).generate([PROMPTS[0]], params, seeds=[0])
    assert got.logprobs == pytest.approx(exact.logprobs, abs=0.1)


def test_a_negative_prefix_cache_size_fails_when_the_env_is_built() -> None:
    import gymnasium as gym

    import mrt_env  # noqa: F401  (registers MRTMath-v0)

    with pytest.raises(ValueError, match="max_entries must be >= 0, got -1"):
        gym.make("MRTMath-v0", lm_options={"prefix_cache_size": -1})
