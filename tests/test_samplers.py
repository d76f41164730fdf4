"""Samplers and the streaming generation loop on fake step functions (seeded, no model)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpcore.decoding import (
    SAMPLERS,
    GreedySampler,
    SampledToken,
    Sampler,
    TemperatureSampler,
    TopKSampler,
    TopPSampler,
    apply_repetition_penalty,
    get_sampler,
    make_rng,
)
from nlpcore.numpy_rnn import softmax
from nlpcore.tokenizer import BOS_ID, EOS_ID, PAD_ID

VOCAB = 40
WORDS = np.arange(4, VOCAB)  # 0-3 are the specials


def varied_logits(seed=0, vocab=VOCAB):
    """float32 [V]: distinct, well-spread logits; the specials are unlikely but possible."""
    logits = np.random.default_rng(seed).normal(0.0, 1.5, vocab).astype(np.float32)
    logits[[PAD_ID, BOS_ID, EOS_ID]] = -30.0
    return logits


class FixedStep:
    """A fake decoder giving the same logits for every row at every step; counts its calls."""

    def __init__(self, logits):
        self.logits = np.asarray(logits, np.float32)
        self.inputs: list[int] = []

    def __call__(self, ids, state):
        assert ids.shape == (1,) and ids.dtype == np.int32
        self.inputs.append(int(ids[0]))
        return np.tile(self.logits, (len(ids), 1)), state, None


class CountingStep:
    """Logits chosen by the number of calls so far (kept in the state, shape [1])."""

    def __init__(self, logits_for_call):
        self.logits_for_call = logits_for_call
        self.calls = 0

    def __call__(self, ids, state):
        self.calls += 1
        (count,) = state
        return self.logits_for_call(int(count[0]))[None], (count + 1,), None


def generate(sampler, step, prompt=(BOS_ID,), max_new_tokens=30, **options):
    """(tokens, reason) of one whole run."""
    stream = sampler.sample(step, prompt, None, max_new_tokens, **options)
    tokens = []
    while True:
        try:
            tokens.append(next(stream))
        except StopIteration as stop:
            return tokens, stop.value


# ---------------------------------------------------------------- choosing a token
def test_greedy_is_argmax_and_ignores_temperature():
    logits = np.random.default_rng(3).normal(size=(50, VOCAB)).astype(np.float32)
    logits[:, [PAD_ID, BOS_ID]] = -100.0
    ids, probabilities = GreedySampler().next_tokens(logits, None, make_rng(0))
    assert ids.tolist() == np.argmax(logits, axis=1).tolist()
    np.testing.assert_allclose(probabilities, softmax(logits).max(axis=1), rtol=1e-6)
    cold = get_sampler("greedy", temperature=0.1)
    np.testing.assert_array_equal(cold.distribution(logits), GreedySampler().distribution(logits))


def test_greedy_breaks_ties_towards_the_lower_id():
    logits = np.zeros(VOCAB, np.float32)
    logits[[9, 7, 30]] = 2.0
    tokens, _ = generate(GreedySampler(), FixedStep(logits), max_new_tokens=3)
    assert [t.id for t in tokens] == [7, 7, 7]


def test_temperature_is_applied_once_in_float32():
    logits = varied_logits(1)
    for temperature in (0.5, 1.0, 2.0):
        sampler = TemperatureSampler(temperature=temperature, forbidden_ids=())
        distribution = sampler.distribution(logits)
        assert distribution.dtype == np.float32
        expected = softmax((logits / np.float32(temperature))[None])
        np.testing.assert_allclose(distribution, expected, rtol=1e-5, atol=1e-7)


def entropy(p):
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def test_lower_temperature_sharpens_and_higher_flattens():
    logits = varied_logits(2)
    sharp, plain, flat = (TemperatureSampler(temperature=t).distribution(logits)[0] for t in (0.5, 1.0, 2.0))
    assert sharp.max() > plain.max() > flat.max()
    assert entropy(sharp) < entropy(plain) < entropy(flat)
    assert sharp.argmax() == plain.argmax() == flat.argmax()


def test_top_k_never_samples_outside_the_k_best():
    logits = varied_logits(4)
    sampler = TopKSampler(k=5)
    best_five = set(np.argsort(-logits, kind="stable")[:5].tolist())
    draws, probabilities = sampler.next_tokens(np.tile(logits, (20000, 1)), None, make_rng(11))
    assert set(draws.tolist()) == best_five
    # The draws follow the renormalised top-5 distribution.
    kept = np.array(sorted(best_five))
    expected = softmax(logits[kept][None])[0]
    frequencies = np.array([(draws == token).mean() for token in kept])
    np.testing.assert_allclose(frequencies, expected, atol=0.015)
    np.testing.assert_allclose(probabilities, expected[np.searchsorted(kept, draws)], rtol=1e-5)


def test_top_k_ties_at_the_boundary_keep_the_lower_ids():
    logits = np.array([[-9, -9, -9, -9, 1.0, 3.0, 2.0, 2.0, 2.0, 0.0]], np.float32)
    distribution = TopKSampler(k=3).distribution(logits)[0]
    assert np.nonzero(distribution)[0].tolist() == [5, 6, 7]
    assert (TopKSampler(k=0).distribution(logits)[0][4:] > 0).all()  # 0 keeps everything


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-20, 20, allow_nan=False, width=32), min_size=2, max_size=30),
    st.integers(1, 35),
    st.floats(0.1, 3.0),
)
def test_top_k_keeps_exactly_the_k_highest(values, k, temperature):
    logits = np.array([values], np.float32)
    sampler = TopKSampler(k=k, temperature=temperature, forbidden_ids=())
    prepared = sampler.prepare_logits(logits)[0]  # temperature can turn near-ties into ties
    kept = np.isfinite(sampler.filter_logits(prepared[None]))[0]
    assert kept.sum() == min(k, len(values))
    assert prepared[kept].min() >= prepared[~kept].max(initial=-np.inf)
    assert (sampler.distribution(logits)[0][~kept] == 0).all()


def test_top_p_never_samples_outside_the_nucleus():
    probabilities = np.array([0.0, 0.0, 0.0, 0.0, 0.35, 0.25, 0.2, 0.1, 0.06, 0.04])
    logits = np.log(np.maximum(probabilities, 1e-30)).astype(np.float32)
    sampler = TopPSampler(p=0.75)
    # 0.35 + 0.25 = 0.6 < 0.75 ≤ 0.35 + 0.25 + 0.2: the nucleus is {4, 5, 6}.
    draws, drawn_probabilities = sampler.next_tokens(np.tile(logits, (20000, 1)), None, make_rng(5))
    assert set(draws.tolist()) == {4, 5, 6}
    np.testing.assert_allclose(drawn_probabilities[draws == 4], 0.35 / 0.8, rtol=1e-5)
    frequencies = [(draws == token).mean() for token in (4, 5, 6)]
    np.testing.assert_allclose(frequencies, np.array([0.35, 0.25, 0.2]) / 0.8, atol=0.015)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(-12, 12, allow_nan=False, width=32), min_size=1, max_size=30),
    st.floats(0.01, 1.0),
    st.floats(0.2, 3.0),
)
def test_top_p_nucleus_is_the_minimal_most_likely_set(values, p, temperature):
    logits = np.array([values], np.float32)
    sampler = TopPSampler(p=p, temperature=temperature, forbidden_ids=())
    prepared = sampler.prepare_logits(logits)
    full = softmax(prepared)[0].astype(np.float64)
    kept = sampler.nucleus_mask(prepared)[0]
    assert kept.any()  # never empty
    assert full[kept].min() >= full[~kept].max(initial=0.0)  # the most likely tokens
    # float32 probabilities sum to 1 within ~1e-7: the mass checks allow for that
    every_possible_token = kept.sum() == (full > 0).sum()
    assert every_possible_token or full[kept].sum() >= p - 1e-6  # enough mass
    assert full[kept].sum() - full[kept].min() < p + 1e-6  # dropping any kept token loses it: minimal
    final = sampler.distribution(logits)[0]
    assert (final[~kept] == 0).all() and final.sum() == pytest.approx(1.0, abs=1e-6)


def test_top_p_of_one_keeps_every_token():
    logits = varied_logits(6)
    assert (TopPSampler(p=1.0, forbidden_ids=()).distribution(logits) > 0).all()


def test_forbidden_ids_are_never_sampled():
    logits = np.zeros(VOCAB, np.float32)
    logits[[PAD_ID, BOS_ID]] = 10.0
    for name in SAMPLERS:
        distribution = get_sampler(name).distribution(logits)[0]
        assert distribution[PAD_ID] == distribution[BOS_ID] == 0.0, name


def test_inverse_cdf_draw_never_returns_an_impossible_token():
    class AlmostOne:
        def random(self, n):
            return np.full(n, np.nextafter(1.0, 0.0))

    probabilities = np.array([[0.2, 0.8, 0.0, 0.0], [0.5, 0.0, 0.5, 0.0]], np.float32)
    assert Sampler().get_next_token(probabilities, AlmostOne()).tolist() == [1, 2]


def test_nothing_to_sample_is_an_error():
    with pytest.raises(ValueError, match="no token can be sampled"):
        TemperatureSampler().distribution(np.full((1, 5), -np.inf, np.float32))


# ---------------------------------------------------------------- repetition penalty
def test_repetition_penalty_divides_positive_and_multiplies_negative_logits_once():
    logits = np.array([[2.0, -1.0, 3.0, 0.5, -2.0]], np.float32)
    penalised = apply_repetition_penalty(logits, np.array([[0, 1, 0, 0, -1]]), 2.0)
    np.testing.assert_allclose(penalised, [[1.0, -2.0, 3.0, 0.5, -2.0]])
    np.testing.assert_array_equal(logits, [[2.0, -1.0, 3.0, 0.5, -2.0]])  # the input is left alone
    np.testing.assert_array_equal(apply_repetition_penalty(logits, np.array([[0, 2]]), 1.0), logits)


def test_repetition_penalty_comes_before_temperature():
    logits = np.array([4.0, 1.0, 1.0, 1.0, 2.0], np.float32)
    sampler = TemperatureSampler(temperature=2.0, repetition_penalty=4.0, forbidden_ids=())
    np.testing.assert_allclose(sampler.prepare_logits(logits, np.array([[0]])), [[0.5, 0.5, 0.5, 0.5, 1.0]])


def sticky_step():
    """Favours repeating the previous token: its logit is 3, every other word's 1."""

    def step(ids, state):
        logits = np.full((len(ids), VOCAB), 1.0, np.float32)
        logits[:, :4] = -np.inf
        logits[np.arange(len(ids)), ids] = np.where(ids >= 4, 3.0, 1.0)
        return logits, state, None

    return step


