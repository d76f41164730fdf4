"""Greedy and beam search over a step function (see :mod:`nlpcore.decoding.step`).

Both searches decode a whole batch with one step call per time step, drop
sentences from the batch as soon as they are finished, and return
:class:`SearchHypothesis` records. Shapes: B = batch items, K = beam size,
N = rows given to the step function, V = vocabulary, S = source positions,
T = target pieces.

Scores
    ``log_prob`` is the sum of the model's log-probabilities of every chosen
    piece, the closing ``</s>`` included. Masks (forbidden ids, ``min_length``,
    ``no_repeat_ngram``) remove candidates without renormalising the others, so
    ``log_prob`` stays the model's own probability of the output.
    ``score = log_prob / length_penalty(scored_length)``, where the scored length
    counts the pieces plus the ``</s>`` when there is one.

Lengths
    ``max_length`` bounds the number of pieces (``</s>`` not counted): a
    hypothesis that reaches it ends there, marked ``truncated``, and each
    sentence costs at most ``max_length`` step calls. ``min_length`` forbids
    ``</s>`` before that many pieces.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
from dataclasses import dataclass, field, replace
from typing import Optional, Sequence, Union

import numpy as np

from ..tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from .ops import scores_and_log_normalizer, top_k_indices
from .step import State, StepFunction, gather_state, tile_state

LENGTH_NORMALIZATIONS = ("gnmt", "average")
BEAM_STOPPING = ("exact", "current")
DEFAULT_FORBIDDEN_IDS = (PAD_ID, BOS_ID)  # never produced by a search or a sampler


@dataclass(frozen=True)
class SearchHypothesis:
    """One decoded sequence.

    ids: (T,) piece ids, without the start id and without ``</s>``.
    score: length-penalised log-probability (higher is better); the ranking key.
    log_prob: raw natural-log probability of the pieces and the closing ``</s>``.
    attention: float32 [T, S]; row t holds the attention weights the decoder
        used to predict ``ids[t]``. ``None`` when the step gives no attention.
    truncated: True when ``max_length`` cut the sequence (no ``</s>`` chosen).
    """

    ids: tuple[int, ...]
    score: float
    log_prob: float
    attention: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    truncated: bool = False

    @property
    def length(self) -> int:
        """Number of pieces, T."""
        return len(self.ids)


def length_penalty(scored_length, alpha: float, mode: str = "gnmt"):
    """Divisor of a hypothesis' log-probability (scalar or array, like ``scored_length``).

    ``"gnmt"`` (Wu et al. 2016): ``((5 + length) / 6) ** alpha``.
    ``"average"``: ``length ** alpha`` — alpha 1 gives the mean log-probability
    per piece. In both modes alpha 0 gives 1, i.e. the raw log-probability sum;
    a larger alpha favours longer outputs.
    """
    length = np.asarray(scored_length, dtype=np.float64)
    if mode == "gnmt":
        return ((5.0 + length) / 6.0) ** alpha
    if mode == "average":
        return np.maximum(length, 1.0) ** alpha
    raise ValueError(f"length normalization must be one of {', '.join(LENGTH_NORMALIZATIONS)}, not {mode!r}")


def rerank(hypotheses: Sequence[SearchHypothesis], extra_scores: Sequence[float],
           weight: float) -> list[SearchHypothesis]:
    """The hypotheses re-sorted, best first, each scored ``score + weight * extra``.

    With ``extra`` the log-probability of the source sentence given the
    hypothesis, under a model of the reverse direction, this is noisy-channel
    reranking (Yee et al., 2019): a hypothesis that drops or invents content
    explains its source badly. ``log_prob`` and the attention stay the
    search's; ties keep the search's order; -inf extras sort last.
    """
    if len(extra_scores) != len(hypotheses):
        raise ValueError(f"{len(extra_scores)} extra scores for {len(hypotheses)} hypotheses")
    if weight < 0:
        raise ValueError("weight must be 0 or more")
    scored = [replace(h, score=float(h.score + weight * extra)) if weight else h
              for h, extra in zip(hypotheses, extra_scores)]
    return sorted(scored, key=lambda h: -h.score)  # stable: ties keep the search's order


def replace_unknown(
    ids: Sequence[int],
    attention: Optional[np.ndarray],
    source_pieces: Sequence[str],
    target_pieces: Sequence[str],
    unk_id: int = UNK_ID,
) -> list[str]:
    """Target pieces with each ``<unk>`` replaced by its most-attended source piece.

    ids: (T,) target ids; target_pieces: (T,) their pieces; attention: [T, S];
    source_pieces: the first S' ≤ S source positions (columns beyond them, such
    as an appended ``</s>``, are never copied). Ties go to the earlier source
    position. Without attention the pieces come back unchanged.
    """
    pieces = list(target_pieces)
    if len(pieces) != len(ids):
        raise ValueError(f"{len(ids)} ids but {len(pieces)} target pieces")
    unknown = [t for t, token in enumerate(ids) if token == unk_id]
    if attention is None or not unknown or not source_pieces:
        return pieces
    weights = np.asarray(attention)[:, : len(source_pieces)]
    for t in unknown:
        pieces[t] = source_pieces[int(np.argmax(weights[t]))]
    return pieces


# A time of day (5:30, 14h30, 14h0 as a small model may write it, 3시 30분) is one number;
# otherwise digits with . or , between groups, or thousands apart by (narrow, no-break)
# spaces (French).
_CLOCK = r"\d{1,2}(?::\d{2}|h\d{1,2})(?!\d)|\d{1,2}시 ?\d{1,2}분"
_NUMBER = re.compile(rf"(?<!\d)(?:{_CLOCK})|\d{{1,3}}(?:[ \u00a0\u202f]\d{{3}})+(?:[.,]\d+)?|\d+(?:[.,]\d+)*")


def _clock(number: str) -> Optional[tuple[int, int, str]]:
    """(hour, minute, style) of a time of day, style ``:``, ``h`` or ``시``; None for other numbers."""
    match = re.fullmatch(r"(\d{1,2})(:|h|시 ?)(\d{1,2})분?", number)
    return (int(match[1]), int(match[3]), match[2].strip()) if match else None


def _hour(number: str) -> Optional[int]:
    """The hour a time of day or a bare number can name (up to 24), else None."""
    clock = _clock(number)
    hour = clock[0] if clock else int(number) if number.isdigit() else None
    return hour if hour is not None and hour <= 24 else None


def _same_hour(target: str, source: str) -> bool:
    target_hour, source_hour = _hour(target), _hour(source)
    return target_hour is not None and source_hour is not None and (
        target_hour == source_hour or abs(target_hour - source_hour) == 12)


def _same_number(target: str, source: str) -> bool:
    """Whether a target number says what the source number says: the same digits
    (another way of writing it: ``100,000`` for ``100 000``), or the same time on
    either clock (``14h30`` for ``2:30``, ``17`` for ``5``). A bare hour says a
    time (``3`` for ``3:30``: the minutes may be words, *et demie*), and a time on
    the hour says a bare hour (``5h00`` for ``5``); other minutes do not (``5h30``
    for ``5``)."""
    target_clock, source_clock = _clock(target), _clock(source)
    if target_clock is None and source_clock is None:
        return re.sub(r"\D", "", target) == re.sub(r"\D", "", source) or _same_hour(target, source)
    if not _same_hour(target, source):
        return False
    if target_clock and source_clock:
        return target_clock[1] == source_clock[1]
    return target_clock is None or target_clock[1] == 0


def _rewritten(target: str, source: str) -> str:
    """``source`` written as the target writes its numbers: a time in the target's
    clock style (``5h30``, ``5:30``, ``5시 30분``; a bare hour ``5h``, ``5``,
    ``5시``, or ``5:00`` where the target was on the hour), thousands with the
    target's separator."""
    target_clock, source_clock = _clock(target), _clock(source)
    if target_clock:
        hour = source_clock[0] if source_clock else _hour(source)
        if hour is None:
            return source
        # the source's minutes; for a bare hour, the target's own only when on the hour (21 → 21:00)
        minute = source_clock[1] if source_clock else 0 if target_clock[1] == 0 else None
        style = target_clock[2]
        if style == "시":
            return f"{hour}시" + (f" {minute}분" if minute is not None else "")
        if minute is None:
            return f"{hour}h" if style == "h" else str(hour)
        return f"{hour}{style}{minute:02d}"
    if source_clock and source_clock[2] == "시":  # a Korean time into a language that writes 5:30
        return f"{source_clock[0]}:{source_clock[1]:02d}"
    separator = re.search(r"\d([,\s])\d{3}", target)  # the target's way of grouping thousands
    return re.sub(r"(?<=\d)[ \u00a0\u202f](?=\d{3})", separator.group(1), source) if separator else source


