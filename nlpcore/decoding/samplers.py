"""Token samplers for text generation, chosen by name (``get_sampler("top_p", p=0.9)``).

The :class:`Sampler` base class owns the streaming loop and the shared logit
processing; a subclass only decides which tokens stay candidates
(:meth:`Sampler.filter_logits`) or how one is picked
(:meth:`Sampler.get_next_token`). For every step, in this order:

1. forbidden ids (padding and ``<s>`` by default) get -inf;
2. repetition penalty (CTRL, Keskar et al. 2019): each id already in the
   prompt or the output has its logit divided by the penalty when positive,
   multiplied by it when negative (once, however often it occurred);
3. temperature: logits divided by it, once, in float32 (greedy ignores it);
4. filtering (top-k, top-p), then softmax: the *final distribution*;
5. one token drawn from it with the generator passed in, so the same seed
   gives the same tokens.

Shapes: N rows, V vocabulary, T context length.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Generator, Optional, Sequence, Union

import numpy as np

from ..tokenizer import EOS_ID
from .ops import safe_softmax, top_k_mask
from .search import DEFAULT_FORBIDDEN_IDS
from .step import State, StepFunction

RandomSource = Union[np.random.Generator, int, None]


def make_rng(rng: RandomSource) -> np.random.Generator:
    """A generator as given, a new one seeded with an int, or a fresh unseeded one for ``None``."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def apply_repetition_penalty(logits: np.ndarray, context_ids: np.ndarray, penalty: float) -> np.ndarray:
    """CTRL repetition penalty on a copy of ``logits``.

    logits: [N, V]; context_ids: int [N, T] ids already in each row's context
    (ids outside [0, V) are ignored, so rows can be padded with -1).
    penalty: > 1 discourages repeats, 1 changes nothing.
    """
    logits = np.array(logits, copy=True)
    context_ids = np.asarray(context_ids)
    if penalty == 1.0 or context_ids.size == 0:
        return logits
    rows = np.broadcast_to(np.arange(len(logits))[:, None], context_ids.shape)
    valid = (context_ids >= 0) & (context_ids < logits.shape[1])
    rows, columns = rows[valid], context_ids[valid]
    seen = logits[rows, columns]  # duplicates read the original value, so a piece is penalised once
    logits[rows, columns] = np.where(seen > 0, seen / penalty, seen * penalty).astype(logits.dtype)
    return logits


@dataclass(frozen=True)
class SampledToken:
    """One generated token.

    id: the token id.
    prob: its probability under the final (penalised, tempered, filtered and
        renormalised) distribution it was drawn from; for greedy decoding, its
        probability under the penalised softmax.
    """

    id: int
    prob: float


