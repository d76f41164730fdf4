"""Encoder–decoder translation model: BiLSTM encoder, LSTM decoder with attention.

Training model (teacher forcing), built by :func:`build_seq2seq`::

    source    [B, S] int32 piece ids, right-padded with PAD_ID = 0
    target_in [B, T] int32: BOS + target pieces (right-padded)
    → logits  [B, T, V_tgt] float32 for target pieces + EOS

Architecture (names are the Keras layer names, which the NumPy twin in
:mod:`nlpcore.inference` reads):

* ``source_embedding`` → ``encoder_{i}``: ``encoder_layers`` bidirectional
  LSTMs (``encoder_units`` per direction), padding masked, dropout between
  layers (never recurrent dropout, so cuDNN stays usable on GPUs);
* ``bridge_h_{l}`` / ``bridge_c_{l}``: the top encoder layer's final forward
  and backward states become each decoder layer's initial state;
* ``target_embedding`` → ``decoder``: an :class:`AttentionDecoder` with
  ``decoder_layers`` LSTMs, Luong or Bahdanau attention over the encoder
  outputs (source padding masked) and Luong's attentional vector
  ``tanh(W_c [context; h])``; with ``input_feeding`` that vector is also fed to
  the next step's input;
* ``logits``: a softmax layer, or with ``tie_embeddings`` a projection to the
  embedding size followed by the transposed target embedding.

For decoding, :func:`build_encoder` and :func:`build_decoder_step` rebuild two
Keras models from the trained layers (run the encoder once, the decoder once
per step); the NumPy twin copies the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import ops

from .attention import ATTENTION_TYPES, make_attention
from .layers import NotEqual, TiedEmbedding, lstm_layer

ACTIVATIONS = ("tanh", "relu", "linear")


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Architecture of a translation model (saved in its package).

    src_vocab_size / tgt_vocab_size: SentencePiece vocabulary sizes (filled in
        from the tokenizers by the trainer).
    embedding_dim: width of the source and target piece embeddings.
    encoder_units: LSTM units per direction (the encoder's outputs are twice as
        wide); encoder_layers: 1 or 2 stacked bidirectional layers.
    decoder_units, decoder_layers: the decoder LSTM stack (1 or 2 layers).
    attention: ``"luong"`` (general, scaled) or ``"bahdanau"`` (additive,
        normalised); attention_units: the additive score's hidden size.
    input_feeding: feed the previous attentional vector into the decoder's input
        (Luong et al. 2015 §3.3); slower to train, the step loop cannot be fused.
    attention_activation: of the attentional vector ``act(W_c [context; h])``:
        ``"tanh"`` (Luong), ``"relu"`` or ``"linear"``. Small models learn much
        faster without tanh's bound on the vector the softmax reads.
    dropout: on embeddings, between recurrent layers and on the attentional vector.
    tie_embeddings: share the target embedding matrix with the output softmax.
    max_source_length / max_target_length: pieces kept in training and decoding.
    """

    src_vocab_size: int = 8000
    tgt_vocab_size: int = 8000
    embedding_dim: int = 256
    encoder_units: int = 256
    encoder_layers: int = 2
    decoder_units: int = 512
    decoder_layers: int = 2
    attention: str = "luong"
    attention_units: int = 256
    input_feeding: bool = False
    attention_activation: str = "tanh"
    dropout: float = 0.3
    tie_embeddings: bool = False
    max_source_length: int = 100
    max_target_length: int = 100

    def __post_init__(self):
        if self.attention not in ATTENTION_TYPES:
            raise ValueError(f"attention must be one of {ATTENTION_TYPES}, not {self.attention!r}")
        if not 1 <= self.encoder_layers <= 4 or not 1 <= self.decoder_layers <= 4:
            raise ValueError("encoder_layers and decoder_layers must be between 1 and 4")
        if min(self.embedding_dim, self.encoder_units, self.decoder_units, self.attention_units) < 1:
            raise ValueError("layer sizes must be positive")
        if self.attention_activation not in ACTIVATIONS:
            raise ValueError(f"attention_activation must be one of {ACTIVATIONS}, not {self.attention_activation!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    @property
    def memory_dim(self) -> int:
        """Width of the encoder outputs the decoder attends over."""
        return 2 * self.encoder_units

    def state_size(self) -> int:
        """Number of decoder state tensors: (h, c) per layer, + the fed vector."""
        return 2 * self.decoder_layers + (1 if self.input_feeding else 0)


# ====================================================================== layers
@keras.saving.register_keras_serializable(package="nlpcore")
class AttentionDecoder(keras.layers.Layer):
    """An LSTM stack with attention over a memory; one call runs T steps.

    call(inputs [B, T, E], memory [B, S, D_m], memory_mask [B, S] bool,
    initial_state: list of [B, U] tensors ``[h_0, c_0, h_1, c_1, …]`` (+ the
    previous attentional vector with ``input_feeding``; zeros when left out))
    → (outputs [B, T, U] attentional vectors, attention [B, T, S], final state
    list in the same layout as ``initial_state``). With T = 1 a call is one
    decoding step.

    Without input feeding every layer runs over the whole sequence (Keras'
    fused LSTM) and attention is one batched product; with it, one
    ``keras.ops.scan`` steps through time, and dropout masks are drawn before
    the scan so every backend handles them alike.
    """

    def __init__(self, units: int, num_layers: int = 1, attention: str = "luong", attention_units: int = 256,
                 input_feeding: bool = False, dropout: float = 0.0, seed: int | None = None,
                 activation: str = "tanh", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.attention_type = attention
        self.attention_units = attention_units
        self.input_feeding = input_feeding
        self.rate = dropout
        self.seed = seed
        self.activation = activation
        if input_feeding:
            self.rnn_layers = [keras.layers.LSTMCell(units, name=f"lstm_cell_{i}") for i in range(num_layers)]
        else:
            self.rnn_layers = [
                lstm_layer(units, return_sequences=True, return_state=True, name=f"lstm_{i}")
                for i in range(num_layers)
            ]
        self.attention = make_attention(attention, attention_units, name="attention")
        self.combine = keras.layers.Dense(units, activation=activation, use_bias=False, name="combine")
        self.dropout = keras.layers.Dropout(dropout, seed=seed, name="dropout")
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, inputs_shape, memory_shape=None, memory_mask_shape=None, initial_state_shape=None):
        embed = int(inputs_shape[-1])
        memory_dim = int(memory_shape[-1])
        for i, layer in enumerate(self.rnn_layers):
            width = (embed + (self.units if self.input_feeding else 0)) if i == 0 else self.units
            layer.build((None, width) if self.input_feeding else (None, None, width))
        self.attention.build((None, None, self.units), (None, None, memory_dim))
        self.combine.build((None, None, memory_dim + self.units))
        self.dropout.build((None, None, self.units))

    def _split_state(self, initial_state, inputs):
        initial_state = list(initial_state or [])
        batch = ops.shape(inputs)[0]
        zeros = ops.zeros((batch, self.units), dtype=inputs.dtype)
        layers = []
        for i in range(self.num_layers):
            if len(initial_state) >= 2 * i + 2:
                layers.append([initial_state[2 * i], initial_state[2 * i + 1]])
            else:
                layers.append([zeros, zeros])
        feed = initial_state[2 * self.num_layers] if len(initial_state) > 2 * self.num_layers else zeros
        return layers, feed

    def call(self, inputs, memory, memory_mask=None, initial_state=None, training=False):
        layer_states, feed = self._split_state(initial_state, inputs)
        keys = self.attention.keys(memory)
        if not self.input_feeding:
            x = inputs
            final = []
            for i, layer in enumerate(self.rnn_layers):
                if i > 0:
                    x = self.dropout(x, training=training)
                x, h, c = layer(x, initial_state=layer_states[i], training=training)
                final += [h, c]
            context, weights = self.attention.attend(x, keys, memory, memory_mask)
            outputs = self.combine(ops.concatenate([context, x], axis=-1))
            outputs = self.dropout(outputs, training=training)
            return outputs, weights, final
        return self._call_input_feeding(inputs, memory, memory_mask, keys, layer_states, feed, training)

    def _masks(self, steps, batch, count, training):
        """Inverted-dropout masks [T, B, U] per dropped connection (ones when not training)."""
        shape = (steps, batch, self.units)
        if not training or self.rate == 0.0:
            return [ops.ones(shape) for _ in range(count)]
        keep = 1.0 - self.rate
        return [
            ops.cast(keras.random.uniform(shape, seed=self.seed_generator) < keep, "float32") / keep
            for _ in range(count)
        ]

    def _call_input_feeding(self, inputs, memory, memory_mask, keys, layer_states, feed, training):
        steps, batch = ops.shape(inputs)[1], ops.shape(inputs)[0]
        masks = self._masks(steps, batch, self.num_layers, training)  # between layers + on the output
        embed = inputs.shape[-1]
        # One scanned tensor (Keras' TensorFlow scan cannot check several with an unknown length):
        # [T, B, E + layers·U] = the step's input next to its dropout masks.
        xs = ops.concatenate([ops.transpose(inputs, (1, 0, 2)), *[ops.cast(m, inputs.dtype) for m in masks]], -1)

        def step(carry, x):
            states, fed, _ = carry
            token = x[:, :embed]
            drops = [x[:, embed + i * self.units : embed + (i + 1) * self.units] for i in range(len(masks))]
            h = ops.concatenate([token, fed], axis=-1)
            new_states = []
            for i, cell in enumerate(self.rnn_layers):
                if i > 0:
                    h = h * drops[i - 1]
                h, (h_new, c_new) = cell(h, states[i], training=training)
                new_states.append([h_new, c_new])
            context, weights = self.attention.attend(ops.expand_dims(h, 1), keys, memory, memory_mask)
            out = self.combine(ops.concatenate([context[:, 0], h], axis=-1)) * drops[-1]
            carry = (new_states, out, weights[:, 0])
            return carry, carry  # Keras' TensorFlow scan needs outputs shaped like the carry

        no_weights = ops.zeros((batch, ops.shape(memory)[1]), dtype="float32")
        (final_states, final_feed, _), (_, outputs, weights) = ops.scan(step, (layer_states, feed, no_weights), xs)
        outputs = ops.transpose(outputs, (1, 0, 2))
        weights = ops.transpose(weights, (1, 0, 2))
        final = [t for pair in final_states for t in pair] + [final_feed]
        return outputs, weights, final

    def compute_output_spec(self, inputs, memory, memory_mask=None, initial_state=None, training=False):
        batch, steps = inputs.shape[0], inputs.shape[1]
        states = [keras.KerasTensor((batch, self.units), dtype=self.compute_dtype)
                  for _ in range(2 * self.num_layers + (1 if self.input_feeding else 0))]
        return (
            keras.KerasTensor((batch, steps, self.units), dtype=self.compute_dtype),
            keras.KerasTensor((batch, steps, memory.shape[1]), dtype="float32"),
            states,
        )

    def get_config(self):
        return {**super().get_config(), "units": self.units, "num_layers": self.num_layers,
                "attention": self.attention_type, "attention_units": self.attention_units,
                "input_feeding": self.input_feeding, "dropout": self.rate, "seed": self.seed,
                "activation": self.activation}


# ====================================================================== models
class Seq2SeqLayers:
    """The named layers of a translation model, made fresh or taken from a built model."""

    def __init__(self, config: Seq2SeqConfig, model: keras.Model | None = None):
        self.config = config
        get = model.get_layer if model is not None else None
        c = config

        def layer(name, make):
            return get(name) if get is not None else make()

        self.mask = layer("source_mask", lambda: NotEqual(0, name="source_mask"))
        self.source_embedding = layer(
            "source_embedding", lambda: TiedEmbedding(c.src_vocab_size, c.embedding_dim, name="source_embedding"))
        self.target_embedding = layer(
            "target_embedding",
            lambda: TiedEmbedding(c.tgt_vocab_size, c.embedding_dim, reverse_bias=c.tie_embeddings,
                                  name="target_embedding"))
        self.source_dropout = layer("source_dropout", lambda: keras.layers.Dropout(c.dropout, name="source_dropout"))
        self.target_dropout = layer("target_dropout", lambda: keras.layers.Dropout(c.dropout, name="target_dropout"))
        self.encoder = [
            layer(f"encoder_{i}", lambda: keras.layers.Bidirectional(
                lstm_layer(c.encoder_units, return_sequences=True, return_state=True), name=f"encoder_{i}"))
            for i in range(c.encoder_layers)
        ]
        self.encoder_dropout = [
            layer(f"encoder_dropout_{i}", lambda: keras.layers.Dropout(c.dropout, name=f"encoder_dropout_{i}"))
            for i in range(1, c.encoder_layers)
        ]
        self.final_h = layer("encoder_final_h", lambda: keras.layers.Concatenate(name="encoder_final_h"))
        self.final_c = layer("encoder_final_c", lambda: keras.layers.Concatenate(name="encoder_final_c"))
        self.bridge_h = [
            layer(f"bridge_h_{l}", lambda: keras.layers.Dense(c.decoder_units, activation="tanh", name=f"bridge_h_{l}"))
            for l in range(c.decoder_layers)
        ]
        self.bridge_c = [
            layer(f"bridge_c_{l}", lambda: keras.layers.Dense(c.decoder_units, name=f"bridge_c_{l}"))
            for l in range(c.decoder_layers)
        ]
        self.decoder = layer("decoder", lambda: AttentionDecoder(
            c.decoder_units, c.decoder_layers, c.attention, c.attention_units, c.input_feeding, c.dropout,
            activation=c.attention_activation, name="decoder"))
        if c.tie_embeddings:
            self.projection = layer("output_projection", lambda: keras.layers.Dense(
                c.embedding_dim, use_bias=False, name="output_projection"))
            self.logits = None
        else:
            self.projection = None
            self.logits = layer("logits", lambda: keras.layers.Dense(c.tgt_vocab_size, dtype="float32", name="logits"))

    def encode(self, source):
        """source ids [B, S] → (memory [B, S, 2·units], mask [B, S], decoder initial state list)."""
        mask = self.mask(source)
        x = self.source_dropout(self.source_embedding(source))
        for i, lstm in enumerate(self.encoder):
            if i > 0:
                x = self.encoder_dropout[i - 1](x)
            x, h_fw, c_fw, h_bw, c_bw = lstm(x, mask=mask)
        final_h = self.final_h([h_fw, h_bw])
        final_c = self.final_c([c_fw, c_bw])
        states = []
        for bridge_h, bridge_c in zip(self.bridge_h, self.bridge_c):
            states += [bridge_h(final_h), bridge_c(final_c)]
        return x, mask, states

    def decode(self, target_in, memory, mask, states):
        """target ids [B, T] → (logits [B, T, V], attention [B, T, S], final state list)."""
        y = self.target_dropout(self.target_embedding(target_in))
        outputs, weights, final = self.decoder(y, memory, mask, states)
        if self.logits is not None:
            logits = self.logits(outputs)
        else:
            logits = self.target_embedding(self.projection(outputs), reverse=True)
        return logits, weights, final


def fresh_layers(config: Seq2SeqConfig, source: bool, target: bool) -> tuple[str, ...]:
    """The layers tied to a language's vocabulary: a side that changes language
    (``True``) needs them anew, the rest of the model carries over."""
    names = ("source_embedding",) if source else ()
    if target:
        names += ("target_embedding",) + (() if config.tie_embeddings else ("logits",))
    return names


def transfer_weights(origin: keras.Model, model: keras.Model, fresh: tuple[str, ...] = ()) -> list[str]:
    """Copy ``origin``'s weights into ``model`` (built from the same architecture,
    vocabulary sizes aside) layer by layer, except the layers named in ``fresh``,
    which keep their initialisation. Returns the names of the copied layers."""
    copied = []
    for layer in model.layers:
        if layer.weights and layer.name not in fresh:
            layer.set_weights(origin.get_layer(layer.name).get_weights())
            copied.append(layer.name)
    return copied


def build_seq2seq(config: Seq2SeqConfig, name: str = "seq2seq") -> keras.Model:
    """The teacher-forced training model ({source, target_in} → logits [B, T, V])."""
    layers = Seq2SeqLayers(config)
    source = keras.Input(shape=(None,), dtype="int32", name="source")
    target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")
    memory, mask, states = layers.encode(source)
    logits, _, _ = layers.decode(target_in, memory, mask, states)
    return keras.Model({"source": source, "target_in": target_in}, logits, name=name)


def build_encoder(model: keras.Model, config: Seq2SeqConfig) -> keras.Model:
    """source [B, S] → [memory [B, S, D_m], h_0, c_0, …] with the trained model's layers."""
    layers = Seq2SeqLayers(config, model)
    source = keras.Input(shape=(None,), dtype="int32", name="source")
    memory, _, states = layers.encode(source)
    return keras.Model(source, [memory, *states], name="encoder")


def build_decoder_step(model: keras.Model, config: Seq2SeqConfig) -> keras.Model:
    """One decoding step with the trained model's layers.

    Inputs: ``ids`` [B, 1], ``source`` [B, S] (for the padding mask), ``memory``
    [B, S, D_m] and ``state_{k}`` [B, U] for k < ``config.state_size()``.
    Outputs: [logits [B, V], attention [B, S], new state_0, …].
    """
    layers = Seq2SeqLayers(config, model)
    ids = keras.Input(shape=(1,), dtype="int32", name="ids")
    source = keras.Input(shape=(None,), dtype="int32", name="source")
    memory = keras.Input(shape=(None, config.memory_dim), name="memory")
    states = [keras.Input(shape=(config.decoder_units,), name=f"state_{k}") for k in range(config.state_size())]
    logits, weights, final = layers.decode(ids, memory, layers.mask(source), states)
    logits = keras.layers.Reshape((config.tgt_vocab_size,), name="step_logits")(logits)
    weights = keras.layers.Flatten(name="step_attention")(weights)
    return keras.Model({"ids": ids, "source": source, "memory": memory,
                        **{f"state_{k}": s for k, s in enumerate(states)}},
                       [logits, weights, *final], name="decoder_step")


# ====================================================================== training
@keras.saving.register_keras_serializable(package="nlpcore")
class SmoothedCrossEntropy(keras.losses.Loss):
    """Cross-entropy from logits with label smoothing, averaged over real tokens.

    y_true: [B, T] target ids; y_pred: [B, T, V] logits; the sample weight
    [B, T] (1 for tokens, 0 for padding) both masks and normalises, so the
    loss is a mean per target token. With smoothing ε the target distribution
    is (1 − ε) on the right piece plus ε spread evenly over the vocabulary.
    """

    def __init__(self, label_smoothing: float = 0.1, name: str = "smoothed_cross_entropy", **kwargs):
        kwargs.setdefault("reduction", "mean_with_sample_weight")
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        ids = ops.expand_dims(ops.cast(y_true, "int32"), -1)
        nll = -ops.squeeze(ops.take_along_axis(log_probs, ids, axis=-1), -1)
        if not self.label_smoothing:
            return nll
        uniform = -ops.mean(log_probs, axis=-1)
        return (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="nlpcore")
class TokenAccuracy(keras.metrics.Metric):
    """The share of real target tokens whose highest-scoring piece is the right one.

    Keras's weighted ``SparseCategoricalAccuracy`` first reduces each sequence
    to the mean of its weighted hits over the batch's width, so with [B, T]
    weights a batch counts in proportion to 1 / T: batches of short sentences
    (narrow, and easier) weigh more than their tokens, and the figure moves
    with how batches are padded. This metric sums hits and tokens instead.
    """

    def __init__(self, name: str = "accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
        self.tokens = self.add_variable(shape=(), initializer="zeros", name="tokens")

    def update_state(self, y_true, y_pred, sample_weight=None):
        best = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        right = ops.cast(ops.equal(best, ops.cast(y_true, "int32")), "float32")
        weight = ops.ones_like(right) if sample_weight is None else ops.cast(sample_weight, "float32")
        self.hits.assign_add(ops.sum(right * weight))
        self.tokens.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.hits, self.tokens)


def compile_seq2seq(model: keras.Model, learning_rate: float = 1e-3, clip_global_norm: float = 5.0,
                    label_smoothing: float = 0.1) -> keras.Model:
    """Adam with global-norm gradient clipping, smoothed cross-entropy, token accuracy."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=clip_global_norm or None),
        loss=SmoothedCrossEntropy(label_smoothing),
        weighted_metrics=[TokenAccuracy()],
    )
    return model