def _spelled(pieces: Sequence[str]) -> tuple[str, list[int]]:
    """The text SentencePiece pieces spell (``▁`` a space, the first one dropped)
    and, for each of its characters, the index of the piece it comes from."""
    text, owner = "", []
    for index, piece in enumerate(pieces):
        part = piece.replace("\u2581", " ")
        text += part
        owner += [index] * len(part)
    if text.startswith(" "):
        text, owner = text[1:], owner[1:]
    return text, owner


def copy_numbers(
    source_pieces: Sequence[str],
    target_pieces: Sequence[str],
    attention: Optional[np.ndarray],
) -> Optional[str]:
    """The text of ``target_pieces`` with each number (digits, with ``.`` or
    ``,`` between groups) written as the source number its pieces attend to
    most, each source number used once (the assignment with the most attention):
    a small model often gets a number's digits wrong (``5:30`` → ``50h30``,
    ``1,250`` → ``110``) while it looks at the right place. A number that says
    the same in another way (:func:`_same_number`) is kept. None when nothing is
    to be done: no attention, no number on a side, more numbers in the target
    than in the source (``1,250`` → ``1 250`` stays), or byte pieces, whose text
    is not theirs. attention: [T, S ≥ len(source_pieces)].
    """
    if attention is None or not any(ch.isdigit() for piece in target_pieces for ch in piece) \
            or any(p.startswith("<") and p.endswith(">") for p in (*source_pieces, *target_pieces)):
        return None
    source_text, source_owner = _spelled(source_pieces)
    numbers = [(m.group(), sorted({source_owner[i] for i in range(m.start(), m.end())}))
               for m in _NUMBER.finditer(source_text)]
    target_text, target_owner = _spelled(target_pieces)
    found = list(_NUMBER.finditer(target_text))
    if not numbers or not found:
        return None
    if len(found) > len(numbers) or math.perm(len(numbers), len(found)) > 40_320:
        return None
    weights = np.asarray(attention)[:, : len(source_pieces)]
    # mass[i, n]: how much target number i attends to source number n
    mass = np.array([[weights[sorted({target_owner[i] for i in range(m.start(), m.end())})][:, pieces].sum()
                      for _, pieces in numbers] for m in found])
    chosen = max(itertools.permutations(range(len(numbers)), len(found)),
                 key=lambda assignment: mass[np.arange(len(found)), list(assignment)].sum())
    out, position = [], 0
    for match, n in zip(found, chosen):
        target, source = match.group(), numbers[n][0]
        if not _same_number(target, source):
            target = _rewritten(target, source)
        out += [target_text[position : match.start()], target]
        position = match.end()
    return "".join(out) + target_text[position:]


