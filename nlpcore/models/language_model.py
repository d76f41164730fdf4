"""Recurrent language model: Embedding → 2–3 LSTM layers → (tied) softmax projection.

Training model (:func:`build_language_model`):
    ids [B, T] (int32) → logits [B, T, V] (float32), each position predicting
    the next piece; the LSTMs start from zero state.

Step model (:func:`build_step_model`): the same layers with explicit state, for
generation and scoring that carry state across calls:
    (ids [B, T], h_0, c_0, …, h_{L-1}, c_{L-1}) → (logits [B, T, V], h_0, c_0, …),
    every h_i, c_i [B, units].

Training reads the text in B parallel lanes, each batch continuing the
previous one (truncated back-propagation through time): build the training
model with ``carry_state_batch=B`` and its LSTMs are :class:`CarriedStateLSTM`
layers, whose final state starts the next batch (held in non-trainable
weights, so it works on every backend, JAX's stateless training included),
except in rows flagged to restart from zero state. A model trained only on
short windows from zero state learns nothing about long contexts, and its
state can drift far outside what it saw when it then reads a whole text or
writes hundreds of pieces; one that rarely starts from zero state can fail
to start up. :func:`copy_weights` moves the
trained weights into the plain (stateless) model that is shipped.

Regularisation is input and output dropout (on the embeddings, after every
LSTM layer), never recurrent dropout, so the LSTMs keep their fused kernels.
With ``tie_embeddings`` the output projection reuses the embedding matrix
(Press & Wolf 2017; Inan et al. 2017): logits = h W_p E^T + b, where W_p is a
bias-free projection from ``units`` to ``embedding_dim`` (absent when they are
equal). Tying halves the parameters of a subword model and usually lowers
validation perplexity on small corpora.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import ops

from .layers import TiedEmbedding as SharedTiedEmbedding
from .layers import lstm_layer


@dataclass(frozen=True)
class LanguageModelConfig:
    """Architecture of a language model (saved in its package inside ``config.yaml``).

    vocab_size: SentencePiece vocabulary size (set from the tokenizer at training).
    embedding_dim: width of the piece embeddings (and of the tied output matrix).
    units: LSTM units per layer; layers: stacked LSTM layers (1–4).
    embedding_dropout: dropout on the embeddings (input dropout).
    dropout: dropout on every LSTM layer's output (between layers and before the projection).
    tie_embeddings: share the embedding matrix with the output projection.
    """

    vocab_size: int = 2048
    embedding_dim: int = 512
    units: int = 512
    layers: int = 2
    embedding_dropout: float = 0.1
    dropout: float = 0.25
    tie_embeddings: bool = True

    def __post_init__(self):
        if not 1 <= self.layers <= 4:
            raise ValueError(f"layers must be between 1 and 4, not {self.layers}")
        if min(self.vocab_size, self.embedding_dim, self.units) < 1:
            raise ValueError("vocab_size, embedding_dim and units must be positive")
        for name in ("embedding_dropout", "dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), not {getattr(self, name)}")

    @property
    def projects(self) -> bool:
        """Whether a projection maps the LSTM output to ``embedding_dim`` before the tied softmax."""
        return self.tie_embeddings and self.units != self.embedding_dim


def _embedding_initializer(dim: int) -> keras.initializers.Initializer:
    """N(0, 1/dim): embeddings of about unit norm. Keras' default U(±0.05) leaves a
    small LSTM language model stuck at unigram statistics for hundreds of steps.
    (The tied embedding below uses the same distribution, given as a config.)"""
    return keras.initializers.RandomNormal(stddev=dim**-0.5)


@keras.saving.register_keras_serializable(package="nlpcore", name="LanguageModelTiedEmbedding")
class TiedEmbedding(SharedTiedEmbedding):
    """The shared tied embedding with an output bias and unit-scale initial rows,
    under the name the language-model packages were saved with."""

    def __init__(self, input_dim: int, output_dim: int, **kwargs):
        kwargs.pop("reverse_bias", None)
        kwargs.pop("embeddings_initializer", None)
        super().__init__(input_dim, output_dim, reverse_bias=True,
                         embeddings_initializer={"class_name": "RandomNormal",
                                                 "config": {"stddev": int(output_dim) ** -0.5}}, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["reverse_bias"], config["embeddings_initializer"]
        return config


@keras.saving.register_keras_serializable(package="nlpcore")
class CarriedStateLSTM(keras.layers.Layer):
    """An LSTM whose final state is the initial state of its next call (training only).

    ``layer(inputs [B, T, D], restart [B])`` → outputs [B, T, units]; B is
    fixed (``batch_size``). The state h, c [B, units] is kept in non-trainable
    weights and no gradient flows through it into earlier batches; rows whose
    ``restart`` is 1 start from zero state instead. :meth:`reset` zeroes it all.
    """

    def __init__(self, units: int, batch_size: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.batch_size = int(batch_size)
        self.lstm = lstm_layer(self.units, return_sequences=True, return_state=True, name="lstm")

    def build(self, inputs_shape, restart_shape=None):
        self.lstm.build(inputs_shape)
        self.h = self.add_weight(shape=(self.batch_size, self.units), initializer="zeros", trainable=False, name="h")
        self.c = self.add_weight(shape=(self.batch_size, self.units), initializer="zeros", trainable=False, name="c")
        self.built = True

    def call(self, inputs, restart, training=None):
        keep = 1.0 - ops.expand_dims(ops.cast(restart, self.compute_dtype), -1)  # [B, 1]
        initial = [ops.convert_to_tensor(self.h) * keep, ops.convert_to_tensor(self.c) * keep]
        outputs, h, c = self.lstm(inputs, initial_state=initial, training=training)
        self.h.assign(ops.stop_gradient(h))
        self.c.assign(ops.stop_gradient(c))
        return outputs

    def reset(self) -> None:
        self.h.assign(ops.zeros(self.h.shape, self.h.dtype))
        self.c.assign(ops.zeros(self.c.shape, self.c.dtype))

    def compute_output_shape(self, inputs_shape, restart_shape=None):
        return tuple(inputs_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "batch_size": self.batch_size}


def _layers(config: LanguageModelConfig, carry_state_batch: int = 0) -> dict[str, keras.layers.Layer]:
    layers: dict[str, keras.layers.Layer] = {}
    if config.tie_embeddings:
        layers["embedding"] = TiedEmbedding(config.vocab_size, config.embedding_dim, name="embedding")
    else:
        layers["embedding"] = keras.layers.Embedding(
            config.vocab_size, config.embedding_dim, embeddings_initializer=_embedding_initializer(config.embedding_dim),
            name="embedding")
    layers["embedding_dropout"] = keras.layers.Dropout(config.embedding_dropout, name="embedding_dropout")
    for i in range(config.layers):
        if carry_state_batch:
            layers[f"lstm_{i}"] = CarriedStateLSTM(config.units, carry_state_batch, name=f"lstm_{i}")
        else:
            layers[f"lstm_{i}"] = lstm_layer(
                config.units, return_sequences=True, return_state=True, name=f"lstm_{i}")
        layers[f"dropout_{i}"] = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")
    if config.projects:
        layers["projection"] = keras.layers.Dense(config.embedding_dim, use_bias=False, name="projection")
    if not config.tie_embeddings:
        layers["logits"] = keras.layers.Dense(config.vocab_size, name="logits")
    return layers


def _apply(config: LanguageModelConfig, layers, ids, states=None, restart=None):
    """Run the layers on ids [B, T]; states: None or [(h, c)] per layer; restart: [B] for
    carried-state layers. → (logits, [(h, c)])."""
    x = layers["embedding"](ids)
    x = layers["embedding_dropout"](x)
    new_states = []
    for i in range(config.layers):
        lstm = layers[f"lstm_{i}"]
        if isinstance(lstm, CarriedStateLSTM):
            x = lstm(x, restart)
        else:
            initial = None if states is None else list(states[i])
            x, h, c = lstm(x, initial_state=initial)
            new_states.append((h, c))
        x = layers[f"dropout_{i}"](x)
    if config.projects:
        x = layers["projection"](x)
    if config.tie_embeddings:
        logits = layers["embedding"](x, reverse=True)
    else:
        logits = layers["logits"](x)
    return logits, new_states


def build_language_model(config: LanguageModelConfig, name: str = "language_model",
                         carry_state_batch: int = 0) -> keras.Model:
    """ids [B, T] → next-piece logits [B, T, V], from zero state.

    carry_state_batch: for training, a fixed batch size B whose rows continue
    from one call to the next (see :class:`CarriedStateLSTM`); the model then
    takes ``{"ids": [B, T], "restart": [B]}``, restart 1 where a row starts
    afresh from zero state.
    """
    if not carry_state_batch:
        ids = keras.Input(shape=(None,), dtype="int32", name="ids")
        logits, _ = _apply(config, _layers(config), ids)
        return keras.Model(ids, logits, name=name)
    ids = keras.Input(batch_shape=(carry_state_batch, None), dtype="int32", name="ids")
    restart = keras.Input(batch_shape=(carry_state_batch,), dtype="float32", name="restart")
    logits, _ = _apply(config, _layers(config, carry_state_batch), ids, restart=restart)
    return keras.Model({"ids": ids, "restart": restart}, logits, name=name)


def reset_states(model: keras.Model) -> None:
    """Zero the carried state of every :class:`CarriedStateLSTM` of ``model``."""
    for layer in model.layers:
        if isinstance(layer, CarriedStateLSTM):
            layer.reset()


def copy_weights(source: keras.Model, target: keras.Model) -> keras.Model:
    """Copy the weights of a language model into another built from the same config,
    layer by layer, either way between a training model and a shipped one (a
    :class:`CarriedStateLSTM` gives and takes its LSTM's weights, not its carried
    state). Returns ``target``."""
    for layer in target.layers:
        if not layer.weights:
            continue
        origin = source.get_layer(layer.name)
        if isinstance(origin, CarriedStateLSTM):
            origin = origin.lstm
        (layer.lstm if isinstance(layer, CarriedStateLSTM) else layer).set_weights(origin.get_weights())
    return target


def build_step_model(model: keras.Model, config: LanguageModelConfig) -> keras.Model:
    """The layers of ``model`` (weights shared) with explicit state in and out.

    Inputs: ids [B, T], then h_i, c_i [B, units] for each layer i.
    Outputs: logits [B, T, V], then the new h_i, c_i.
    """
    layers = {layer.name: layer for layer in model.layers}
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    states, flat = [], []
    for i in range(config.layers):
        h = keras.Input(shape=(config.units,), name=f"h_{i}")
        c = keras.Input(shape=(config.units,), name=f"c_{i}")
        states.append((h, c))
        flat += [h, c]
    logits, new_states = _apply(config, layers, ids, states)
    outputs = [logits] + [s for pair in new_states for s in pair]
    return keras.Model([ids, *flat], outputs, name=f"{model.name}_step")


def count_parameters(model: keras.Model) -> int:
    return int(sum(int(ops.size(w)) for w in model.trainable_weights))