def repeats(tokens):
    ids = [t.id for t in tokens]
    return sum(token in ids[:i] for i, token in enumerate(ids))


def test_repetition_penalty_lowers_repeats():
    plain, penalised = 0, 0
    for seed in range(20):
        tokens, _ = generate(TemperatureSampler(), sticky_step(), max_new_tokens=25, rng=seed)
        plain += repeats(tokens)
        tokens, _ = generate(TemperatureSampler(repetition_penalty=3.0), sticky_step(), max_new_tokens=25, rng=seed)
        penalised += repeats(tokens)
    assert penalised < 0.6 * plain


def test_repetition_penalty_counts_the_prompt():
    logits = np.full(VOCAB, 1.0, np.float32)
    logits[:4] = -np.inf
    logits[9] = 1.5
    assert generate(GreedySampler(), FixedStep(logits), max_new_tokens=1)[0][0].id == 9
    tokens, _ = generate(GreedySampler(repetition_penalty=2.0), FixedStep(logits), prompt=(BOS_ID, 9), max_new_tokens=1)
    assert tokens[0].id == 4


# ---------------------------------------------------------------- the loop
def test_same_seed_same_tokens_different_seeds_differ():
    step = FixedStep(varied_logits(7) * 0.3)
    for name in ("temperature", "top_k", "top_p"):
        sampler = get_sampler(name, k=20, p=0.95)
        first = [t.id for t in generate(sampler, step, max_new_tokens=40, rng=123)[0]]
        again = [t.id for t in generate(sampler, step, max_new_tokens=40, rng=np.random.default_rng(123))[0]]
        other = [t.id for t in generate(sampler, step, max_new_tokens=40, rng=124)[0]]
        assert first == again and first != other, name


