"""Small serializable layers shared by the project's models."""

from __future__ import annotations

import keras
from keras import ops


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
