"""Small serializable layers shared by the project's models."""

from __future__ import annotations

import keras
from keras import ops


def lstm_layer(units: int, **kwargs) -> keras.layers.LSTM:
    """``keras.layers.LSTM``, kept off JAX's cuDNN path (``jax.experimental.rnn``).

    Under JAX on a GPU, Keras runs an LSTM without a mask (a decoder, a
    language model) through that path. Measured on an H200 (JAX 0.11.2,
    Keras 3.15.1), en→fr translation, the same config and data (6- and
    2-minute budgets): on that path validation token accuracy was 0.31 after
    the first epoch and stalled at 0.46 (BLEU 26); on the ``lax.scan`` path it
    was 0.61 after the first epoch and 0.71 after the fourth, as TensorFlow
    trains. One batch's loss and gradients, computed outside ``jax.jit``,
    agree between the two paths to 1e-4; inside the compiled train step
    they were not compared. Until the fault is found, JAX uses the scan path.
    TensorFlow keeps its own cuDNN kernel.
    """
    if keras.backend.backend() == "jax":
        kwargs.setdefault("use_cudnn", False)
    return keras.layers.LSTM(units, **kwargs)


@keras.saving.register_keras_serializable(package="nlpcore")
class NotEqual(keras.layers.Layer):
    """Boolean mask ``ids != value`` ([B, T] → [B, T])."""

    def __init__(self, value: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.value = value

    def call(self, ids):
        return ops.not_equal(ids, self.value)

    def compute_output_spec(self, ids):
        return keras.KerasTensor(ids.shape, dtype="bool")

    def get_config(self):
        return {**super().get_config(), "value": self.value}


@keras.saving.register_keras_serializable(package="nlpcore")
class MaskedPooling(keras.layers.Layer):
    """Pool a sequence over its valid time steps.

    Inputs: values [B, T, D] and a boolean mask [B, T]. ``mode``:
    ``"max"``, ``"mean"``, ``"max_mean"`` (both, concatenated → [B, 2D]) or
    ``"last"`` (the last valid step). Padded steps never win a max and never
    count in a mean; an all-padding row pools to zeros.
    """

    MODES = ("max", "mean", "max_mean", "last")

    def __init__(self, mode: str = "max_mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"pooling mode must be one of {self.MODES}, not {mode!r}")
        self.mode = mode
        self.supports_masking = True  # the mask is consumed here, not passed on

    def compute_mask(self, values, mask=None):
        return None

    def call(self, values, mask):
        valid = ops.cast(ops.expand_dims(mask, -1), values.dtype)  # [B, T, 1]
        count = ops.sum(valid, axis=1)  # [B, 1]
        pooled = []
        if self.mode in ("max", "max_mean"):
            lowest = ops.min(values) - 1.0
            masked = values * valid + lowest * (1.0 - valid)
            pooled.append(ops.max(masked, axis=1) * ops.cast(count > 0, values.dtype))
        if self.mode in ("mean", "max_mean"):
            pooled.append(ops.sum(values * valid, axis=1) / ops.maximum(count, 1.0))
        if self.mode == "last":
            steps = ops.shape(values)[1]
            last = ops.cast(count[:, 0], "int32") - 1
            one_hot = ops.one_hot(ops.maximum(last, 0), steps, dtype=values.dtype) * ops.cast(
                ops.expand_dims(last >= 0, -1), values.dtype
            )
            pooled.append(ops.einsum("bt,btd->bd", one_hot, values))
        return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)

    def compute_output_shape(self, values_shape, mask_shape=None):
        width = values_shape[-1] * (2 if self.mode == "max_mean" else 1) if values_shape[-1] else None
        return (values_shape[0], width)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="nlpcore")
class TiedEmbedding(keras.layers.Layer):
    """An embedding that can also map vectors back to vocabulary logits.

    ``layer(ids)``: ids [...] → embeddings [..., D] (a row lookup).
    ``layer(x, reverse=True)``: x [..., D] → float32 logits [..., V] =
    ``x @ embeddings.T`` (``+ bias`` with ``reverse_bias``).
    Weights: ``embeddings`` [V, D], then ``bias`` [V] when ``reverse_bias``.
    """

    def __init__(self, input_dim: int, output_dim: int, reverse_bias: bool = False,
                 embeddings_initializer: str | dict = "uniform", **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.reverse_bias = reverse_bias
        # Kept as a name or config and instantiated in build(), where random
        # initializers draw their seed, so seeded runs stay reproducible.
        self.embeddings_initializer = embeddings_initializer

    def build(self, inputs_shape=None):
        if self.built:
            return
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.input_dim, self.output_dim),
            initializer=keras.initializers.get(self.embeddings_initializer))
        if self.reverse_bias:
            self.bias = self.add_weight(name="bias", shape=(self.input_dim,), initializer="zeros")
        self.built = True

    def call(self, inputs, reverse: bool = False):
        if not reverse:
            return ops.take(self.embeddings, ops.cast(inputs, "int32"), axis=0)
        logits = ops.matmul(inputs, ops.transpose(self.embeddings))
        if self.reverse_bias:
            logits = logits + self.bias
        return ops.cast(logits, "float32")

    def compute_output_spec(self, inputs, reverse: bool = False):
        if reverse:
            return keras.KerasTensor((*inputs.shape[:-1], self.input_dim), dtype="float32")
        return keras.KerasTensor((*inputs.shape, self.output_dim), dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "reverse_bias": self.reverse_bias,
                "embeddings_initializer": self.embeddings_initializer}
