"""Fast NumPy forward passes of the project's Keras models.

The Keras model stays the source of truth: these classes copy its weights
once and then run without any framework call, which on a CPU is an order of
magnitude faster than ``model.predict`` for one sentence (no graph dispatch,
no tensor conversion). Tests check they match the Keras outputs to 1e-5.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .decoding.ops import scores_and_log_normalizer
from .numpy_rnn import BiLSTMWeights, Matrix, bilstm, dense, lstm, lstm_gates, softmax
from .tokenizer import BOS_ID, EOS_ID, PAD_ID

if TYPE_CHECKING:
    import keras

    from .models.classifier import ClassifierConfig


def pad_batch(sequences: Sequence[Sequence[int]], max_length: int | None = None) -> np.ndarray:
    """Right-pad id lists with PAD_ID into an int32 array [B, T]; longer ones are truncated."""
    width = max((len(s) for s in sequences), default=0)
    if max_length:
        width = min(width, max_length)
    out = np.full((len(sequences), max(width, 1)), PAD_ID, dtype=np.int32)
    for row, seq in enumerate(sequences):
        seq = seq[:width]
        out[row, : len(seq)] = seq
    return out


_controller = None  # threadpoolctl's view of the loaded BLAS libraries, found once


def blas_threads(count: int | None = 1):
    """A context in which NumPy's BLAS runs on ``count`` threads (``None``: unchanged).

    The NumPy paths multiply small matrices (one sentence, a few beams, one
    generated token): a second BLAS thread only adds hand-off latency, and
    beside TensorFlow's thread pools or a training job it oversubscribes the
    cores (measured: p90 of a one-sentence sentiment call 40 ms → 650 ms; 2,000
    translations 16 s → 56 s). Entering costs a few microseconds. Decoding
    many sentences at once is the exception: batches of 64 sentences, 320 beam
    rows, are large enough for every core to pay when nothing else runs (see
    ``TranslationModel.bulk_threads``).
    """
    global _controller
    if count is None:
        return contextlib.nullcontext()
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=count, user_api="blas")


def masked_pool(values: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """NumPy twin of :class:`nlpcore.models.layers.MaskedPooling` ([B, T, D], [B, T] → [B, D'])."""
    valid = mask[..., None].astype(values.dtype)
    count = valid.sum(1)
    pooled = []
    if mode in ("max", "max_mean"):
        masked = np.where(valid > 0, values, -np.inf)
        top = masked.max(1)
        pooled.append(np.where(count > 0, top, 0.0).astype(values.dtype))
    if mode in ("mean", "max_mean"):
        pooled.append((values * valid).sum(1) / np.maximum(count, 1.0))
    if mode == "last":
        last = count[:, 0].astype(int) - 1
        rows = values[np.arange(len(values)), np.maximum(last, 0)]
        pooled.append(np.where(last[:, None] >= 0, rows, 0.0))
    return pooled[0] if len(pooled) == 1 else np.concatenate(pooled, -1)


class NumpyClassifier:
    """The classifier of :mod:`nlpcore.models.classifier` in NumPy (``lstm`` and ``bilstm`` encoders).

    Call with right-padded ids [B, T] (int) → probabilities [B, C] (float32).
    """

    SUPPORTED = ("lstm", "bilstm")

    def __init__(self, model: "keras.Model", config: "ClassifierConfig"):
        if config.encoder not in self.SUPPORTED:
            raise ValueError(f"no NumPy path for encoder {config.encoder!r}")
        self.config = config
        self.embedding = model.get_layer("embedding").get_weights()[0].astype(np.float32)
        self.layers: list[BiLSTMWeights | tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for i in range(config.layers):
            if config.encoder == "bilstm":
                w = [a.astype(np.float32) for a in model.get_layer(f"bilstm_{i}").get_weights()]
                self.layers.append(BiLSTMWeights.of(w[:3], w[3:]))
            else:
                w = [a.astype(np.float32) for a in model.get_layer(f"lstm_{i}").get_weights()]
                self.layers.append(tuple(w))
        self.hidden = (
            [a.astype(np.float32) for a in model.get_layer("hidden").get_weights()] if config.dense_units else None
        )
        self.output = [a.astype(np.float32) for a in model.get_layer("probs").get_weights()]

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)[:, : self.config.max_length]
        mask = ids != PAD_ID
        x = self.embedding[ids]
        for layer in self.layers:
            if isinstance(layer, BiLSTMWeights):
                outputs = bilstm(x, layer, mask=mask)[0]
                x = np.concatenate([outputs[0], outputs[1]], -1)
            else:
                x = lstm(x, *layer, mask=mask)[0]
        x = masked_pool(x, mask, self.config.pooling)
        if self.hidden is not None:
            x = np.maximum(x @ self.hidden[0] + self.hidden[1], 0.0)
        return softmax(x @ self.output[0] + self.output[1]).astype(np.float32)


# ====================================================================== translation
class EncodedSource:
    """What the decoder needs from one encoded batch of source sentences.

    memory: [B, S, D_m] encoder outputs; keys: [B, S, K] the attention's
    projection of them (computed once); mask: [B, S] bool, False at padding;
    lengths: [B] source lengths; state: the decoder's initial state for
    :meth:`NumpySeq2Seq.step` (``h``/``c``: one [B, U] array per layer, ``feed``:
    [B, U] with input feeding, ``item``: [B] int, the batch row each decoder
    row attends over).
    """

    def __init__(self, memory: np.ndarray, keys: np.ndarray, mask: np.ndarray, state: dict):
        self.memory = memory
        self.keys = keys
        self.mask = mask
        self.lengths = mask.sum(1)
        self.state = state


class NumpySeq2Seq:
    """The translation model of :mod:`nlpcore.models.seq2seq` in NumPy.

    ``encode(source ids [B, S]) -> EncodedSource`` runs once per batch;
    ``step_function(encoded)`` returns a step function with the contract of
    :mod:`nlpcore.decoding.step`: ``step(ids [N], state) -> (logits [N, V],
    state, attention [N, S])``. The state holds only the decoder's own
    recurrent arrays and ``item``, the source row each decoder row belongs to,
    so beams and finished sentences can be reordered or dropped without
    copying encoder outputs: the step groups rows by item and attends over
    each item's memory in place.
    """

    def __init__(self, model: "keras.Model", config):
        from .models.seq2seq import Seq2SeqLayers

        self.config = config
        layers = Seq2SeqLayers(config, model)

        def arr(value) -> np.ndarray:
            return np.asarray(keras_ops_to_numpy(value), dtype=np.float32)

        self.source_embedding = arr(layers.source_embedding.embeddings)
        self.target_embedding = arr(layers.target_embedding.embeddings)
        self.encoder = []
        for encoder_layer in layers.encoder:
            w = [a.astype(np.float32) for a in encoder_layer.get_weights()]
            self.encoder.append(BiLSTMWeights.of(w[:3], w[3:]))
        self.bridge_h = [[a.astype(np.float32) for a in d.get_weights()] for d in layers.bridge_h]
        self.bridge_c = [[a.astype(np.float32) for a in d.get_weights()] for d in layers.bridge_c]
        decoder = layers.decoder
        # Each decoder layer's input and recurrent kernels stacked: one product of [x, h] per step.
        self.decoder = []
        for rnn in decoder.rnn_layers:
            kernel, recurrent, bias = (a.astype(np.float32) for a in rnn.get_weights())
            self.decoder.append((Matrix(np.concatenate([kernel, recurrent])), bias))
        attention = decoder.attention
        if config.attention == "luong":
            self.attention_kernel = arr(attention.kernel)
            self.attention_scale = 1.0 / np.sqrt(attention.query_size) if attention.scale else 1.0
        else:
            self.memory_kernel = arr(attention.memory_kernel)
            self.query_kernel = arr(attention.query_kernel)
            self.attention_bias = arr(attention.bias)
            self.scoring_vector = arr(attention.scoring_vector())
        self.combine = Matrix(arr(decoder.combine.kernel))
        if config.tie_embeddings:
            self.projection = Matrix(arr(layers.projection.kernel))
            self.output_kernel = Matrix(self.target_embedding.T)
            self.target_embedding = self.output_kernel.whole.T  # a view: one copy of the shared matrix
            self.output_bias = arr(layers.target_embedding.bias)
        else:
            self.projection = None
            kernel, self.output_bias = (a.astype(np.float32) for a in layers.logits.get_weights())
            self.output_kernel = Matrix(kernel)

    # ---------------------------------------------------------------- encoder
    def encode(self, source: np.ndarray) -> EncodedSource:
        """source: int [B, S] right-padded ids → :class:`EncodedSource`."""
        source = np.asarray(source)
        mask = source != PAD_ID
        x = self.source_embedding[source]
        for layer in self.encoder:
            outputs, h, c = bilstm(x, layer, mask=mask)
            x = np.concatenate([outputs[0], outputs[1]], -1)
        final_h = np.concatenate([h[0], h[1]], -1)
        final_c = np.concatenate([c[0], c[1]], -1)
        state: dict = {
            "h": tuple(np.tanh(final_h @ k + b) for k, b in self.bridge_h),
            "c": tuple(final_c @ k + b for k, b in self.bridge_c),
        }
        if self.config.input_feeding:
            state["feed"] = np.zeros_like(state["h"][0])
        state["item"] = np.arange(len(source), dtype=np.int32)
        keys = dense(x, self.attention_kernel if self.config.attention == "luong" else self.memory_kernel)
        return EncodedSource(x, keys, mask, state)

    # ---------------------------------------------------------------- attention
    def attend(self, query: np.ndarray, encoded: EncodedSource, item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """query [N, U] of rows belonging to source rows ``item`` [N] → (context [N, D_m], weights [N, S])."""
        rows = len(item)
        groups = _groups(item)
        if groups is not None:  # rows come in equal runs per item: attend in place
            items, per = groups
            keys, memory, mask = encoded.keys[items], encoded.memory[items], encoded.mask[items]
            q = query.reshape(len(items), per, -1)
        else:
            keys, memory, mask = encoded.keys[item], encoded.memory[item], encoded.mask[item]
            q = query[:, None, :]
        if self.config.attention == "luong":
            scores = (q @ keys.transpose(0, 2, 1)) * self.attention_scale  # [G, P, S]
        else:
            processed = dense(q, self.query_kernel) + self.attention_bias  # [G, P, A]
            scores = np.tanh(processed[:, :, None, :] + keys[:, None, :, :]) @ self.scoring_vector
        scores = np.where(mask[:, None, :], scores, np.float32(-1e9))
        weights = softmax(scores, axis=-1).astype(np.float32)
        context = weights @ memory  # [G, P, D_m]
        return context.reshape(rows, -1), weights.reshape(rows, -1)

    # ---------------------------------------------------------------- decoder
    def step(self, ids: np.ndarray, state: dict, encoded: EncodedSource) -> tuple[np.ndarray, dict, np.ndarray]:
        """One decoding step: ids [N] → (logits [N, V], new state, attention [N, S])."""
        x = self.target_embedding[np.asarray(ids)]
        if self.config.input_feeding:
            x = np.concatenate([x, state["feed"]], -1)
        hs, cs = [], []
        for (kernel, bias), h, c in zip(self.decoder, state["h"], state["c"]):
            x, c = lstm_gates(kernel.product(np.concatenate([x, h], -1)) + bias, c)
            hs.append(x)
            cs.append(c)
        context, weights = self.attend(x, encoded, state["item"])
        logits, out = self.readout(context, x)
        new_state = {"h": tuple(hs), "c": tuple(cs)}
        if self.config.input_feeding:
            new_state["feed"] = out
        new_state["item"] = state["item"]
        return logits, new_state, weights

    def readout(self, context: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits [N, V], attentional output [N, U]) from the context [N, D_m]
        and the top decoder layer's output [N, U]."""
        out = self.combine.product(np.concatenate([context, query], -1))
        if self.config.attention_activation == "tanh":
            out = np.tanh(out)
        elif self.config.attention_activation == "relu":
            out = np.maximum(out, 0.0)
        hidden = self.projection.product(out) if self.projection is not None else out
        return self.output_kernel.product(hidden) + self.output_bias, out

    def log_prob(self, sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]],
                 batch_size: int = 128) -> np.ndarray:
        """Teacher-forced log-probability of each target given its source: [B] float64.

        sources: B id lists (at most ``max_source_length`` pieces, none empty);
        targets: B id lists without ``<s>`` and ``</s>``. Each score is
        ``log P(target, </s> | source)``, the sum the beam search ranks by
        (before any length penalty). Rows are batched by source length, so
        little time goes into padding.
        """
        if len(targets) != len(sources):
            raise ValueError(f"{len(targets)} targets for {len(sources)} sources")
        total = np.zeros(len(sources))
        order = np.argsort([len(s) for s in sources], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            encoded = self.encode(pad_batch([list(sources[i]) for i in rows]))
            steps = max(len(targets[i]) for i in rows) + 1
            gold = np.full((len(rows), steps), -1, np.int64)  # the piece each step must predict; -1 past </s>
            for k, i in enumerate(rows):
                gold[k, : len(targets[i])] = targets[i]
                gold[k, len(targets[i])] = EOS_ID
            total[rows] = (self._forced(gold, encoded) if not self.config.input_feeding
                           else self._forced_by_steps(gold, encoded))
        return total

    def _forced(self, gold: np.ndarray, encoded: EncodedSource) -> np.ndarray:
        """Teacher-forced log-probabilities of ``gold`` [B, T] (-1 past ``</s>``), the
        time steps batched: only each layer's recurrence goes step by step; the
        input projections, attention and output layer take all steps in one product."""
        rows, steps = gold.shape
        inputs = np.concatenate([np.full((rows, 1), BOS_ID), np.maximum(gold[:, :-1], 0)], 1)
        x = self.target_embedding[inputs]  # [B, T, E]
        for (kernel, bias), h, c in zip(self.decoder, encoded.state["h"], encoded.state["c"]):
            split = kernel.whole.shape[0] - h.shape[1]
            projected = dense(x, kernel.whole[:split]) + bias  # [B, T, 4U]
            recurrent = kernel.whole[split:]
            x = np.empty((rows, steps, h.shape[1]), np.float32)
            for t in range(steps):
                h, c = lstm_gates(projected[:, t] + h @ recurrent, c)
                x[:, t] = h
        query = x.reshape(rows * steps, -1)
        context, _ = self.attend(query, encoded, np.repeat(encoded.state["item"], steps))
        live = np.flatnonzero(gold.reshape(-1) >= 0)  # the output layer only where a piece is predicted
        logits, _ = self.readout(context[live], query[live])
        scores, normalizer = scores_and_log_normalizer(logits)
        picked = np.zeros(rows * steps)
        picked[live] = scores[np.arange(len(live)), gold.reshape(-1)[live]] - normalizer
        return picked.reshape(rows, steps).sum(1)

    def _forced_by_steps(self, gold: np.ndarray, encoded: EncodedSource) -> np.ndarray:
        """:meth:`_forced` one decoder step at a time (input feeding makes each step wait for the last)."""
        index = np.arange(len(gold))
        ids, state, sums = np.full(len(gold), BOS_ID, np.int32), encoded.state, np.zeros(len(gold))
        for t in range(gold.shape[1]):
            logits, state, _ = self.step(ids, state, encoded)
            scores, normalizer = scores_and_log_normalizer(logits)
            live = gold[:, t] >= 0
            sums[live] += scores[index[live], gold[live, t]] - normalizer[live]
            ids = np.where(live, gold[:, t], EOS_ID).astype(np.int32)
        return sums

    def step_function(self, encoded: EncodedSource):
        """A step function (``nlpcore.decoding`` contract) bound to one encoded batch."""

        def step(ids, state):
            return self.step(ids, state, encoded)

        return step


def _groups(item: np.ndarray) -> tuple[np.ndarray, int] | None:
    """(items, rows per item) when ``item`` is equal-length runs of distinct values, else None."""
    rows = len(item)
    if rows == 0:
        return None
    starts = np.flatnonzero(np.r_[True, item[1:] != item[:-1]])
    per = rows // len(starts)
    if per * len(starts) != rows or not np.array_equal(np.diff(np.r_[starts, rows]), np.full(len(starts), per)):
        return None
    return item[starts], per


def keras_ops_to_numpy(value) -> np.ndarray:
    """A Keras variable or backend tensor as a NumPy array."""
    from keras import ops

    return np.asarray(ops.convert_to_numpy(value))


# ====================================================================== language model
class NumpyLanguageModel:
    """The language model of :mod:`nlpcore.models.language_model` in NumPy.

    State: ``{"h": (h_0, …), "c": (c_0, …)}``, one float32 [N, U] array per
    layer (:meth:`initial_state` gives zeros, the state before ``<s>``).

    * :meth:`step` is a step function with the contract of
      :mod:`nlpcore.decoding.step`: ``step(ids [N], state) -> (logits [N, V],
      state, None)``; one small matrix product per layer and one for the output.
    * :meth:`forward` runs a whole batch of sequences [N, T] from a state: every
      input projection in one matrix product per layer, then the recurrence
      (a prompt, or a text being scored).

    The first layer's input projection of every piece (``E W_x + b``) is a
    precomputed [V, 4U] table when it fits in 64 MB, so a step looks it up
    instead of multiplying; the tied output projection ``W_p E^T`` is folded
    into one [U, V] matrix.
    """

    TABLE_BYTES = 64 << 20

    def __init__(self, model: "keras.Model", config):
        self.config = config
        weights = {layer.name: [np.asarray(w, dtype=np.float32) for w in layer.get_weights()] for layer in model.layers}
        embedding = weights["embedding"][0]
        self.embedding = embedding
        self.layers: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for i in range(config.layers):
            kernel, recurrent, bias = weights[f"lstm_{i}"]
            self.layers.append((kernel, recurrent, bias))
        kernel0, _, bias0 = self.layers[0]
        self.input_table = (
            (embedding @ kernel0 + bias0).astype(np.float32)
            if embedding.shape[0] * kernel0.shape[1] * 4 <= self.TABLE_BYTES else None
        )
        if config.tie_embeddings:
            output = np.ascontiguousarray(embedding.T)
            if config.projects:
                output = weights["projection"][0] @ output
            self.output_kernel = np.ascontiguousarray(output, dtype=np.float32)
            self.output_bias = weights["embedding"][1]
        else:
            self.output_kernel, self.output_bias = weights["logits"]

    @property
    def vocab_size(self) -> int:
        return self.output_kernel.shape[1]

    def initial_state(self, rows: int = 1) -> dict:
        zeros = lambda: np.zeros((rows, self.config.units), dtype=np.float32)  # noqa: E731
        return {"h": tuple(zeros() for _ in self.layers), "c": tuple(zeros() for _ in self.layers)}

    def _inputs(self, ids: np.ndarray) -> np.ndarray:
        """First-layer input projections of ids (any shape) → [..., 4U]."""
        if self.input_table is not None:
            return self.input_table[ids]
        kernel, _, bias = self.layers[0]
        return dense(self.embedding[ids], kernel) + bias

    def step(self, ids: np.ndarray, state: dict) -> tuple[np.ndarray, dict, None]:
        """ids int [N] → (logits float32 [N, V], new state, None)."""
        z_in = self._inputs(np.asarray(ids))
        hs, cs = [], []
        x = None
        for i, (kernel, recurrent, bias) in enumerate(self.layers):
            z = (z_in if i == 0 else x @ kernel + bias) + state["h"][i] @ recurrent
            x, c = lstm_gates(z, state["c"][i])
            hs.append(x)
            cs.append(c)
        logits = x @ self.output_kernel + self.output_bias
        return logits, {"h": tuple(hs), "c": tuple(cs)}, None

    def forward(self, ids: np.ndarray, state: dict | None = None, last_only: bool = False) -> tuple[np.ndarray, dict]:
        """ids int [N, T] (T ≥ 1) from ``state`` (zeros if None) →
        (logits [N, T, V], or [N, V] for the last position with ``last_only``; state after the last id)."""
        ids = np.asarray(ids)
        rows, steps = ids.shape
        state = state or self.initial_state(rows)
        x = None
        hs, cs = [], []
        for i, (kernel, recurrent, bias) in enumerate(self.layers):
            projected = self._inputs(ids) if i == 0 else dense(x, kernel) + bias  # [N, T, 4U]
            h, c = state["h"][i], state["c"][i]
            outputs = np.empty((rows, steps, recurrent.shape[0]), dtype=np.float32)
            for t in range(steps):
                h, c = lstm_gates(projected[:, t] + h @ recurrent, c)
                outputs[:, t] = h
            hs.append(h)
            cs.append(c)
            x = outputs
        if last_only:
            x = x[:, -1]
        logits = dense(x, self.output_kernel) + self.output_bias
        return logits.astype(np.float32, copy=False), {"h": tuple(hs), "c": tuple(cs)}
