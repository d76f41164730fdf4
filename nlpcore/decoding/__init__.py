"""Search and sampling over a step function: they never depend on a model class.

Pure NumPy (no Keras, TensorFlow or Qt). A decoder plugs in with one callable,

    step(ids int32 [N], state) -> (logits [N, V], new_state, attention [N, S] | None)

documented in :mod:`nlpcore.decoding.step`; state is a nest of [N, ...] arrays
that the searches reorder with :func:`gather_state`.

* :mod:`~nlpcore.decoding.search` — :func:`greedy_search`, :func:`beam_search`
  → :class:`SearchHypothesis` records; :func:`replace_unknown` for ``<unk>``,
  :func:`copy_numbers` for numbers.
* :mod:`~nlpcore.decoding.samplers` — :func:`get_sampler` by name (``"greedy"``,
  ``"temperature"``, ``"top_k"``, ``"top_p"``); ``Sampler.sample`` streams
  :class:`SampledToken` records and stops on ``</s>``, length or a cancel flag.
"""

from .samplers import (
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
from .search import (
    BEAM_STOPPING,
    DEFAULT_FORBIDDEN_IDS,
    LENGTH_NORMALIZATIONS,
    SearchHypothesis,
    beam_search,
    copy_numbers,
    greedy_search,
    length_penalty,
    replace_unknown,
    rerank,
)
from .step import State, StepFunction, gather_state, map_state, tile_state

__all__ = [
    "StepFunction",
    "State",
    "map_state",
    "gather_state",
    "tile_state",
    "SearchHypothesis",
    "greedy_search",
    "beam_search",
    "length_penalty",
    "replace_unknown",
    "rerank",
    "LENGTH_NORMALIZATIONS",
    "BEAM_STOPPING",
    "DEFAULT_FORBIDDEN_IDS",
    "Sampler",
    "GreedySampler",
    "TemperatureSampler",
    "TopKSampler",
    "TopPSampler",
    "SampledToken",
    "SAMPLERS",
    "get_sampler",
    "apply_repetition_penalty",
    "make_rng",
]
