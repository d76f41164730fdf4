"""Recurrent text classifier: Embedding → (Conv1D + MaxPooling1D →) (Bi)LSTM stack → masked pooling → Dense.

Input: piece ids [B, T] (int32, right-padded with PAD_ID = 0).
Output: class probabilities [B, num_classes] (float32).

Padding is handled with explicit masks (cuDNN needs strictly right-padded
input and masks; no recurrent dropout, which would disable cuDNN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, TypeVar

import keras

from .layers import MaskedPooling, NotEqual, lstm_layer

ENCODERS = ("lstm", "bilstm", "conv_lstm")
T = TypeVar("T")


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture of a classifier (saved in its package as ``config.yaml``).

    vocab_size: SentencePiece vocabulary size.
    embedding_dim: width of the piece embeddings.
    encoder: ``"lstm"``, ``"bilstm"`` or ``"conv_lstm"`` (Conv1D + MaxPooling1D
        before the recurrent stack).
    units: LSTM units per direction; layers: stacked recurrent layers.
    conv_filters, conv_kernel, conv_pool: the convolution front end of ``conv_lstm``.
    pooling: how the last layer's outputs become one vector: ``"last"`` state,
        masked ``"max"``, ``"mean"`` or ``"max_mean"``.
    dropout: on embeddings (whole channels), between layers and before the output.
    dense_units: an optional hidden Dense layer before the output (0 = none).
    num_classes: output classes (sentiment: 0 negative, 1 positive).
    max_length: inputs are truncated to this many pieces.
    truncation: ``"head"`` keeps the first ``max_length`` pieces; ``"head_tail"``
        keeps the first quarter and the last three quarters of the budget (a
        long review's verdict is often at its end).
    """

    vocab_size: int = 16000
    embedding_dim: int = 128
    encoder: str = "bilstm"
    units: int = 128
    layers: int = 1
    conv_filters: int = 128
    conv_kernel: int = 5
    conv_pool: int = 2
    pooling: str = "max_mean"
    dropout: float = 0.3
    dense_units: int = 0
    num_classes: int = 2
    max_length: int = 128
    truncation: str = "head"

    def __post_init__(self):
        if self.truncation not in ("head", "head_tail"):
            raise ValueError(f"truncation must be 'head' or 'head_tail', not {self.truncation!r}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, not {self.encoder!r}")
        if self.pooling not in MaskedPooling.MODES:
            raise ValueError(f"pooling must be one of {MaskedPooling.MODES}, not {self.pooling!r}")
        if self.layers < 1 or self.units < 1:
            raise ValueError("layers and units must be positive")


def clip(config: ClassifierConfig, sequence: Sequence[T]) -> list[T]:
    """Truncate one input (ids, or anything aligned with them) as ``config`` says."""
    budget = config.max_length
    if len(sequence) <= budget:
        return list(sequence)
    if config.truncation == "head":
        return list(sequence[:budget])
    head = budget // 4
    return list(sequence[:head]) + list(sequence[len(sequence) - (budget - head):])


def build_classifier(config: ClassifierConfig, name: str = "classifier") -> keras.Model:
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    mask = NotEqual(0, name="mask")(ids)
    x = keras.layers.Embedding(config.vocab_size, config.embedding_dim, name="embedding")(ids)
    x = keras.layers.SpatialDropout1D(config.dropout, name="embedding_dropout")(x)
    if config.encoder == "conv_lstm":
        # Zero the padding so the convolution sees the same thing at a sequence's end
        # whether or not the batch is padded further.
        x = x * keras.ops.expand_dims(keras.ops.cast(mask, x.dtype), -1)
        x = keras.layers.Conv1D(
            config.conv_filters, config.conv_kernel, padding="same", activation="relu", name="conv"
        )(x)
        x = keras.layers.MaxPooling1D(config.conv_pool, padding="same", name="conv_pool")(x)
        # A pooled step is valid if any step it covers was.
        mask = keras.layers.MaxPooling1D(config.conv_pool, padding="same", name="mask_pool")(
            keras.ops.expand_dims(keras.ops.cast(mask, "float32"), -1)
        )
        mask = NotEqual(0, name="pooled_mask")(keras.ops.squeeze(mask, -1))
    for i in range(config.layers):
        lstm = lstm_layer(config.units, return_sequences=True, name=f"lstm_{i}")
        if config.encoder != "lstm":
            lstm = keras.layers.Bidirectional(lstm, name=f"bilstm_{i}")
        x = lstm(x, mask=mask)
        if i < config.layers - 1:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    x = MaskedPooling(config.pooling, name="pooling")(x, mask)
    x = keras.layers.Dropout(config.dropout, name="output_dropout")(x)
    if config.dense_units:
        x = keras.layers.Dense(config.dense_units, activation="relu", name="hidden")(x)
    probs = keras.layers.Dense(config.num_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(ids, probs, name=name)


def build_encoder_lm(config: ClassifierConfig, output_vocab: int, name: str = "encoder_lm") -> keras.Model:
    """The classifier's embedding and BiLSTM trained as two language models (as ELMo does).

    Output ``next_piece`` [B, T, output_vocab]: logits of piece t+1 from the
    forward direction at step t; ``previous_piece``: logits of piece t-1 from
    the backward direction. Directions stay separate, so neither sees the piece
    it predicts. Layer names match :func:`build_classifier`'s, so
    :func:`copy_encoder` carries the trained weights into a classifier.
    """
    if config.encoder != "bilstm" or config.layers != 1:
        raise ValueError("language-model pretraining needs the one-layer 'bilstm' encoder")
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    mask = NotEqual(0, name="mask")(ids)
    x = keras.layers.Embedding(config.vocab_size, config.embedding_dim, name="embedding")(ids)
    x = keras.layers.SpatialDropout1D(config.dropout, name="embedding_dropout")(x)
    lstm = lstm_layer(config.units, return_sequences=True, name="lstm_0")
    forward, backward = keras.layers.Bidirectional(lstm, merge_mode=None, name="bilstm_0")(x, mask=mask)
    outputs = {}
    for key, states in (("next_piece", forward), ("previous_piece", backward)):
        states = keras.layers.Dropout(config.dropout, name=f"{key}_dropout")(states)
        outputs[key] = keras.layers.Dense(output_vocab, dtype="float32", name=key)(states)
    return keras.Model(ids, outputs, name=name)


ENCODER_LAYERS = ("embedding", "bilstm_0")


def copy_encoder(source: keras.Model, target: keras.Model) -> None:
    """Copy the embedding and BiLSTM weights between an encoder LM and a classifier."""
    for layer in ENCODER_LAYERS:
        target.get_layer(layer).set_weights(source.get_layer(layer).get_weights())
