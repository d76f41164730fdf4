"""Recurrent cells in NumPy, with the same weight layout as Keras.

Used for fast single-sentence inference (one small matrix product per step
beats a framework call per step by an order of magnitude on CPU) and as the
reference the lessons compute by hand. Shapes use B = batch, D = input size,
H = hidden size, V = output size; inputs are row vectors, so a step is
``x @ W_xh + h @ W_hh + b``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``."""
    shifted = logits - np.max(logits, axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=axis, keepdims=True)


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = logits - np.max(logits, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def dense(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` over the last axis of x [..., K] with w [K, N], as one 2-D product.

    NumPy multiplies a 3-D ``x`` by a matrix one leading index at a time; a
    sentence of a few pieces then makes a thin product each, about three
    times slower in all than one product over every row (measured, 128 × 8
    rows by 256 × 1,024: 22 ms against 7.7 ms on one core).
    """
    if x.ndim == 2:
        return x @ w
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[-1])


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # overflow-free form


def simple_rnn_step(x: np.ndarray, h: np.ndarray, w_xh: np.ndarray, w_hh: np.ndarray, b_h: np.ndarray) -> np.ndarray:
    """One Elman step: ``h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)``.

    x: [B, D] or [D]; h: [B, H] or [H]; w_xh: [D, H]; w_hh: [H, H]; b_h: [H].
    Keras ``SimpleRNN`` stores exactly (kernel=W_xh, recurrent_kernel=W_hh, bias=b_h).
    """
    return np.tanh(x @ w_xh + h @ w_hh + b_h)


def simple_rnn(
    xs: np.ndarray, w_xh: np.ndarray, w_hh: np.ndarray, b_h: np.ndarray, h0: np.ndarray | None = None
) -> np.ndarray:
    """Run :func:`simple_rnn_step` over time. xs: [T, D] → hidden states [T, H]."""
    h = np.zeros(w_hh.shape[0], dtype=np.result_type(xs, w_xh)) if h0 is None else h0
    states = []
    for x in xs:
        h = simple_rnn_step(x, h, w_xh, w_hh, b_h)
        states.append(h)
    return np.stack(states)


def lstm_gates(z: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The LSTM cell after its matrix products: z [B, 4H] pre-activations
    (gates i, f, c, o in Keras' order), c [B, H] → new (h, c)."""
    i, f, g, o = np.split(z, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h = sigmoid(o) * np.tanh(c)
    return h, c


class Matrix:
    """A constant weight matrix w [K, N] for products ``x @ w`` with a few rows at a time.

    OpenBLAS multiplies a handful of rows (the beams of one sentence) by a
    matrix two to three times slower whole than cut into column blocks of 64
    columns: 5 rows by 768 × 2,048 take 0.53 ms whole and 0.22 ms in 32
    blocks (measured on the 2-core CI machine). Narrow blocks pay even for a
    shallow matrix in a decoder step, where the other weights evict it from
    the cache: translate-en-fr's step (960 × 2,560, 1,280 × 640, 640 × 320
    and 320 × 8,000) took 2.06 ms with its output matrix in blocks of 192
    columns and 1.49 ms in blocks of 64 (the same four products in a loop:
    32, 48, 96 or 128 columns were slower than 64). One row (a matrix-vector product) and more than 8 rows
    run as fast or faster on the whole matrix. :meth:`product` picks by the
    number of rows; the blocks are contiguous copies made once.
    """

    COLUMNS = 64
    BLOCKED_ROWS = range(2, 9)

    def __init__(self, w: np.ndarray):
        self.whole = np.ascontiguousarray(w, dtype=np.float32)
        width, columns = self.whole.shape[1], self.COLUMNS
        self.blocks = (
            [np.ascontiguousarray(self.whole[:, start : start + columns]) for start in range(0, width, columns)]
            if width > columns else []
        )

    def product(self, x: np.ndarray) -> np.ndarray:
        """x [R, K] → x @ w [R, N] (float32)."""
        rows = x.shape[0]
        if not self.blocks or x.ndim != 2 or rows not in self.BLOCKED_ROWS:
            return x @ self.whole
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty((rows, self.whole.shape[1]), dtype=np.float32)
        start = 0
        for block in self.blocks:
            end = start + block.shape[1]
            np.matmul(x, block, out=out[:, start:end])
            start = end
        return out


def lstm(
    xs: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray,
    mask: np.ndarray | None = None,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run an LSTM over a right-padded batch.

    xs: [B, T, D]; mask: [B, T] booleans (False at padding, which keeps the
    previous state, as Keras does). The input projection for all steps is one
    matrix product. Returns (outputs [B, T, H], last h [B, H], last c [B, H]);
    with ``reverse`` the sequence is read backwards and outputs are returned in
    the original order.
    """
    batch, steps, _ = xs.shape
    units = recurrent_kernel.shape[0]
    projected = dense(xs, kernel) + bias  # [B, T, 4H]
    h = np.zeros((batch, units), dtype=projected.dtype)
    c = np.zeros_like(h)
    outputs = np.zeros((batch, steps, units), dtype=projected.dtype)
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        h_new, c_new = lstm_gates(projected[:, t] + h @ recurrent_kernel, c)
        if mask is not None:
            keep = mask[:, t, None]
            c_new = np.where(keep, c_new, c)
            h_new = np.where(keep, h_new, h)
        h, c = h_new, c_new
        outputs[:, t] = h
    return outputs, h, c


class BiLSTMWeights(NamedTuple):
    """A bidirectional LSTM's weights for :func:`bilstm`: each direction's
    (kernel, recurrent_kernel, bias) and both recurrent kernels stacked
    [2, H, 4H], made once with :meth:`of` rather than on every call."""

    forward: tuple[np.ndarray, np.ndarray, np.ndarray]
    backward: tuple[np.ndarray, np.ndarray, np.ndarray]
    recurrent: np.ndarray

    @classmethod
    def of(cls, forward, backward) -> "BiLSTMWeights":
        return cls(tuple(forward), tuple(backward), np.stack([forward[1], backward[1]]))


def bilstm(
    xs: np.ndarray, weights: BiLSTMWeights, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both directions of a bidirectional LSTM in one pass over time.

    Same results as :func:`lstm` forward and ``reverse=True``, but the two
    directions step together (their time steps stacked into one batched
    product), which halves the per-step overhead of short inputs. Returns
    (outputs [2, B, T, H] in the original time order, last h [2, B, H], last
    c [2, B, H]); index 0 is the forward direction.
    """
    forward, backward, recurrent = weights
    batch, steps, _ = xs.shape
    units = forward[1].shape[0]
    projected = np.stack([dense(xs, forward[0]) + forward[2],
                          (dense(xs, backward[0]) + backward[2])[:, ::-1]])  # [2, B, T, 4H]
    keep = None if mask is None else np.stack([mask, mask[:, ::-1]])[..., None]  # [2, B, T, 1]
    h = np.zeros((2, batch, units), dtype=projected.dtype)
    c = np.zeros_like(h)
    outputs = np.zeros((2, batch, steps, units), dtype=projected.dtype)
    for t in range(steps):
        h_new, c_new = lstm_gates(projected[:, :, t] + h @ recurrent, c)
        if keep is not None:
            c_new = np.where(keep[:, :, t], c_new, c)
            h_new = np.where(keep[:, :, t], h_new, h)
        h, c = h_new, c_new
        outputs[:, :, t] = h
    outputs[1] = outputs[1][:, ::-1].copy()
    return outputs, h, c
