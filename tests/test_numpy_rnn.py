"""The hand-computed RNN of the lessons, and the NumPy cells against Keras."""

import numpy as np
import pytest

from nlpcore.numpy_rnn import BiLSTMWeights, Matrix, bilstm, lstm, simple_rnn, softmax

VOCAB = ["h", "e", "l", "o", "<EOS>"]
W_XH = np.array([[-2.6, -1.6, -2.1], [1.2, 0.4, 0.3], [2.1, 1.9, -0.7], [-1.4, -1.5, 2.5], [-0.9, 0.4, -0.9]])
W_HH = np.array([[-0.5, -2.3, 2.9], [1.9, 1.5, 1.7], [-0.7, -1.2, 1.5]])
B_H = np.array([-0.5, -0.4, -1.0])
W_HY = np.array([[0.3, -2.6, 1.2, 2.6, -1.1], [-1.1, -2.4, 2.2, 1.6, -2.4], [-0.4, -3.1, -3.0, 3.6, 3.0]])
B_Y = np.array([-1.8, -0.5, 1.3, 0.1, 0.8])
HELLO = np.eye(5)[[VOCAB.index(c) for c in "hello"]]  # one-hot h, e, l, l, o


def test_hello_table():
    states = simple_rnn(HELLO, W_XH, W_HH, B_H)
    # h_1 = tanh([1,0,0,0,0] W_xh + 0 + b_h) = tanh([-3.1, -2.0, -3.1])
    np.testing.assert_allclose(states[0], [-0.99594936, -0.96402758, -0.99594936], atol=1e-8)
    probs = softmax(states @ W_HY + B_Y)
    assert [VOCAB[i] for i in probs.argmax(-1)] == ["e", "l", "l", "o", "<EOS>"]
    np.testing.assert_allclose(probs.sum(-1), 1.0)


def test_keras_simple_rnn_agrees():
    import keras

    inputs = keras.Input((5, 5))
    hidden = keras.layers.SimpleRNN(3, return_sequences=True)(inputs)
    outputs = keras.layers.Dense(5)(hidden)
    model = keras.Model(inputs, outputs)
    model.layers[1].set_weights([W_XH, W_HH, B_H])
    model.layers[2].set_weights([W_HY, B_Y])
    keras_states = keras.Model(inputs, hidden)(HELLO[None].astype("float32"))
    keras_logits = model(HELLO[None].astype("float32"))
    ours = simple_rnn(HELLO, W_XH, W_HH, B_H)
    np.testing.assert_allclose(np.asarray(keras_states)[0], ours, atol=1e-6)
    np.testing.assert_allclose(np.asarray(keras_logits)[0], ours @ W_HY + B_Y, atol=1e-5)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_lstm_matches_keras_with_mask(go_backwards):
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 4)).astype("float32")
    mask = np.array([[1] * 6, [1] * 4 + [0] * 2, [1] * 1 + [0] * 5], dtype=bool)  # right-padded
    layer = keras.layers.LSTM(5, return_sequences=True, return_state=True, go_backwards=go_backwards)
    seq, h, c = layer(x, mask=mask)
    kernel, recurrent, bias = layer.get_weights()
    bias = bias + rng.normal(size=bias.shape).astype("float32")
    layer.set_weights([kernel, recurrent, bias])
    seq, h, c = layer(x, mask=mask)
    out, h_np, c_np = lstm(x, kernel, recurrent, bias, mask=mask, reverse=go_backwards)
    np.testing.assert_allclose(np.asarray(h), h_np, atol=1e-5)
    np.testing.assert_allclose(np.asarray(c), c_np, atol=1e-5)
    if not go_backwards:  # Keras returns backward outputs in reversed time order
        valid = mask[..., None]
        np.testing.assert_allclose(np.asarray(seq) * valid, out * valid, atol=1e-5)


def test_bilstm_steps_both_directions_together_with_the_same_results():
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((3, 6, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], bool)
    forward, backward = ([rng.standard_normal(s).astype(np.float32) * 0.5 for s in ((4, 20), (5, 20), (20,))]
                         for _ in range(2))
    outputs, h, c = bilstm(xs, BiLSTMWeights.of(forward, backward), mask=mask)
    for d, (weights, reverse) in enumerate(((forward, False), (backward, True))):
        out_d, h_d, c_d = lstm(xs, *weights, mask=mask, reverse=reverse)
        np.testing.assert_allclose(outputs[d], out_d, atol=1e-6)
        np.testing.assert_allclose(h[d], h_d, atol=1e-6)
        np.testing.assert_allclose(c[d], c_d, atol=1e-6)


@pytest.mark.parametrize("rows", [1, 2, 5, 8, 9, 100])
def test_matrix_product_in_column_blocks_equals_the_whole_product(rows):
    rng = np.random.default_rng(rows)
    w = rng.standard_normal((1000, 330)).astype(np.float32)  # 64-column blocks, the last one narrower
    matrix = Matrix(w)
    assert [b.shape[1] for b in matrix.blocks] == [64] * 5 + [10]
    x = rng.standard_normal((rows, 1000)).astype(np.float32)
    product = matrix.product(x)
    assert product.shape == (rows, 330) and product.dtype == np.float32
    np.testing.assert_allclose(product, x.astype(np.float64) @ w.astype(np.float64), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(matrix.product(np.asfortranarray(x)), product, rtol=1e-5, atol=1e-5)


def test_matrix_keeps_a_narrow_matrix_whole_and_cuts_a_shallow_wide_one():
    w = np.ones((256, 64), np.float32)  # one block's width: nothing to cut
    assert Matrix(w).blocks == []
    np.testing.assert_allclose(Matrix(w).product(np.ones((5, 256), np.float32)), np.full((5, 64), 256.0))
    shallow = Matrix(np.ones((320, 8000), np.float32))  # an output matrix: cut like a deep one
    assert len(shallow.blocks) == 125
    np.testing.assert_allclose(shallow.product(np.ones((5, 320), np.float32)), np.full((5, 8000), 320.0))


@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 5), (2, 3, 4, 5)])
def test_dense_is_a_product_over_the_last_axis(shape):
    from nlpcore.numpy_rnn import dense

    rng = np.random.default_rng(0)
    x, w = rng.normal(size=shape).astype(np.float32), rng.normal(size=(5, 6)).astype(np.float32)
    np.testing.assert_allclose(dense(x, w), x @ w, rtol=1e-5, atol=1e-5)
    assert dense(x, w).shape == (*shape[:-1], 6)
