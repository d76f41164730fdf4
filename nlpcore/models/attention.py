"""Attention over an encoder's memory, with masking of source padding.

Two scoring functions, both as serializable Keras layers (``keras.ops`` only,
so they run on any backend):

* :class:`LuongAttention` — multiplicative "general" score (Luong et al. 2015),
  scaled by 1/sqrt(query size): ``score(q, m) = q · (m W) / sqrt(d_q)``.
* :class:`BahdanauAttention` — additive score (Bahdanau et al. 2015) with a
  weight-normalised scoring vector (Salimans & Kingma 2016; TensorFlow
  Addons' ``normalize=True``): ``score(q, m) = (g v/|v|) · tanh(q W_q + m W_m + b)``.

Both split the work the way a decoder uses it: :meth:`keys` projects the
memory once per source batch ([B, S, D_m] → [B, S, K]); :meth:`attend` scores
any number of queries against those keys. Padded source positions get a score
of ``MASK_VALUE`` before the softmax, so their weight is exactly zero whenever
a row has at least one valid position. ``nlpcore.inference`` holds the NumPy
twin of both layers; keep the two in step.
"""

from __future__ import annotations

import math

import keras
from keras import ops

MASK_VALUE = -1e9
ATTENTION_TYPES = ("luong", "bahdanau")


class _Attention(keras.layers.Layer):
    """Shared call logic: ``call(query [B, T, D_q], memory [B, S, D_m], mask [B, S])
    → (context [B, T, D_m], weights [B, T, S])``."""

    def keys(self, memory):
        raise NotImplementedError

    def scores(self, query, keys):
        """Unnormalised scores [B, T, S] of queries [B, T, D_q] against keys [B, S, K]."""
        raise NotImplementedError

    def attend(self, query, keys, memory, memory_mask=None):
        scores = ops.cast(self.scores(query, keys), "float32")
        if memory_mask is not None:
            valid = ops.expand_dims(ops.cast(memory_mask, "bool"), 1)  # [B, 1, S]
            scores = ops.where(valid, scores, ops.full_like(scores, MASK_VALUE))
        weights = ops.softmax(scores, axis=-1)
        context = ops.matmul(ops.cast(weights, memory.dtype), memory)
        return context, weights

    def call(self, query, memory, memory_mask=None):
        return self.attend(query, self.keys(memory), memory, memory_mask)

    def compute_output_spec(self, query, memory, memory_mask=None):
        batch, steps = query.shape[0], query.shape[1]
        return (
            keras.KerasTensor((batch, steps, memory.shape[-1]), dtype=memory.dtype),
            keras.KerasTensor((batch, steps, memory.shape[1]), dtype="float32"),
        )


@keras.saving.register_keras_serializable(package="nlpcore")
class LuongAttention(_Attention):
    """Luong's "general" attention, scaled by 1/sqrt(query size).

    Weights: ``kernel`` [D_m, D_q] (the memory is projected into query space,
    so the projection happens once per source sentence, not once per step).
    """

    def __init__(self, scale: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def build(self, query_shape, memory_shape=None, memory_mask_shape=None):
        if memory_shape is None:
            raise ValueError("LuongAttention needs the memory shape to build")
        self.query_size = int(query_shape[-1])
        self.kernel = self.add_weight(
            name="kernel", shape=(int(memory_shape[-1]), self.query_size), initializer="glorot_uniform"
        )

    def keys(self, memory):
        return ops.matmul(memory, self.kernel)  # [B, S, D_q]

    def scores(self, query, keys):
        scores = ops.matmul(query, ops.transpose(keys, (0, 2, 1)))  # [B, T, S]
        if self.scale:
            scores = scores * (1.0 / math.sqrt(self.query_size))
        return scores

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="nlpcore")
class BahdanauAttention(_Attention):
    """Bahdanau's additive attention with a weight-normalised scoring vector.

    Weights: ``query_kernel`` [D_q, A], ``memory_kernel`` [D_m, A],
    ``bias`` [A], ``v`` [A] and the scalar gain ``g`` (initialised to
    sqrt(1/A), as in TensorFlow Addons).
    """

    def __init__(self, units: int = 256, normalize: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.normalize = normalize

    def build(self, query_shape, memory_shape=None, memory_mask_shape=None):
        if memory_shape is None:
            raise ValueError("BahdanauAttention needs the memory shape to build")
        self.query_kernel = self.add_weight(
            name="query_kernel", shape=(int(query_shape[-1]), self.units), initializer="glorot_uniform"
        )
        self.memory_kernel = self.add_weight(
            name="memory_kernel", shape=(int(memory_shape[-1]), self.units), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.v = self.add_weight(name="v", shape=(self.units,), initializer="glorot_uniform")
        if self.normalize:
            self.g = self.add_weight(
                name="g", shape=(), initializer=keras.initializers.Constant(math.sqrt(1.0 / self.units))
            )

    def scoring_vector(self):
        if not self.normalize:
            return self.v
        return self.g * self.v / ops.sqrt(ops.sum(ops.square(self.v)))

    def keys(self, memory):
        return ops.matmul(memory, self.memory_kernel)  # [B, S, A]

    def scores(self, query, keys):
        processed = ops.matmul(query, self.query_kernel) + self.bias  # [B, T, A]
        hidden = ops.tanh(ops.expand_dims(processed, 2) + ops.expand_dims(keys, 1))  # [B, T, S, A]
        return ops.matmul(hidden, self.scoring_vector())  # [B, T, S]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "normalize": self.normalize}


def make_attention(kind: str, units: int = 256, name: str = "attention") -> _Attention:
    """``"luong"`` or ``"bahdanau"``."""
    if kind == "luong":
        return LuongAttention(name=name)
    if kind == "bahdanau":
        return BahdanauAttention(units, name=name)
    raise ValueError(f"attention must be one of {ATTENTION_TYPES}, not {kind!r}")