# ---------------------------------------------------------------- shared helpers
def _per_item(value: Union[int, Sequence[int], np.ndarray], batch_size: int, name: str) -> np.ndarray:
    """An int or [B] ints → int64 [B], each at least 1."""
    array = np.broadcast_to(np.asarray(value, dtype=np.int64), (batch_size,)).copy()
    if (array < 1).any():
        raise ValueError(f"{name} must be at least 1")
    return array


def _repeated_ngram_tokens(history: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, tokens): appending ``tokens[i]`` to row ``rows[i]`` would repeat an n-gram.

    history: int [N, T] pieces produced so far. Looks at every n-gram of each
    row whose first n-1 pieces equal the row's last n-1 pieces.
    """
    rows, length = history.shape
    if n < 1 or length < n:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    windows = np.lib.stride_tricks.sliding_window_view(history, n, axis=1)  # [N, T-n+1, n]
    suffix = history[:, length - (n - 1) :]  # [N, n-1]
    matches = np.all(windows[:, :, : n - 1] == suffix[:, None, :], axis=2)  # [N, T-n+1]
    row_index, window_index = np.nonzero(matches)
    return row_index, windows[row_index, window_index, n - 1]


def _next_scores(
    logits: np.ndarray,
    rows: int,
    history: np.ndarray,
    *,
    eos_id: int,
    min_length: int,
    no_repeat_ngram: int,
    forbidden_ids: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """(scores float32 [N, V], log_normalizer float64 [N]) for the next piece.

    ``scores - log_normalizer[:, None]`` are the model's log-probabilities;
    disallowed pieces have score -inf (the normaliser is computed before
    masking, so the others are not renormalised).
    """
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] != rows:
        raise ValueError(f"the step function returned logits of shape {logits.shape}, expected [{rows}, V]")
    scores, log_normalizer = scores_and_log_normalizer(logits)
    vocab_size = scores.shape[1]
    forbidden = [i for i in forbidden_ids if 0 <= i < vocab_size and i != eos_id]
    if forbidden:
        scores[:, forbidden] = -np.inf
    if history.shape[1] < min_length and 0 <= eos_id < vocab_size:
        scores[:, eos_id] = -np.inf
    if no_repeat_ngram:
        blocked_rows, blocked_tokens = _repeated_ngram_tokens(history, no_repeat_ngram)
        scores[blocked_rows, blocked_tokens] = -np.inf
    return scores, log_normalizer


class _AttentionTrace:
    """Attention of every step and the back-pointers linking rows across steps.

    Rebuilds a hypothesis' [T, S] attention at the end, so rows are never
    copied while beams are reordered (the idea of TensorFlow's ``gather_tree``).
    """

    def __init__(self) -> None:
        self.attention: list[Optional[np.ndarray]] = []  # step t: [N_t, S]
        self.parents: list[np.ndarray] = []  # step t: [N_{t+1}] rows of step t

    def record(self, attention: Optional[np.ndarray], rows: int) -> None:
        if attention is not None:
            attention = np.array(attention, dtype=np.float32)  # a copy: the step may reuse its buffer
            if attention.ndim != 2 or attention.shape[0] != rows:
                raise ValueError(
                    f"the step function returned attention of shape {attention.shape}, expected [{rows}, S]"
                )
        self.attention.append(attention)

    def advance(self, parent_rows: np.ndarray) -> None:
        self.parents.append(np.asarray(parent_rows, dtype=np.intp))

    def rebuild(self, step: int, row: int, length: int) -> Optional[np.ndarray]:
        """[length, S] attention of the hypothesis in ``row`` at ``step``.

        ``length`` is ``step + 1`` when that step's piece belongs to the
        hypothesis and ``step`` when it chose ``</s>``.
        """
        if any(a is None for a in self.attention[: step + 1]):
            return None
        path = [row]
        for t in range(step - 1, -1, -1):
            path.append(int(self.parents[t][path[-1]]))
        path.reverse()  # path[t]: the hypothesis' row at step t
        source_size = self.attention[step].shape[1]
        rows = [self.attention[t][path[t]] for t in range(length)]
        return np.stack(rows) if rows else np.zeros((0, source_size), np.float32)


def _check_common(beam_size: int, n_best: int, min_length: int, no_repeat_ngram: int, mode: str) -> None:
    if beam_size < 1:
        raise ValueError("beam_size must be at least 1")
    if not 1 <= n_best <= beam_size:
        raise ValueError("n_best must be between 1 and beam_size")
    if min_length < 0 or no_repeat_ngram < 0:
        raise ValueError("min_length and no_repeat_ngram must be ≥ 0")
    if mode not in LENGTH_NORMALIZATIONS:
        raise ValueError(f"length normalization must be one of {', '.join(LENGTH_NORMALIZATIONS)}, not {mode!r}")


# ---------------------------------------------------------------- greedy search
def greedy_search(
    step: StepFunction,
    start_ids: Union[Sequence[int], np.ndarray],
    state: State,
    max_length: Union[int, Sequence[int], np.ndarray],
    *,
    eos_id: int = EOS_ID,
    min_length: int = 0,
    no_repeat_ngram: int = 0,
    forbidden_ids: Sequence[int] = DEFAULT_FORBIDDEN_IDS,
    length_penalty_alpha: float = 0.0,
    length_normalization: str = "gnmt",
) -> list[SearchHypothesis]:
    """The most likely next piece at every step, for a batch of B items at once.

    start_ids: int [B] first input of each item (usually ``BOS_ID``).
    state: nest of [B, ...] arrays (see :mod:`nlpcore.decoding.step`).
    max_length: int or [B]: most pieces per item (each item costs at most this
        many step calls). Finished items leave the batch.
    The length-penalty arguments only set ``score``, for comparison with
    :func:`beam_search`. Returns one hypothesis per item, in input order.
    """
    _check_common(1, 1, min_length, no_repeat_ngram, length_normalization)
    start_ids = np.asarray(start_ids, dtype=np.int32).reshape(-1)
    batch_size = len(start_ids)
    max_lengths = _per_item(max_length, batch_size, "max_length")
    results: list[Optional[SearchHypothesis]] = [None] * batch_size
    active = np.arange(batch_size)  # items still decoding, one row each
    ids = start_ids
    log_prob = np.zeros(batch_size, np.float64)
    history = np.zeros((batch_size, 0), np.int32)
    trace = _AttentionTrace()
    for t in range(int(max_lengths.max())):
        logits, state, attention = step(ids, state)
        trace.record(attention, len(active))
        scores, log_normalizer = _next_scores(
            logits, len(active), history, eos_id=eos_id, min_length=min_length,
            no_repeat_ngram=no_repeat_ngram, forbidden_ids=forbidden_ids,
        )
        tokens = np.argmax(scores, axis=1)  # first maximum: lowest id on ties
        log_prob = log_prob + (scores[np.arange(len(active)), tokens] - log_normalizer)
        dead = ~np.isfinite(log_prob)  # every piece was masked out: the sequence ends here
        ended = (tokens == eos_id) & ~dead
        grown = ~ended & ~dead  # the chosen piece belongs to the sequence
        done = ended | dead | (t + 1 >= max_lengths[active])
        for row in np.nonzero(done)[0]:
            pieces = history[row].tolist() + ([int(tokens[row])] if grown[row] else [])
            scored_length = len(pieces) + int(ended[row])
            results[active[row]] = SearchHypothesis(
                ids=tuple(pieces),
                score=float(log_prob[row] / length_penalty(scored_length, length_penalty_alpha, length_normalization)),
                log_prob=float(log_prob[row]),
                attention=trace.rebuild(t, int(row), len(pieces)),
                truncated=not ended[row],
            )
        keep = np.nonzero(~done)[0]
        if len(keep) == 0:
            break
        trace.advance(keep)
        state = gather_state(state, keep) if len(keep) < len(active) else state
        history = np.concatenate([history[keep], tokens[keep, None].astype(np.int32)], axis=1)
        ids = tokens[keep].astype(np.int32)
        log_prob = log_prob[keep]
        active = active[keep]
    return results  # type: ignore[return-value]


# ---------------------------------------------------------------- beam search
def beam_search(
    step: StepFunction,
    start_ids: Union[Sequence[int], np.ndarray],
    state: State,
    beam_size: int,
    max_length: Union[int, Sequence[int], np.ndarray],
    *,
    n_best: int = 1,
    length_penalty_alpha: float = 0.0,
    length_normalization: str = "gnmt",
    no_repeat_ngram: int = 0,
    min_length: int = 0,
    eos_id: int = EOS_ID,
    forbidden_ids: Sequence[int] = DEFAULT_FORBIDDEN_IDS,
    stopping: str = "exact",
) -> list[list[SearchHypothesis]]:
    """Beam search for a batch of B items, all beams in one step call per time step.

    start_ids: int [B] first input of each item (usually ``BOS_ID``).
    state: nest of [B, ...] arrays; it is tiled here to B·K rows, row ``b·K + k``
        holding beam k of item b.
    beam_size: K, hypotheses kept alive per item.
    max_length: int or [B]: most pieces per item.
    n_best: hypotheses returned per item (≤ K).
    length_penalty_alpha, length_normalization: see :func:`length_penalty`.
    no_repeat_ngram: n > 0 forbids any hypothesis to produce the same n-gram twice.
    min_length: ``</s>`` is forbidden before this many pieces.
    forbidden_ids: pieces never produced (padding and ``<s>`` by default).

    stopping: when an item stops searching.
        ``"exact"``: when no alive beam can beat its n-th best finished score
        however long it grows (log-probabilities only fall; the penalty is
        evaluated at the shortest and longest reachable lengths).
        ``"current"``: when no alive beam beats its best finished score at
        the next length, as if it ended there (the heuristic of Hugging
        Face's ``early_stopping=False``, judged by the best finished
        hypothesis rather than the n-th). The moment does not depend on
        ``n_best``, so neither does the best hypothesis; fewer than
        ``n_best`` may have finished by then (with 3 asked of the shipped
        models, about one sentence in five gets fewer). With one hypothesis
        asked and no length penalty the two rules agree; with a penalty that
        favours longer outputs, ``"exact"`` keeps searching until the alive
        beams' raw log-probabilities fall far below the finished ones, often
        up to ``max_length``.

    Each step keeps the 2K best extensions of an item's beams: those ending in
    ``</s>`` among the best K are finished, the best K others stay alive. An
    item stops as ``stopping`` says, when no beam is left, or at
    ``max_length``; its rows then leave the batch, so N = K × items
    still searching. Equal scores are ranked by beam, then by piece id, and
    among finished hypotheses by the order they finished in.

    Returns, per item in input order, up to ``n_best`` hypotheses best first
    (fewer only if fewer than ``n_best`` sequences have non-zero probability,
    or with ``"current"`` stopping, if fewer had finished when it stopped).
    """
    _check_common(beam_size, n_best, min_length, no_repeat_ngram, length_normalization)
    if stopping not in BEAM_STOPPING:
        raise ValueError(f"stopping must be one of {', '.join(BEAM_STOPPING)}, not {stopping!r}")
    start_ids = np.asarray(start_ids, dtype=np.int32).reshape(-1)
    batch_size, beams = len(start_ids), int(beam_size)
    max_lengths = _per_item(max_length, batch_size, "max_length")

    def penalty(scored_length):
        return length_penalty(scored_length, length_penalty_alpha, length_normalization)

    # Per item: a min-heap of (score, -finish_order, hypothesis parts) holding the n best.
    finished: list[list[tuple]] = [[] for _ in range(batch_size)]
    best_finished = np.full(batch_size, -np.inf)  # per item: its best finished score
    finish_order = itertools.count()
    active = np.arange(batch_size)  # items still searching, K rows each
    state = tile_state(state, beams)
    ids = np.repeat(start_ids, beams)
    first_beam_only = np.where(np.arange(beams) == 0, 0.0, -np.inf)  # identical beams would repeat each other
    alive_log_prob = np.tile(first_beam_only, batch_size)  # float64 [N]
    history = np.zeros((batch_size * beams, 0), np.int32)
    trace = _AttentionTrace()

    for t in range(int(max_lengths.max())):
        rows = len(active) * beams
        logits, state, attention = step(ids, state)
        trace.record(attention, rows)
        scores, log_normalizer = _next_scores(
            logits, rows, history, eos_id=eos_id, min_length=min_length,
            no_repeat_ngram=no_repeat_ngram, forbidden_ids=forbidden_ids,
        )
        # The 2K best extensions of an item are among the 2K best of each of its beams:
        # rank within rows first ([N, V] → [N, P]), then across an item's K·P candidates.
        per_row = min(2 * beams, scores.shape[1])
        row_tokens = top_k_indices(scores, per_row)  # [N, P], best first, lower id on ties
        row_log_probs = np.take_along_axis(scores, row_tokens, axis=1) - log_normalizer[:, None]
        candidates = (alive_log_prob[:, None] + row_log_probs).reshape(len(active), beams * per_row)
        best = top_k_indices(candidates, 2 * beams)  # [items, M]: ties by beam, then by piece id
        best_log_prob = np.take_along_axis(candidates, best, axis=1)
        origin_row = best // per_row + (np.arange(len(active)) * beams)[:, None]  # rows of this step
        best_token = np.take_along_axis(row_tokens.reshape(len(active), beams * per_row), best, axis=1)
        is_eos = best_token == eos_id
        last_step = (t + 1 >= max_lengths[active])[:, None]
        rank = np.arange(best.shape[1])[None, :]
        finishing = (is_eos | last_step) & (rank < beams) & np.isfinite(best_log_prob)

        for item, position in zip(*np.nonzero(finishing)):
            row, ended = int(origin_row[item, position]), bool(is_eos[item, position])
            pieces = history[row].tolist() + ([] if ended else [int(best_token[item, position])])
            log_prob = float(best_log_prob[item, position])
            score = float(log_prob / penalty(len(pieces) + ended))
            entry = (score, -next(finish_order), tuple(pieces), log_prob, not ended, t, row)
            heap = finished[active[item]]
            best_finished[active[item]] = max(best_finished[active[item]], score)
            if len(heap) < n_best:
                heapq.heappush(heap, entry)
            elif entry[:2] > heap[0][:2]:
                heapq.heapreplace(heap, entry)

        # The K best extensions that do not end the hypothesis stay alive.
        survivors = np.argsort(is_eos, axis=1, kind="stable")[:, :beams]  # keeps rank order
        next_row = np.take_along_axis(origin_row, survivors, axis=1)
        next_token = np.take_along_axis(best_token, survivors, axis=1)
        next_log_prob = np.where(
            np.take_along_axis(is_eos, survivors, axis=1), -np.inf, np.take_along_axis(best_log_prob, survivors, axis=1)
        )
        best_alive = next_log_prob[:, 0]
        # Highest score any alive beam could still reach (its log-prob can only fall),
        # or with "current", the score it would have if it ended at the next step.
        reachable = best_alive / penalty(t + 2)
        if stopping == "exact":  # no alive beam can beat the n-th best at any length
            reachable = np.maximum(reachable, best_alive / penalty(max_lengths[active]))
            cannot_improve = np.array(
                [len(finished[item]) >= n_best and finished[item][0][0] >= bound
                 for item, bound in zip(active, reachable)],
                dtype=bool,
            )
        else:  # no alive beam beats the best finished one at its next length
            cannot_improve = best_finished[active] >= reachable
        done = last_step[:, 0] | ~np.isfinite(best_alive) | cannot_improve
        keep = np.nonzero(~done)[0]
        if len(keep) == 0:
            break
        parent_rows = next_row[keep].reshape(-1)
        trace.advance(parent_rows)
        state = gather_state(state, parent_rows)
        history = np.concatenate([history[parent_rows], next_token[keep].reshape(-1, 1).astype(np.int32)], axis=1)
        ids = next_token[keep].reshape(-1).astype(np.int32)
        alive_log_prob = next_log_prob[keep].reshape(-1)
        active = active[keep]

    results = []
    for heap in finished:
        ranked = sorted(heap, key=lambda entry: entry[:2], reverse=True)
        results.append(
            [
                SearchHypothesis(
                    ids=pieces,
                    score=score,
                    log_prob=log_prob,
                    attention=trace.rebuild(t, row, len(pieces)),
                    truncated=truncated,
                )
                for score, _, pieces, log_prob, truncated, t, row in ranked
            ]
        )
    return results
