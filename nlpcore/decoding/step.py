"""The step-function contract every search and sampler in this package uses.

A step function advances a decoder by one token for a batch of rows::

    step(ids, state) -> (logits, new_state, attention)

ids:
    ``int32 [N]`` — the last token of each row (``BOS_ID`` or the last prompt
    piece on the first call).
state:
    the decoder's state: a nest of tuples, lists, dicts (and named tuples) whose
    leaves are NumPy arrays with the row axis first (``[N, ...]``) or ``None``.
    Encoder outputs and source masks travel here too, already one copy per row.
logits:
    ``float [N, V]`` — unnormalised scores of the next token (-inf allowed).
new_state:
    the state after consuming ``ids``, same structure, still ``[N, ...]``.
attention:
    ``float [N, S]`` — weights over the S source positions used to predict the
    next token, or ``None`` for decoders without attention.

N is whatever the search needs: batch items × beams in :func:`beam_search`,
active batch items in :func:`greedy_search`, 1 in the samplers. Rows are
reordered, duplicated and dropped between calls with :func:`gather_state`, so a
step function never sees beams or finished sentences: it just maps rows to rows.
Searches call it exactly once per time step for all their rows.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Protocol, Tuple

import numpy as np

State = Any  # a nest (tuple / list / dict / named tuple) of [N, ...] arrays and None


class StepFunction(Protocol):
    """``(ids int32 [N], state) -> (logits [N, V], new_state, attention [N, S] | None)``."""

    def __call__(self, ids: np.ndarray, state: State) -> Tuple[np.ndarray, State, Optional[np.ndarray]]: ...


def map_state(fn: Callable[[np.ndarray], np.ndarray], state: State) -> State:
    """Apply ``fn`` to every array leaf of a state nest, keeping its structure.

    ``None`` leaves stay ``None``. Any other leaf (a Python number, a framework
    tensor) is an error: step functions hand back NumPy arrays so that rows can
    be gathered without a framework call.
    """
    if state is None:
        return None
    if isinstance(state, np.ndarray):
        return fn(state)
    if isinstance(state, dict):
        return {key: map_state(fn, value) for key, value in state.items()}
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # named tuple
        return type(state)(*(map_state(fn, value) for value in state))
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(fn, value) for value in state)
    raise TypeError(
        f"decoder state leaves must be NumPy arrays with the row axis first (or None), not {type(state).__name__}"
    )


def gather_state(state: State, indices: np.ndarray) -> State:
    """Rows ``indices`` of every array in the nest: ``arr[indices]`` ([N, ...] → [len(indices), ...])."""
    indices = np.asarray(indices, dtype=np.intp)
    return map_state(lambda array: np.take(array, indices, axis=0), state)


def tile_state(state: State, copies: int) -> State:
    """Repeat each row ``copies`` times in place: [B, ...] → [B * copies, ...].

    Row ``b * copies + k`` is copy ``k`` of row ``b``, the layout
    :func:`~nlpcore.decoding.search.beam_search` uses for beam ``k`` of item ``b``.
    """
    if copies < 1:
        raise ValueError("copies must be at least 1")
    return map_state(lambda array: np.repeat(array, copies, axis=0), state)
