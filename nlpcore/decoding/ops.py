"""Array helpers shared by the searches and the samplers (NumPy only).

Ties are always broken the same way: among equal scores, the lower column
index wins. The searches rely on this for reproducible output.
"""

from __future__ import annotations

import numpy as np

from ..numpy_rnn import softmax


def scores_and_log_normalizer(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores float32 [N, V], log_normalizer float64 [N]) with log P(v) = scores[:, v] - log_normalizer.

    The searches rank and mask ``scores`` (a writable copy of the logits) and
    turn only the chosen entries into log-probabilities, instead of building
    the whole [N, V] log-softmax: a row's ranking does not depend on its
    normaliser. NaN logits become -inf; a row without a finite maximum (no
    finite logit, or a +inf one) becomes all -inf, i.e. impossible.
    """
    scores = np.array(logits, dtype=np.float32)
    peak = scores.max(axis=1)
    if not np.isfinite(peak).all():
        scores[np.isnan(scores)] = -np.inf
        peak = scores.max(axis=1)
        unusable = ~np.isfinite(peak)
        scores[unusable] = -np.inf
        peak[unusable] = 0.0
    shifted = scores - peak[:, None]
    total = np.exp(shifted, out=shifted).sum(axis=1, dtype=np.float64)
    log_total = np.log(total, out=np.zeros_like(total), where=total > 0)
    return scores, peak.astype(np.float64) + log_total


def safe_softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis; rows with no finite logit become all zeros."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        result = softmax(logits, axis=-1)
    return np.where(np.isnan(result), 0.0, result).astype(result.dtype, copy=False)


def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """bool [R, C]: exactly ``min(k, C)`` True per row, on the highest scores.

    scores: [R, C] without NaN (-inf is fine). Ties at the boundary go to the
    lower column index. Costs a partition and a few comparisons, no full sort.
    """
    rows, columns = scores.shape
    k = min(int(k), columns)
    if k <= 0:
        return np.zeros(scores.shape, dtype=bool)
    if k == columns:
        return np.ones(scores.shape, dtype=bool)
    kth_largest = np.partition(scores, columns - k, axis=1)[:, columns - k, None]  # [R, 1]
    above = scores > kth_largest
    equal = scores == kth_largest
    needed = k - above.sum(axis=1, keepdims=True)  # ≥ 1: the k-th value itself
    if np.array_equal(equal.sum(axis=1, keepdims=True), needed):
        return above | equal  # the usual case: no tie straddles the boundary
    return above | (equal & (np.cumsum(equal, axis=1) <= needed))


_BLOCK = 64


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """int [R, min(k, C)]: column indices of the k highest scores per row, best first.

    scores: [R, C] without NaN. Equal scores are ordered by column index, and a
    tie straddling the k-th place goes to the lower columns, so the result is
    fully determined by the input. One partition per row; the exact tie rule
    costs a second pass only for rows where such a tie exists.
    """
    rows, columns = scores.shape
    k = min(int(k), columns)
    if k <= 0:
        return np.zeros((rows, 0), np.intp)
    if k == columns:
        return np.argsort(-scores, axis=1, kind="stable")
    if columns >= 16 * _BLOCK and 4 * k * _BLOCK <= columns:  # a beam's rows over a vocabulary
        return _top_k_by_blocks(scores, k)
    best = np.argpartition(scores, columns - k, axis=1)[:, columns - k :]
    best_scores = np.take_along_axis(scores, best, axis=1)
    kth_largest = best_scores.min(axis=1, keepdims=True)
    tied_inside = (best_scores == kth_largest).sum(axis=1)
    tied_overall = (scores == kth_largest).sum(axis=1)
    straddling = np.nonzero(tied_inside != tied_overall)[0]
    if len(straddling):
        mask = top_k_mask(scores[straddling], k)
        best[straddling] = np.nonzero(mask)[1].reshape(len(straddling), k)
        best_scores[straddling] = np.take_along_axis(scores[straddling], best[straddling], axis=1)
    order = np.lexsort((best, -best_scores), axis=1)  # by score, then by column
    return np.take_along_axis(best, order, axis=1)


def _top_k_by_blocks(scores: np.ndarray, k: int) -> np.ndarray:
    """:func:`top_k_indices` for wide rows, partitioning k blocks of columns instead of the whole row.

    The columns are cut into blocks of ``_BLOCK``; the k best entries of a row
    lie in the k blocks with the highest maxima, ties going to lower blocks: an
    entry below the k-th best block maximum has k blocks' maxima above it, and
    on a tie at that value the chosen blocks are the lower ones, holding at
    least as many tied entries as are needed and all at lower columns. The
    chosen blocks are kept in column order, so the tie rule carries over.
    """
    rows, columns = scores.shape
    blocks = -(-columns // _BLOCK)
    if blocks * _BLOCK != columns:  # the padding sits after every real column, so it is never chosen
        padded = np.full((rows, blocks * _BLOCK), -np.inf, dtype=scores.dtype)
        padded[:, :columns] = scores
        scores = padded
    maxima = scores.reshape(rows, blocks, _BLOCK).max(axis=2)
    chosen = np.sort(top_k_indices(maxima, k), axis=1)  # [R, k] block numbers, ascending
    candidates = (chosen[:, :, None] * _BLOCK + np.arange(_BLOCK)).reshape(rows, k * _BLOCK)
    picked = top_k_indices(np.take_along_axis(scores, candidates, axis=1), k)
    return np.take_along_axis(candidates, picked, axis=1)