def test_a_generator_passed_in_is_used_and_advanced():
    step, rng = FixedStep(varied_logits(8) * 0.3), np.random.default_rng(1)
    first = [t.id for t in generate(TemperatureSampler(), step, max_new_tokens=20, rng=rng)[0]]
    second = [t.id for t in generate(TemperatureSampler(), step, max_new_tokens=20, rng=rng)[0]]
    assert first != second
    assert make_rng(rng) is rng


def test_the_prompt_is_fed_in_order_then_each_sampled_token():
    step = FixedStep(varied_logits(9))
    tokens, reason = generate(TopKSampler(k=8), step, prompt=(BOS_ID, 21, 22), max_new_tokens=5, rng=0)
    assert reason == "length" and len(tokens) == 5
    # Three prompt calls, then one call per token except the last (no wasted step).
    assert step.inputs == [BOS_ID, 21, 22] + [t.id for t in tokens[:-1]]


def test_yielded_probability_is_the_final_distribution_value():
    logits = varied_logits(10)
    sampler = TopPSampler(p=0.6, temperature=0.7)
    tokens, _ = generate(sampler, FixedStep(logits), max_new_tokens=10, rng=4)
    context = np.array([[BOS_ID]])
    distribution = sampler.distribution(logits, context)[0]
    first = tokens[0]
    assert isinstance(first, SampledToken) and isinstance(first.id, int) and isinstance(first.prob, float)
    assert first.prob == pytest.approx(float(distribution[first.id]))


