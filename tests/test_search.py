"""Greedy and beam search on fake step functions (no model): exact ids, scores and attention."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlpcore.decoding import (
    SearchHypothesis,
    beam_search,
    copy_numbers,
    gather_state,
    greedy_search,
    length_penalty,
    map_state,
    replace_unknown,
    rerank,
    tile_state,
)
from nlpcore.decoding.ops import scores_and_log_normalizer, top_k_indices, top_k_mask
from nlpcore.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

A, B, C, D, E, F, G, H = range(4, 12)  # ordinary pieces; 0-3 are the specials
VOCAB = 12
SOURCE_LENGTH = 23


def model_log_probs(logits) -> np.ndarray:
    """float64 [N, V] log-probabilities, computed the way the searches do."""
    scores, log_normalizer = scores_and_log_normalizer(logits)
    return scores - log_normalizer[:, None]


def attention_position(prefix) -> int:
    """Where the fake decoder attends when predicting the piece after ``prefix``."""
    return (7 * len(prefix) + sum((i + 3) * token for i, token in enumerate(prefix))) % SOURCE_LENGTH


def expected_attention(ids) -> np.ndarray:
    rows = np.zeros((len(ids), SOURCE_LENGTH), np.float32)
    for t in range(len(ids)):
        rows[t, attention_position(tuple(ids[:t]))] = 1.0
    return rows


class TreeLM:
    """A fake decoder whose next-piece distribution is looked up by the row's history.

    tables: one dict per sentence, ``prefix tuple -> {piece: probability}``; a
    missing prefix ends the sentence (``</s>`` with probability 1). The history
    lives in the state, so the searches must reorder state rows correctly for
    the lookups to be right. Every call is checked and recorded.
    """

    def __init__(self, tables, vocab_size=VOCAB, max_steps=64, attention=True):
        self.tables = tables
        self.vocab_size = vocab_size
        self.max_steps = max_steps
        self.attention = attention
        self.calls: list[np.ndarray] = []

    def initial_state(self, sentences):
        sentences = np.asarray(sentences)
        return {
            "sentence": sentences,
            "decoder": (np.zeros((len(sentences), self.max_steps), np.int32), np.zeros(len(sentences), np.int64)),
        }

    def logits(self, sentence, prefix) -> np.ndarray:
        """float32 [V]: log-probabilities plus an offset that log-softmax must remove."""
        row = np.full(self.vocab_size, -np.inf, np.float32)
        for token, p in self.tables[sentence].get(tuple(prefix), {EOS_ID: 1.0}).items():
            row[token] = np.log(p) + 0.25
        return row

    def log_prob(self, sentence, prefix, token) -> float:
        """What a search sees: the log-probability computed from :meth:`logits`."""
        return model_log_probs(self.logits(sentence, prefix)[None])[0, token]

    def __call__(self, ids, state):
        assert ids.dtype == np.int32 and ids.ndim == 1
        history, length = state["decoder"]
        assert len(state["sentence"]) == len(history) == len(length) == len(ids)
        self.calls.append(ids.copy())
        history, length = history.copy(), length.copy()
        started = len(self.calls) > 1
        if started:  # the first call feeds <s>, later calls feed the piece just chosen
            history[np.arange(len(ids)), length] = ids
            length = length + 1
        else:
            assert (ids == BOS_ID).all()
        logits = np.zeros((len(ids), self.vocab_size), np.float32)
        attention = np.zeros((len(ids), SOURCE_LENGTH), np.float32)
        for row, sentence in enumerate(state["sentence"]):
            prefix = tuple(int(i) for i in history[row, : length[row]])
            logits[row] = self.logits(sentence, prefix)
            attention[row, attention_position(prefix)] = 1.0
        new_state = {"sentence": state["sentence"], "decoder": (history, length)}
        return logits, new_state, attention if self.attention else None


def markov_step(transitions):
    """A stateless fake decoder: logits depend only on the last piece ([V, V] table)."""
    transitions = np.asarray(transitions, np.float32)
    calls = []

    def step(ids, state):
        calls.append(len(ids))
        return transitions[ids], state, None

    step.calls = calls
    return step


def run_beam(tables, sentences=(0,), **options):
    lm = TreeLM(tables)
    results = beam_search(lm, [BOS_ID] * len(sentences), lm.initial_state(list(sentences)), **options)
    return results, lm


def run_greedy(tables, sentences=(0,), **options):
    lm = TreeLM(tables)
    results = greedy_search(lm, [BOS_ID] * len(sentences), lm.initial_state(list(sentences)), **options)
    return results, lm


# A first piece that looks best locally but leads nowhere likely:
# greedy takes A (0.6) then at best 0.25 → 0.15; beam finds B C (0.4 × 0.9 = 0.36).
GARDEN_PATH = {
    (): {A: 0.6, B: 0.4},
    (A,): {C: 0.25, D: 0.25, E: 0.25, F: 0.25},
    (B,): {C: 0.9, D: 0.1},
}


def test_beam_search_finds_the_sequence_greedy_misses():
    (greedy,), _ = run_greedy([GARDEN_PATH], max_length=10)
    assert greedy.ids == (A, C)
    assert greedy.log_prob == pytest.approx(np.log(0.6 * 0.25))
    [[best]], _ = run_beam([GARDEN_PATH], beam_size=2, max_length=10)
    assert best.ids == (B, C)
    assert best.log_prob == pytest.approx(np.log(0.4 * 0.9))
    assert best.score == pytest.approx(best.log_prob)  # alpha 0: raw sum
    assert not best.truncated and best.length == 2


def test_n_best_are_distinct_and_ordered():
    [hypotheses], _ = run_beam([GARDEN_PATH], beam_size=4, n_best=4, max_length=10)
    assert len(hypotheses) == 4
    assert len({h.ids for h in hypotheses}) == 4
    scores = [h.score for h in hypotheses]
    assert scores == sorted(scores, reverse=True)
    assert [h.ids for h in hypotheses] == [(B, C), (A, C), (A, D), (A, E)]  # ties: lower id first
    assert [h.log_prob for h in hypotheses] == pytest.approx(np.log([0.36, 0.15, 0.15, 0.15]))


@pytest.mark.parametrize("beam_size, n_best", [(2, 3), (1, 2), (0, 1)])
def test_n_best_cannot_exceed_the_beam(beam_size, n_best):
    with pytest.raises(ValueError):
        run_beam([GARDEN_PATH], beam_size=beam_size, n_best=n_best, max_length=5)


# Short: A </s> = 0.5 × 0.9; long: B C D E F </s> = 0.45 × 0.9⁵.
SHORT_OR_LONG = {
    (): {A: 0.5, B: 0.45, C: 0.05},
    (A,): {EOS_ID: 0.9, G: 0.1},
    (B,): {C: 0.9, EOS_ID: 0.1},
    (B, C): {D: 0.9, EOS_ID: 0.1},
    (B, C, D): {E: 0.9, EOS_ID: 0.1},
    (B, C, D, E): {EOS_ID: 0.9, F: 0.1},
}


def test_length_penalty_decides_between_short_and_long():
    short_log_prob, long_log_prob = np.log(0.5 * 0.9), np.log(0.45 * 0.9**4)
    [[raw]], _ = run_beam([SHORT_OR_LONG], beam_size=3, max_length=12, length_penalty_alpha=0.0)
    assert raw.ids == (A,) and raw.score == pytest.approx(short_log_prob)
    [[gnmt]], _ = run_beam([SHORT_OR_LONG], beam_size=3, max_length=12, length_penalty_alpha=2.0)
    assert gnmt.ids == (B, C, D, E)
    assert gnmt.log_prob == pytest.approx(long_log_prob)
    assert gnmt.score == pytest.approx(long_log_prob / ((5 + 5) / 6) ** 2.0)  # 4 pieces + </s>
    [[average]], _ = run_beam(
        [SHORT_OR_LONG], beam_size=3, max_length=12, length_penalty_alpha=1.0, length_normalization="average"
    )
    assert average.ids == (B, C, D, E)
    assert average.score == pytest.approx(long_log_prob / 5)


def test_length_penalty_formulas():
    assert length_penalty(4, 0.0) == 1.0 and length_penalty(4, 0.0, "average") == 1.0
    assert length_penalty(7, 0.6) == pytest.approx((12 / 6) ** 0.6)
    assert length_penalty(7, 1.0, "average") == 7.0
    np.testing.assert_allclose(length_penalty(np.array([1, 7]), 1.0), [1.0, 2.0])
    with pytest.raises(ValueError, match="length normalization"):
        length_penalty(3, 1.0, "wu")
    with pytest.raises(ValueError, match="length normalization"):
        run_beam([GARDEN_PATH], beam_size=2, max_length=4, length_normalization="sum")


def repeated_ngrams(ids, n):
    grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
    return len(grams) - len(set(grams))


# "a b a b …": after A, B is likely; after B, A is likely; C and D are the way out.
ALTERNATING = np.full((VOCAB, VOCAB), -4.0, np.float32)
ALTERNATING[:, EOS_ID] = -6.0
ALTERNATING[[BOS_ID, B], A] = 3.0
ALTERNATING[A, B] = 3.0
ALTERNATING[:, C] = 0.5
ALTERNATING[:, D] = 0.0


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_blocks_repeats(n):
    step = markov_step(ALTERNATING)
    free = beam_search(step, [BOS_ID], None, beam_size=3, n_best=3, max_length=12)[0]
    assert repeated_ngrams(free[0].ids, n) > 0  # without blocking the loop wins
    blocked = beam_search(step, [BOS_ID], None, beam_size=3, n_best=3, max_length=12, no_repeat_ngram=n)[0]
    assert len(blocked) == 3
    for hypothesis in blocked:
        assert repeated_ngrams(hypothesis.ids, n) == 0, hypothesis.ids
    (greedy,) = greedy_search(step, [BOS_ID], None, max_length=12, no_repeat_ngram=n)
    assert repeated_ngrams(greedy.ids, n) == 0
    assert greedy.ids[:2] == (A, B)


def test_greedy_with_bigram_blocking_takes_the_way_out():
    step = markov_step(ALTERNATING)
    (greedy,) = greedy_search(step, [BOS_ID], None, max_length=6, no_repeat_ngram=2)
    # A B A, then "A B" is blocked and C (0.5) is next best; C C, then "C C" is blocked: D.
    assert greedy.ids == (A, B, A, C, C, D) and greedy.truncated
    # Blocking removes candidates without renormalising the others.
    log_probs = model_log_probs(ALTERNATING)
    previous = (BOS_ID,) + greedy.ids
    assert greedy.log_prob == pytest.approx(sum(float(log_probs[p, t]) for p, t in zip(previous, greedy.ids)))


NEVER_ENDS = np.zeros((VOCAB, VOCAB), np.float32)
NEVER_ENDS[:, EOS_ID] = -np.inf
NEVER_ENDS[:, A] = 1.0


def test_max_length_is_respected_and_costs_that_many_steps():
    step = markov_step(NEVER_ENDS)
    results = beam_search(step, [BOS_ID, BOS_ID], None, beam_size=3, n_best=3, max_length=[3, 6])
    assert [len(h.ids) for h in results[0]] == [3, 3, 3]
    assert [len(h.ids) for h in results[1]] == [6, 6, 6]
    assert all(h.truncated for item in results for h in item)
    assert step.calls == [6, 6, 6, 3, 3, 3]  # item 0 leaves the batch after its 3rd step
    step.calls.clear()
    greedy = greedy_search(step, [BOS_ID, BOS_ID], None, max_length=[3, 6])
    assert [h.ids for h in greedy] == [(A,) * 3, (A,) * 6]
    assert greedy[0].truncated and step.calls == [2, 2, 2, 1, 1, 1]


@pytest.mark.parametrize("max_length", [0, [3, 0]])
def test_max_length_must_be_positive(max_length):
    with pytest.raises(ValueError, match="max_length"):
        beam_search(markov_step(NEVER_ENDS), [BOS_ID, BOS_ID], None, beam_size=2, max_length=max_length)


ENDS_AT_ONCE = {(): {EOS_ID: 0.7, A: 0.2, B: 0.1}, (A,): {B: 0.6, EOS_ID: 0.4}, (A, B): {C: 0.6, EOS_ID: 0.4}}


def test_eos_ends_a_hypothesis_and_is_not_in_the_ids():
    [[best, second]], _ = run_beam([ENDS_AT_ONCE], beam_size=2, n_best=2, max_length=8)
    assert best.ids == () and best.log_prob == pytest.approx(np.log(0.7))
    assert best.attention.shape == (0, SOURCE_LENGTH)
    # B </s> (0.1) is among the 2 best extensions of step 2; A </s> (0.08) is not.
    assert second.ids == (B,) and second.log_prob == pytest.approx(np.log(0.1))
    assert not best.truncated and not second.truncated
    (greedy,), _ = run_greedy([ENDS_AT_ONCE], max_length=8)
    assert greedy.ids == () and greedy.log_prob == pytest.approx(np.log(0.7))


def test_min_length_forbids_early_eos_without_renormalising():
    [hypotheses], _ = run_beam([ENDS_AT_ONCE], beam_size=2, n_best=2, max_length=8, min_length=2)
    assert [h.ids for h in hypotheses] == [(A, B, C), (A, B)]
    # The model's own probabilities: P(A) stays 0.2 although </s> and B are masked at first.
    assert [h.log_prob for h in hypotheses] == pytest.approx(np.log([0.2 * 0.6 * 0.6, 0.2 * 0.6 * 0.4]))
    (greedy,), _ = run_greedy([ENDS_AT_ONCE], max_length=8, min_length=3)
    assert greedy.ids == (A, B, C)
    assert greedy.log_prob == pytest.approx(np.log(0.2 * 0.6 * 0.6))


def test_forbidden_ids_are_never_produced():
    table = {(): {PAD_ID: 0.5, BOS_ID: 0.3, A: 0.2}}
    [[best]], _ = run_beam([table], beam_size=2, max_length=4)
    assert best.ids == (A,) and best.log_prob == pytest.approx(np.log(0.2))
    (greedy,), _ = run_greedy([table], max_length=4)
    assert greedy.ids == (A,)
    [[with_pad]], _ = run_beam([table], beam_size=2, max_length=4, forbidden_ids=())
    assert with_pad.ids[0] == PAD_ID


def test_search_stops_once_the_best_cannot_be_beaten():
    table = {(): {A: 0.9, B: 0.1}, (A,): {EOS_ID: 0.95, C: 0.05}}  # every other prefix goes on
    table.update({prefix: {D: 0.5, E: 0.5} for prefix in [(B,), (A, C)]})
    [[best]], lm = run_beam([table], beam_size=2, max_length=50)
    assert best.ids == (A,)
    assert len(lm.calls) == 2  # not 50


def test_search_goes_on_while_a_longer_hypothesis_could_still_win():
    # A </s> finishes first; B C looks hopeless at its length, but a length
    # penalty rewards the long, near-certain chain that follows it.
    chain = (B, C, D, E, F, G, H, D, E, F)
    table = {(): {A: 0.6, B: 0.4}, (A,): {EOS_ID: 0.9, C: 0.1}, (B,): {C: 0.3, EOS_ID: 0.7}}
    table.update({chain[:n]: {chain[n]: 0.99, EOS_ID: 0.01} for n in range(2, len(chain))})
    table[chain] = {EOS_ID: 0.99, A: 0.01}
    [[best]], lm = run_beam([table], beam_size=2, max_length=20, length_penalty_alpha=2.0)
    assert best.ids == chain
    assert best.score == pytest.approx(np.log(0.4 * 0.3 * 0.99**9) / ((5 + 11) / 6) ** 2)
    short = np.log(0.6 * 0.9) / ((5 + 2) / 6) ** 2
    assert best.score > short > np.log(0.4 * 0.3) / ((5 + 3) / 6) ** 2  # B C alone would lose
    [[raw]], lm = run_beam([table], beam_size=2, max_length=20)
    assert raw.ids == (A,) and len(lm.calls) == 2
    # "current" judges B C at its next length only, where it loses, and stops there.
    [[current]], lm = run_beam([table], beam_size=2, max_length=20, length_penalty_alpha=2.0, stopping="current")
    assert current.ids == (A,) and current.score == pytest.approx(short)
    assert len(lm.calls) == 2


def test_current_stopping_goes_on_while_an_alive_beam_scores_higher_now():
    # A </s> finishes first, but the alive B C already scores higher than it at
    # the length it would end with, so "current" searches on and finds the chain.
    chain = (B, C, D, E)
    table = {(): {A: 0.5, B: 0.5}, (A,): {EOS_ID: 0.6, C: 0.4}, (B,): {C: 0.95, EOS_ID: 0.05}}
    table.update({chain[:n]: {chain[n]: 0.99, EOS_ID: 0.01} for n in range(2, len(chain))})
    table[chain] = {EOS_ID: 0.99, A: 0.01}
    [[best]], lm = run_beam([table], beam_size=2, max_length=20, length_penalty_alpha=2.0, stopping="current")
    assert best.ids == chain
    assert best.score == pytest.approx(np.log(0.5 * 0.95 * 0.99**3) / ((5 + 5) / 6) ** 2)
    assert best.score > np.log(0.5 * 0.6) / ((5 + 2) / 6) ** 2


def test_unknown_stopping_is_refused():
    with pytest.raises(ValueError, match="stopping"):
        run_beam([GARDEN_PATH], beam_size=2, max_length=5, stopping="early")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), max_length=st.integers(1, 4), alpha=st.sampled_from([0.0, 0.6, 2.0]),
       beam_size=st.integers(1, 4), n_best=st.integers(1, 4))
def test_current_stopping_never_searches_longer_and_its_best_ignores_n_best(seed, max_length, alpha,
                                                                           beam_size, n_best):
    n_best = min(n_best, beam_size)
    table = random_tree(seed, max_length)
    options = dict(beam_size=beam_size, max_length=max_length, length_penalty_alpha=alpha)
    [exact], exact_lm = run_beam([table], stopping="exact", n_best=n_best, **options)
    [current], current_lm = run_beam([table], stopping="current", n_best=n_best, **options)
    [single], single_lm = run_beam([table], stopping="current", n_best=1, **options)
    assert len(current_lm.calls) <= len(exact_lm.calls)
    assert 1 <= len(current) <= n_best
    # when it stops does not depend on how many hypotheses are asked for
    assert len(current_lm.calls) == len(single_lm.calls)
    assert_same_hypotheses(current[:1], single)
    assert [h.score for h in current] == sorted((h.score for h in current), reverse=True)
    if alpha == 0.0:  # one hypothesis, no penalty: the same search as the exact rule
        [exact_single], _ = run_beam([table], stopping="exact", n_best=1, **options)
        assert_same_hypotheses(single, exact_single)


def test_too_few_possible_sequences_give_fewer_hypotheses():
    table = {(): {A: 0.5, B: 0.3, EOS_ID: 0.2}}
    [hypotheses], _ = run_beam([table], beam_size=5, n_best=5, max_length=1)
    assert [h.ids for h in hypotheses] == [(A,), (B,), ()]
    assert [h.truncated for h in hypotheses] == [True, True, False]


def test_ties_break_towards_the_lower_id():
    table = {(): {C: 0.3, B: 0.3, A: 0.3, EOS_ID: 0.1}}
    [hypotheses], _ = run_beam([table], beam_size=3, n_best=3, max_length=3)
    assert [h.ids for h in hypotheses] == [(A,), (B,), (C,)]
    (greedy,), _ = run_greedy([table], max_length=3)
    assert greedy.ids == (A,)


SECOND_SENTENCE = {(): {D: 0.3, E: 0.7}, (E,): {F: 0.5, G: 0.5}, (E, F): {H: 1.0}, (E, G): {A: 0.6, EOS_ID: 0.4}}


def assert_same_hypotheses(left, right):
    assert [(h.ids, h.score, h.log_prob, h.truncated) for h in left] == [
        (h.ids, h.score, h.log_prob, h.truncated) for h in right
    ]
    for a, b in zip(left, right):
        np.testing.assert_array_equal(a.attention, b.attention)


@pytest.mark.parametrize("options", [dict(), dict(length_penalty_alpha=0.6, no_repeat_ngram=2, max_length=[9, 4])])
def test_a_batch_decodes_like_its_items_alone_in_one_call_per_step(options):
    tables = [GARDEN_PATH, SECOND_SENTENCE]
    options = {"beam_size": 3, "n_best": 2, "max_length": 9, **options}
    max_lengths = np.broadcast_to(options.pop("max_length"), 2)
    together, lm = run_beam(tables, sentences=(0, 1), max_length=max_lengths, **options)
    alone_calls = []
    for sentence in (0, 1):
        [alone], alone_lm = run_beam(tables, sentences=(sentence,), max_length=max_lengths[sentence], **options)
        assert_same_hypotheses(together[sentence], alone)
        alone_calls.append(len(alone_lm.calls))
    assert len(lm.calls) == max(alone_calls)  # one step call per time step, never per beam or item
    for t, ids in enumerate(lm.calls):
        still_searching = sum(t < calls for calls in alone_calls)
        assert ids.shape == (3 * still_searching,)


def test_greedy_batch_decodes_like_its_items_alone():
    tables = [GARDEN_PATH, SECOND_SENTENCE]
    together, lm = run_greedy(tables, sentences=(0, 1), max_length=9)
    for sentence in (0, 1):
        (alone,), _ = run_greedy(tables, sentences=(sentence,), max_length=9)
        assert_same_hypotheses([together[sentence]], [alone])
    assert [len(ids) for ids in lm.calls] == [2, 2, 2, 1]


# Beams swap places at step 2: B C (0.36) overtakes A D (0.2); both survive, in swapped rows.
SWAPPING = {(): {A: 0.5, B: 0.4, C: 0.1}, (A,): {G: 0.3, H: 0.3, D: 0.4}, (B,): {C: 0.9, D: 0.1}}


def test_attention_follows_beam_reordering():
    [hypotheses], lm = run_beam([SWAPPING], beam_size=2, n_best=2, max_length=5)
    assert [h.ids for h in hypotheses] == [(B, C), (A, D)]
    # The second step call saw the beams in the order [A, B]; the results come out [B …, A …].
    assert lm.calls[1].tolist() == [A, B]
    for hypothesis in hypotheses:
        assert hypothesis.attention.dtype == np.float32
        np.testing.assert_array_equal(hypothesis.attention, expected_attention(hypothesis.ids))
    assert attention_position((B,)) != attention_position((A,))  # the check can tell the beams apart


def test_attention_is_kept_even_if_the_step_reuses_its_buffer():
    lm, buffer = TreeLM([SWAPPING]), np.zeros((2, SOURCE_LENGTH), np.float32)

    def reusing_step(ids, state):
        logits, state, attention = lm(ids, state)
        buffer[...] = attention
        return logits, state, buffer

    hypotheses = beam_search(reusing_step, [BOS_ID], lm.initial_state([0]), beam_size=2, n_best=2, max_length=5)[0]
    for hypothesis in hypotheses:
        np.testing.assert_array_equal(hypothesis.attention, expected_attention(hypothesis.ids))


def test_no_attention_gives_none():
    lm = TreeLM([SWAPPING], attention=False)
    [[best]] = beam_search(lm, [BOS_ID], lm.initial_state([0]), beam_size=2, max_length=5)
    assert best.ids == (B, C) and best.attention is None
    lm = TreeLM([SWAPPING], attention=False)
    (greedy,) = greedy_search(lm, [BOS_ID], lm.initial_state([0]), max_length=5)
    assert greedy.attention is None


def test_hypotheses_are_small_comparable_records():
    hypothesis = SearchHypothesis(ids=(A, B), score=-1.0, log_prob=-2.0, attention=np.ones((2, 3)))
    assert hypothesis.length == 2
    assert hypothesis == SearchHypothesis(ids=(A, B), score=-1.0, log_prob=-2.0)  # attention not compared
    with pytest.raises(AttributeError):
        hypothesis.score = 0.0  # type: ignore[misc]


def test_nan_logits_are_never_chosen():
    logits = np.log(np.array([[1e-9, 1e-9, 1e-9, 0.1, 0.5, 0.4]], np.float32))
    logits[0, 4] = np.nan  # the best piece is broken: the search must not pick it
    scores, log_normalizer = scores_and_log_normalizer(np.vstack([logits, np.full((1, 6), np.nan)]))
    assert scores[0, 4] == -np.inf and np.isfinite(log_normalizer[0])
    assert (scores[1] == -np.inf).all()  # a row with nothing usable is impossible

    def step(ids, state):
        return np.tile(logits, (len(ids), 1)), state, None

    [[best]] = beam_search(step, [BOS_ID], None, beam_size=2, max_length=1)
    assert best.ids == (5,) and best.log_prob == pytest.approx(np.log(0.4 / 0.5), rel=1e-5)
    (greedy,) = greedy_search(step, [BOS_ID], None, max_length=1)
    assert greedy.ids == (5,)


def test_bad_logits_shape_is_reported():
    def step(ids, state):
        return np.zeros((len(ids) + 1, VOCAB)), state, None

    with pytest.raises(ValueError, match="logits of shape"):
        beam_search(step, [BOS_ID], None, beam_size=2, max_length=3)
    with pytest.raises(ValueError, match="logits of shape"):
        greedy_search(step, [BOS_ID], None, max_length=3)


# ---------------------------------------------------------------- against brute force
WORDS = (UNK_ID, A, B)  # with </s>, the pieces the random trees use


def random_tree(seed, max_length):
    rng = np.random.default_rng(seed)
    table = {}
    for length in range(max_length + 1):
        for prefix in itertools.product(WORDS, repeat=length):
            p = np.maximum(rng.dirichlet(np.full(len(WORDS) + 1, 0.7)), 1e-6)
            table[prefix] = dict(zip(WORDS + (EOS_ID,), p / p.sum()))
    return table


def all_hypotheses(lm, table, max_length, alpha, mode, min_length=0, no_repeat_ngram=0):
    """Every possible output with its score, best first (ties: shorter, then by ids)."""
    out = []
    for length in range(max_length + 1):
        for ids in itertools.product(WORDS, repeat=length):
            if no_repeat_ngram and repeated_ngrams(ids, no_repeat_ngram):
                continue
            log_prob = sum(lm.log_prob(0, ids[:t], ids[t]) for t in range(length))
            ends = length < max_length
            if ends:
                if length < min_length:
                    continue
                log_prob += lm.log_prob(0, ids, EOS_ID)
            score = log_prob / length_penalty(length + ends, alpha, mode)
            out.append((score, log_prob, ids, not ends))
    return sorted(out, key=lambda entry: -entry[0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    max_length=st.integers(1, 3),
    alpha=st.sampled_from([0.0, 0.6, 2.0]),
    mode=st.sampled_from(["gnmt", "average"]),
    n_best=st.integers(1, 4),
    min_length=st.integers(0, 2),
    no_repeat_ngram=st.integers(0, 2),
)
def test_a_wide_beam_finds_the_exact_n_best(seed, max_length, alpha, mode, n_best, min_length, no_repeat_ngram):
    # With K at least the number of extensions of a step, nothing is pruned, so the
    # n-best must be exactly the brute-force n-best, early stopping included.
    table = random_tree(seed, max_length)
    lm = TreeLM([table])
    expected = all_hypotheses(lm, table, max_length, alpha, mode, min_length, no_repeat_ngram)[:n_best]
    [found] = beam_search(
        lm, [BOS_ID], lm.initial_state([0]), beam_size=36, max_length=max_length, n_best=n_best,
        length_penalty_alpha=alpha, length_normalization=mode, min_length=min_length,
        no_repeat_ngram=no_repeat_ngram,
    )
    assert [h.score for h in found] == pytest.approx([e[0] for e in expected])
    assert [h.log_prob for h in found] == pytest.approx([e[1] for e in expected])
    assert [h.ids for h in found] == [e[2] for e in expected]
    assert [h.truncated for h in found] == [e[3] for e in expected]
    for hypothesis in found:
        np.testing.assert_array_equal(hypothesis.attention, expected_attention(hypothesis.ids))
    assert all(len(ids) == 36 for ids in lm.calls)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), max_length=st.integers(1, 4))
def test_beam_of_one_is_greedy(seed, max_length):
    table = random_tree(seed, max_length)
    lm = TreeLM([table])
    (greedy,) = greedy_search(lm, [BOS_ID], lm.initial_state([0]), max_length=max_length)
    # Greedy, by hand.
    prefix, log_prob = (), 0.0
    while len(prefix) < max_length:
        distribution = table[prefix]
        token = max(sorted(distribution), key=lambda t: distribution[t])
        log_prob += lm.log_prob(0, prefix, token)
        if token == EOS_ID:
            break
        prefix += (token,)
    assert greedy.ids == prefix and greedy.log_prob == pytest.approx(log_prob)
    np.testing.assert_array_equal(greedy.attention, expected_attention(prefix))
    lm = TreeLM([table])
    [[beam]] = beam_search(lm, [BOS_ID], lm.initial_state([0]), beam_size=1, max_length=max_length)
    assert beam.ids == greedy.ids and beam.log_prob == pytest.approx(greedy.log_prob)


# ---------------------------------------------------------------- unknown pieces
def test_replace_unknown_copies_the_most_attended_source_piece():
    source = ["▁Je", "▁vis", "▁à", "▁Gangneung"]
    attention = np.array(
        [
            [0.7, 0.1, 0.1, 0.05, 0.05],
            [0.1, 0.1, 0.1, 0.6, 0.1],
            [0.1, 0.1, 0.1, 0.2, 0.5],  # the last column (source </s>) is never copied
        ]
    )
    ids = [A, UNK_ID, UNK_ID]
    pieces = replace_unknown(ids, attention, source, ["▁I", "<unk>", "<unk>"])
    assert pieces == ["▁I", "▁Gangneung", "▁Gangneung"]
    assert replace_unknown(ids, None, source, ["▁I", "<unk>", "<unk>"]) == ["▁I", "<unk>", "<unk>"]
    with pytest.raises(ValueError):
        replace_unknown(ids, attention, source, ["▁I"])


def test_replace_unknown_on_a_search_result():
    table = {(): {A: 0.6, UNK_ID: 0.4}, (A,): {UNK_ID: 0.9, B: 0.1}, (A, UNK_ID): {EOS_ID: 1.0}}
    [[best]], _ = run_beam([table], beam_size=2, max_length=5)
    assert best.ids == (A, UNK_ID)
    source = [f"▁s{i}" for i in range(SOURCE_LENGTH)]
    pieces = replace_unknown(best.ids, best.attention, source, ["▁a", "<unk>"])
    assert pieces == ["▁a", source[attention_position((A,))]]


def looking_at(rows, columns):
    """Attention [len(rows), columns]: row t looks at source position rows[t] (None: everywhere alike)."""
    attention = np.full((len(rows), columns), 0.02)
    for t, position in enumerate(rows):
        if position is not None:
            attention[t, position] = 1.0
    return attention / attention.sum(1, keepdims=True)


def test_copy_numbers_writes_the_attended_source_numbers():
    source = ["▁at", "▁5", ":", "3", "0", "."]  # "at 5:30."
    target = ["▁à", "▁5", "0", "h", "3", "0", "."]  # "à 50h30."
    # "50" looks at the 5 and also at the 30; the 30 looks at the 30: each source number is used once
    attention = looking_at([0, 1, 3, None, 3, 4, 5], len(source))
    attention[2, 3] = attention[2, 1] = 0.45
    assert copy_numbers(source, target, attention) == "à 5h30."
    # the digits' owner: "1,250" spelled "110" looking at it
    source, target = ["▁costs", "▁1", ",", "250", "."], ["▁coûte", "▁1", "10", "."]
    assert copy_numbers(source, target, looking_at([0, 1, 3, 4], 5)) == "coûte 1,250."
    # thousands grouped as the target groups them
    source, target = ["▁about", "▁100", "▁000", "."], ["▁about", "▁10", ",", "000", "."]
    assert copy_numbers(source, target, looking_at([0, 1, 2, 2, 3], 4)) == "about 100,000."


def test_copy_numbers_keeps_what_says_the_same_and_leaves_what_it_cannot_pair():
    source = ["▁after", "▁2", ":", "30", "."]
    other_clock = ["▁après", "▁14", "h", "30", "."]
    assert copy_numbers(source, other_clock, looking_at([0, 1, 2, 3, 4], 5)) == "après 14h30."
    source, spaced = ["▁pay", "▁1", ",", "250", "."], ["▁payer", "▁1", "▁250", "."]
    assert copy_numbers(source, spaced, looking_at([0, 1, 3, 4], 5)) == "payer 1 250."  # the same digits
    one_number, two_numbers = ["▁5", "▁and", "▁7", "."], ["▁5", "▁,", "▁6", "▁et", "▁7", "."]
    assert copy_numbers(one_number, two_numbers, looking_at([1, 1, 2, 2, 3, 3], 4)) is None
    assert copy_numbers(["▁hello", "."], ["▁5", "."], looking_at([0, 1], 2)) is None  # no source number
    assert copy_numbers(["▁5", "."], ["▁bonjour", "."], looking_at([0, 1], 2)) is None  # no target number
    assert copy_numbers(["▁5", "."], ["▁6", "."], None) is None
    assert copy_numbers(["▁5", "<0xE2>", "."], ["▁6", "."], looking_at([0, 2], 3)) is None  # byte pieces



def test_copy_numbers_reads_a_time_of_day_as_one_number():
    # minutes the source does not have are dropped, in the target's clock style
    assert copy_numbers(["▁at", "▁5", "."], ["▁à", "▁5", "h", "30", "."], looking_at([0, 1, 1, 1, 2], 3)) == "à 5h."
    assert copy_numbers(["▁3", "시에", "▁만나요", "."], ["▁at", "▁3", ":", "30", "."],
                        looking_at([0, 0, 0, 0, 3], 4)) == "at 3."
    # a time on the hour, the hour alone, or the same time on the other clock say the same
    assert copy_numbers(["▁at", "▁5", "."], ["▁à", "▁17", "h", "00", "."],
                        looking_at([0, 1, 1, 1, 2], 3)) == "à 17h00."
    assert copy_numbers(["▁at", "▁3", ":", "30", "."], ["▁à", "▁3", "▁heures", "."],
                        looking_at([0, 1, 1, 4], 5)) == "à 3 heures."
    # a Korean time: its minutes kept into English, and written the Korean way from English
    assert copy_numbers(["▁3", "시", "▁30", "분에", "."], ["▁at", "▁3", ":", "00", "."],
                        looking_at([0, 0, 0, 2, 4], 5)) == "at 3:30."
    assert copy_numbers(["▁at", "▁4", ":", "15", "."], ["▁4", "시", "▁50", "분에", "."],
                        looking_at([1, 1, 3, 3, 4], 5)) == "4시 15분에."
    assert copy_numbers(["▁3", "시", "▁30", "분에", "."], ["▁at", "▁3", ":", "30", "."],
                        looking_at([0, 0, 0, 2, 4], 5)) == "at 3:30."

# ---------------------------------------------------------------- state and helpers
Pair = namedtuple("Pair", "h c")


def test_state_helpers_map_over_nests():
    state = {
        "enc": np.arange(6).reshape(3, 2),
        "rnn": [Pair(np.arange(3), np.arange(3) * 10)],
        "mask": None,
        "t": (np.ones(3),),
    }
    tiled = tile_state(state, 2)
    assert tiled["enc"].tolist() == [[0, 1], [0, 1], [2, 3], [2, 3], [4, 5], [4, 5]]
    assert isinstance(tiled["rnn"][0], Pair) and tiled["rnn"][0].c.tolist() == [0, 0, 10, 10, 20, 20]
    assert tiled["mask"] is None and isinstance(tiled["t"], tuple)
    gathered = gather_state(tiled, [5, 0])
    assert gathered["enc"].tolist() == [[4, 5], [0, 1]] and gathered["rnn"][0].h.tolist() == [2, 0]
    assert map_state(lambda a: a * 2, (np.ones(2),))[0].tolist() == [2.0, 2.0]
    with pytest.raises(TypeError, match="NumPy arrays"):
        gather_state({"step": 3}, [0])
    with pytest.raises(ValueError):
        tile_state(state, 0)


def test_top_k_is_deterministic_on_ties():
    scores = np.array([[1.0, 3.0, 3.0, 3.0, 0.0], [-np.inf, 2.0, -np.inf, -np.inf, -np.inf], [5, 4, 3, 2, 1]])
    assert top_k_indices(scores, 2).tolist() == [[1, 2], [1, 0], [0, 1]]
    assert top_k_indices(scores, 4).tolist() == [[1, 2, 3, 0], [1, 0, 2, 3], [0, 1, 2, 3]]
    assert top_k_mask(scores, 9).all() and not top_k_mask(scores, 0).any()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from([-np.inf, -1.0, 0.0, 0.5, 2.0]), min_size=1, max_size=12),
    st.integers(1, 14),
)
def test_top_k_matches_a_stable_sort(values, k):
    scores = np.array([values])
    expected = np.argsort(-scores[0], kind="stable")[:k]
    assert top_k_indices(scores, k)[0].tolist() == expected.tolist()


def test_decoding_imports_no_framework():
    code = (
        "import sys, nlpcore.decoding; "
        "heavy = [m for m in ('tensorflow', 'jax', 'keras', 'torch', 'PySide6') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1024, 3000), st.integers(1, 8),
       st.sampled_from(["normal", "few values", "rare peaks"]))
def test_top_k_over_wide_rows_matches_a_stable_sort(seed, rows, columns, k, kind):
    # Rows as wide as a vocabulary take the block-wise path; ties (few distinct values, or
    # rare high values over ties lower down) and widths that are not a multiple of the
    # block size must not change the answer.
    rng = np.random.default_rng(seed)
    if kind == "normal":
        scores = rng.standard_normal((rows, columns)).astype(np.float32)
    elif kind == "few values":
        scores = rng.choice([-np.inf, -1.0, 0.0, 0.5, 2.0], p=[0.4, 0.3, 0.2, 0.08, 0.02], size=(rows, columns))
    else:
        scores = rng.choice([0.0, 1.0, 2.0], p=[0.99, 0.008, 0.002], size=(rows, columns))
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    assert top_k_indices(scores, k).tolist() == expected.tolist()


def test_rerank_adds_the_weighted_extra_score_and_sorts_again():
    hypotheses = [SearchHypothesis((A,), -1.0, -2.0), SearchHypothesis((B,), -1.5, -3.0),
                  SearchHypothesis((C,), -2.0, -4.0), SearchHypothesis((D,), -2.5, -5.0)]
    out = rerank(hypotheses, [-5.0, -1.0, -1.0, -np.inf], 0.5)
    assert [h.ids for h in out] == [(B,), (C,), (A,), (D,)]
    assert [h.score for h in out] == [-2.0, -2.5, -3.5, -np.inf]
    assert [h.log_prob for h in out] == [-3.0, -4.0, -2.0, -5.0]  # the search's own figures stay
    tied = rerank(hypotheses[:2], [-1.0, -0.5], 1.0)  # -2.0 and -2.0: the search's order
    assert [h.ids for h in tied] == [(A,), (B,)]
    assert rerank(hypotheses, [-9.0, 0.0, 0.0, 0.0], 0.0) == hypotheses
    with pytest.raises(ValueError, match="extra scores"):
        rerank(hypotheses, [0.0], 1.0)
    with pytest.raises(ValueError, match="weight"):
        rerank(hypotheses, [0.0] * 4, -1.0)