class Sampler:
    """Base class: the generation loop and the shared logit processing.

    temperature: > 0; below 1 sharpens the distribution, above 1 flattens it.
    repetition_penalty: > 0; CTRL penalty for ids already in the context (1 = off).
    forbidden_ids: ids never sampled.
    """

    uses_temperature = True

    def __init__(
        self,
        temperature: float = 1.0,
        repetition_penalty: float = 1.0,
        forbidden_ids: Sequence[int] = DEFAULT_FORBIDDEN_IDS,
    ):
        if not temperature > 0:
            raise ValueError("temperature must be positive (use the greedy sampler for argmax)")
        if not repetition_penalty > 0:
            raise ValueError("repetition_penalty must be positive")
        self.temperature = float(temperature)
        self.repetition_penalty = float(repetition_penalty)
        self.forbidden_ids = tuple(int(i) for i in forbidden_ids)

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"{type(self).__name__}({options})"

    # -------------------------------------------------------- per-step processing
    def prepare_logits(self, logits: np.ndarray, context_ids: Optional[np.ndarray] = None) -> np.ndarray:
        """float32 [N, V]: forbidden ids removed, repetition penalty, then temperature."""
        logits = np.array(np.atleast_2d(logits), dtype=np.float32)
        forbidden = [i for i in self.forbidden_ids if 0 <= i < logits.shape[1]]
        logits[:, forbidden] = -np.inf
        if context_ids is not None:
            logits = apply_repetition_penalty(logits, np.atleast_2d(context_ids), self.repetition_penalty)
        if self.uses_temperature and self.temperature != 1.0:
            logits /= np.float32(self.temperature)
        return logits

    def filter_logits(self, logits: np.ndarray) -> np.ndarray:
        """[N, V] → [N, V] with the tokens that may not be drawn set to -inf (none here)."""
        return logits

    def distribution(self, logits: np.ndarray, context_ids: Optional[np.ndarray] = None) -> np.ndarray:
        """float32 [N, V]: the final distribution the next token is drawn from."""
        probabilities = safe_softmax(self.filter_logits(self.prepare_logits(logits, context_ids)))
        if not (probabilities.sum(axis=1) > 0).all():
            raise ValueError("no token can be sampled: every logit is -inf or NaN")
        return probabilities

    def get_next_token(self, probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """int [N]: one draw per row from ``probabilities`` [N, V] (one uniform number per row).

        Inverse-CDF sampling: a token of probability 0 is never returned.
        """
        cumulative = np.cumsum(probabilities, axis=1, dtype=np.float64)
        threshold = rng.random(len(probabilities)) * cumulative[:, -1]
        tokens = (cumulative <= threshold[:, None]).sum(axis=1)
        last_possible = probabilities.shape[1] - 1 - np.argmax(probabilities[:, ::-1] > 0, axis=1)
        return np.minimum(tokens, last_possible)  # guards against rounding at the top end

    def next_tokens(
        self, logits: np.ndarray, context_ids: Optional[np.ndarray], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids int [N], probabilities float [N]) of the tokens picked from ``logits`` [N, V]."""
        probabilities = self.distribution(logits, context_ids)
        tokens = self.get_next_token(probabilities, rng)
        return tokens, probabilities[np.arange(len(tokens)), tokens]

    # -------------------------------------------------------- the loop
    def sample(
        self,
        step: StepFunction,
        prompt_ids: Sequence[int],
        state: State,
        max_new_tokens: int,
        *,
        eos_id: Optional[int] = EOS_ID,
        rng: RandomSource = None,
        should_stop: Optional[Callable[[], bool]] = None,
    ) -> Generator[SampledToken, None, str]:
        """Generate up to ``max_new_tokens`` tokens after a prompt, one at a time.

        step: a step function (see :mod:`nlpcore.decoding.step`), called with one row.
        prompt_ids: the P ≥ 1 ids fed first, in order (start with ``BOS_ID`` if
            the model expects it); they are also context for the repetition penalty.
        state: the step state before the first prompt id, [1, ...] arrays.
        eos_id: generation ends when it is drawn (it is not yielded); None = never.
        rng: a ``numpy.random.Generator``, or a seed to create one.
        should_stop: checked before every step call (a cancel flag's ``is_set``);
            once it returns true the step function is not called again.

        Yields one :class:`SampledToken` per generated token. The generator's
        return value (``StopIteration.value``, or the result of ``yield from``)
        says why it ended: ``"eos"``, ``"length"`` or ``"cancelled"``.
        """
        prompt = [int(i) for i in prompt_ids]
        if not prompt:
            raise ValueError("the prompt needs at least one id (e.g. BOS_ID)")
        if max_new_tokens < 0:
            raise ValueError("max_new_tokens must be ≥ 0")
        return self._generate(step, prompt, state, max_new_tokens, eos_id, make_rng(rng), should_stop)

    def _generate(self, step, prompt, state, max_new_tokens, eos_id, rng, should_stop):
        """The loop behind :meth:`sample` (arguments already checked)."""
        if max_new_tokens == 0:
            return "length"
        context = np.full((1, len(prompt) + max_new_tokens), -1, dtype=np.int64)  # -1: not yet generated
        context[0, : len(prompt)] = prompt
        stop = should_stop or (lambda: False)
        logits = None
        for token in prompt:
            if stop():
                return "cancelled"
            logits, state, _ = step(np.array([token], dtype=np.int32), state)
        for generated in range(max_new_tokens):
            if stop():
                return "cancelled"
            if generated > 0:
                logits, state, _ = step(np.array([token], dtype=np.int32), state)
            tokens, probabilities = self.next_tokens(logits, context, rng)
            token = int(tokens[0])
            if token == eos_id:
                return "eos"
            context[0, len(prompt) + generated] = token
            yield SampledToken(token, float(probabilities[0]))
        return "length"


class GreedySampler(Sampler):
    """Always the most likely token (the lowest id among equals); ignores temperature."""

    uses_temperature = False

    def __init__(self, repetition_penalty: float = 1.0, forbidden_ids: Sequence[int] = DEFAULT_FORBIDDEN_IDS):
        super().__init__(1.0, repetition_penalty, forbidden_ids)

    def get_next_token(self, probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.argmax(probabilities, axis=1)


class TemperatureSampler(Sampler):
    """A draw from the whole tempered distribution."""


class TopKSampler(Sampler):
    """A draw among the k most likely tokens (ties at the boundary: lower ids first).

    k: tokens kept; 0 keeps them all.
    """

    def __init__(
        self,
        k: int = 40,
        temperature: float = 1.0,
        repetition_penalty: float = 1.0,
        forbidden_ids: Sequence[int] = DEFAULT_FORBIDDEN_IDS,
    ):
        super().__init__(temperature, repetition_penalty, forbidden_ids)
        if k < 0:
            raise ValueError("k must be ≥ 0 (0 keeps every token)")
        self.k = int(k)

    def filter_logits(self, logits: np.ndarray) -> np.ndarray:
        if self.k == 0 or self.k >= logits.shape[1]:
            return logits
        return np.where(top_k_mask(logits, self.k), logits, -np.inf).astype(logits.dtype, copy=False)


class TopPSampler(Sampler):
    """Nucleus sampling: a draw among the fewest most-likely tokens whose mass reaches p.

    p: in (0, 1]; the most likely token is always kept. Equal probabilities are
    taken in id order, so the nucleus is minimal and fully determined.
    """

    def __init__(
        self,
        p: float = 0.9,
        temperature: float = 1.0,
        repetition_penalty: float = 1.0,
        forbidden_ids: Sequence[int] = DEFAULT_FORBIDDEN_IDS,
    ):
        super().__init__(temperature, repetition_penalty, forbidden_ids)
        if not 0 < p <= 1:
            raise ValueError("p must be in (0, 1]")
        self.p = float(p)

    def nucleus_mask(self, logits: np.ndarray) -> np.ndarray:
        """bool [N, V]: the tokens kept for prepared ``logits`` [N, V]."""
        probabilities = safe_softmax(logits).astype(np.float64)
        if self.p >= 1.0:
            return probabilities > 0
        order = np.argsort(-probabilities, axis=1, kind="stable")
        sorted_probabilities = np.take_along_axis(probabilities, order, axis=1)
        mass_before = np.zeros_like(sorted_probabilities)  # mass of the more likely tokens
        np.cumsum(sorted_probabilities[:, :-1], axis=1, out=mass_before[:, 1:])
        keep_sorted = (mass_before < self.p) & (sorted_probabilities > 0)
        keep_sorted[:, 0] = True
        keep = np.zeros(probabilities.shape, dtype=bool)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        return keep

    def filter_logits(self, logits: np.ndarray) -> np.ndarray:
        return np.where(self.nucleus_mask(logits), logits, -np.inf).astype(logits.dtype, copy=False)


SAMPLERS: dict[str, type[Sampler]] = {
    "greedy": GreedySampler,
    "temperature": TemperatureSampler,
    "top_k": TopKSampler,
    "top_p": TopPSampler,
}


def get_sampler(name: str, **options) -> Sampler:
    """The sampler called ``name`` (one of :data:`SAMPLERS`), built from ``options``.

    Options another sampler understands but this one does not are ignored
    (``get_sampler("greedy", temperature=0.8, k=40)`` is a greedy sampler), so a
    caller can pass every setting it has; an option no sampler knows is an error.
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    known = {p for cls in SAMPLERS.values() for p in inspect.signature(cls.__init__).parameters} - {"self"}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"unknown sampler option(s): {', '.join(sorted(unknown))}")
    cls = SAMPLERS[name]
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{key: value for key, value in options.items() if key in accepted})