def test_eos_stops_generation_and_is_not_yielded():
    def logits_for_call(count):
        logits = np.full(VOCAB, -np.inf, np.float32)
        logits[EOS_ID if count >= 3 else 10 + count] = 0.0
        return logits

    step = CountingStep(logits_for_call)
    stream = TopKSampler(k=3).sample(step, [BOS_ID], (np.zeros(1, np.int64),), max_new_tokens=50, rng=0)
    tokens = list(stream)
    assert [t.id for t in tokens] == [10, 11, 12] and all(t.prob == 1.0 for t in tokens)
    assert step.calls == 4


def test_eos_id_none_never_stops_early():
    logits = np.full(VOCAB, -np.inf, np.float32)
    logits[EOS_ID] = 0.0
    tokens, reason = generate(GreedySampler(forbidden_ids=()), FixedStep(logits), max_new_tokens=4, eos_id=None)
    assert [t.id for t in tokens] == [EOS_ID] * 4 and reason == "length"
    tokens, reason = generate(GreedySampler(), FixedStep(logits), max_new_tokens=4)
    assert tokens == [] and reason == "eos"


def test_a_cancel_flag_stops_the_loop_between_steps():
    step = FixedStep(varied_logits(12))
    cancel = threading.Event()
    stream = TopKSampler(k=10).sample(step, [BOS_ID, 5], None, 100, rng=0, should_stop=cancel.is_set)
    received = []
    for token in stream:
        received.append(token)
        if len(received) == 3:
            cancel.set()  # e.g. the user pressed Stop while the third token was shown
    assert len(received) == 3
    assert len(step.inputs) == 2 + 2  # prompt, then the steps for tokens 2 and 3; none after the flag
    cancel_now = threading.Event()
    cancel_now.set()
    tokens, reason = generate(TopKSampler(k=10), FixedStep(varied_logits(12)), should_stop=cancel_now.is_set)
    assert tokens == [] and reason == "cancelled"


def test_stop_reason_is_the_generator_return_value():
    def consume():
        return (yield from GreedySampler().sample(FixedStep(varied_logits(13)), [BOS_ID], None, 3))

    stream = consume()
    assert [type(t) for t in [next(stream), next(stream), next(stream)]] == [SampledToken] * 3
    with pytest.raises(StopIteration) as stopped:
        next(stream)
    assert stopped.value.value == "length"


def test_loop_arguments_are_checked():
    with pytest.raises(ValueError, match="at least one id"):  # at the call, not at the first token
        GreedySampler().sample(FixedStep(varied_logits()), [], None, 3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        GreedySampler().sample(FixedStep(varied_logits()), [BOS_ID], None, -1)
    step = FixedStep(varied_logits())
    assert generate(GreedySampler(), step, max_new_tokens=0) == ([], "length") and step.inputs == []


# ---------------------------------------------------------------- choosing a sampler
def test_samplers_are_chosen_by_name():
    assert isinstance(get_sampler("greedy"), GreedySampler)
    assert isinstance(get_sampler("temperature", temperature=0.8), TemperatureSampler)
    top_k = get_sampler("top_k", k=7, temperature=0.5, p=0.9, repetition_penalty=1.2)
    assert isinstance(top_k, TopKSampler) and (top_k.k, top_k.temperature, top_k.repetition_penalty) == (7, 0.5, 1.2)
    top_p = get_sampler("top_p", p=0.8, k=40)
    assert isinstance(top_p, TopPSampler) and top_p.p == 0.8 and not hasattr(top_p, "k")
    assert "TopPSampler(" in repr(top_p)
    with pytest.raises(ValueError, match="unknown sampler"):
        get_sampler("beam")
    with pytest.raises(TypeError, match="top_kk"):
        get_sampler("top_k", top_kk=3)


def test_sampler_names_match_the_generation_options():
    from nlpcore.services import SAMPLERS as OPTION_NAMES

    assert tuple(SAMPLERS) == tuple(OPTION_NAMES)


@pytest.mark.parametrize(
    "name, options",
    [
        ("temperature", {"temperature": 0.0}),
        ("top_k", {"k": -1}),
        ("top_p", {"p": 0.0}),
        ("top_p", {"p": 1.5}),
        ("greedy", {"repetition_penalty": 0.0}),
    ],
)
def test_invalid_options_are_rejected(name, options):
    with pytest.raises(ValueError):
        get_sampler(name, **options)
