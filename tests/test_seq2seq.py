"""The translation model: Keras build, attention, NumPy twin, packages, batching, both backends."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nlpcore.models.seq2seq import Seq2SeqConfig
from nlpcore.tokenizer import BOS_ID, EOS_ID, PAD_ID

TINY = dict(src_vocab_size=50, tgt_vocab_size=40, embedding_dim=8, encoder_units=6, decoder_units=10,
            attention_units=7, dropout=0.1)
CONFIGS = [
    Seq2SeqConfig(**TINY, attention="luong", encoder_layers=1, decoder_layers=1),
    Seq2SeqConfig(**TINY, attention="bahdanau", encoder_layers=2, decoder_layers=2),
    Seq2SeqConfig(**TINY, attention="luong", encoder_layers=2, decoder_layers=2, input_feeding=True, tie_embeddings=True),
    Seq2SeqConfig(**TINY, attention="bahdanau", encoder_layers=1, decoder_layers=2, input_feeding=True,
                  attention_activation="relu"),
    Seq2SeqConfig(**TINY, attention="luong", tie_embeddings=True, attention_activation="linear"),
]
IDS = [f"{c.attention}-e{c.encoder_layers}d{c.decoder_layers}{'-if' if c.input_feeding else ''}"
       f"{'-tied' if c.tie_embeddings else ''}-{c.attention_activation}" for c in CONFIGS]

SOURCE = np.array([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12], [13, 0, 0, 0, 0]], np.int32)
TARGET_IN = np.array([[BOS_ID, 5, 6, 7], [BOS_ID, 7, 0, 0], [BOS_ID, 9, 9, 9]], np.int32)


def randomized(config, seed=1):
    """A model with non-trivial random weights (every bias and gain exercised)."""
    import keras

    from nlpcore.models.seq2seq import build_seq2seq

    keras.utils.set_random_seed(seed)
    model = build_seq2seq(config)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.4, w.shape).astype("float32") for w in model.get_weights()])
    return model


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_model_builds_with_expected_shapes(config):
    model = randomized(config)
    logits = np.asarray(model({"source": SOURCE, "target_in": TARGET_IN}))
    assert logits.shape == (3, 4, config.tgt_vocab_size) and logits.dtype == np.float32
    assert np.isfinite(logits).all()
    names = {layer.name for layer in model.layers}
    assert {"source_embedding", "target_embedding", "decoder", "bridge_h_0"} <= names
    assert ("output_projection" in names) == config.tie_embeddings


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_numpy_twin_matches_keras(config):
    from nlpcore.inference import NumpySeq2Seq
    from nlpcore.models.seq2seq import build_decoder_step, build_encoder

    model = randomized(config)
    twin = NumpySeq2Seq(model, config)
    if config.tie_embeddings:  # the input embedding and the output kernel are one array
        assert np.shares_memory(twin.target_embedding, twin.output_kernel.whole)
    encoded = twin.encode(SOURCE)
    keras_encoded = [np.asarray(t) for t in build_encoder(model, config)(SOURCE)]
    valid = SOURCE != PAD_ID
    np.testing.assert_allclose(encoded.memory[valid], keras_encoded[0][valid], atol=1e-5)
    for ours, theirs in zip(encoded.state["h"] + encoded.state["c"],
                            keras_encoded[1::2] + keras_encoded[2::2]):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)

    # Teacher-forced logits of the training model, step by step.
    full = np.asarray(model({"source": SOURCE, "target_in": TARGET_IN}))
    step_model = build_decoder_step(model, config)
    state = encoded.state
    keras_state = keras_encoded[1:] + ([np.zeros_like(keras_encoded[1])] if config.input_feeding else [])
    for t in range(TARGET_IN.shape[1]):
        logits, state, attention = twin.step(TARGET_IN[:, t], state, encoded)
        np.testing.assert_allclose(logits, full[:, t], atol=1e-5)
        outputs = step_model({"ids": TARGET_IN[:, t : t + 1], "source": SOURCE, "memory": keras_encoded[0],
                              **{f"state_{k}": s for k, s in enumerate(keras_state)}})
        outputs = [np.asarray(o) for o in outputs]
        np.testing.assert_allclose(logits, outputs[0], atol=1e-5)
        np.testing.assert_allclose(attention, outputs[1], atol=1e-5)
        keras_state = outputs[2:]


@pytest.mark.parametrize("config", CONFIGS[:2], ids=IDS[:2])
def test_numpy_step_handles_reordered_and_dropped_rows(config):
    from nlpcore.decoding import gather_state, tile_state
    from nlpcore.inference import NumpySeq2Seq

    twin = NumpySeq2Seq(randomized(config), config)
    encoded = twin.encode(SOURCE)
    ids = np.array([5, 7, 9], np.int32)
    expected, _, expected_attention = twin.step(ids, encoded.state, encoded)
    beams = tile_state(encoded.state, 4)  # rows b*4+k, the beam layout
    logits, _, attention = twin.step(np.repeat(ids, 4), beams, encoded)
    np.testing.assert_allclose(logits, np.repeat(expected, 4, 0), atol=1e-6)
    rows = np.array([9, 0, 5, 4, 11])  # shuffled, uneven: the general path
    logits, _, attention = twin.step(np.repeat(ids, 4)[rows], gather_state(beams, rows), encoded)
    np.testing.assert_allclose(logits, np.repeat(expected, 4, 0)[rows], atol=1e-6)
    np.testing.assert_allclose(attention, np.repeat(expected_attention, 4, 0)[rows], atol=1e-6)


@pytest.mark.parametrize("kind", ["luong", "bahdanau"])
def test_attention_weights_sum_to_one_and_skip_padding(kind):
    from nlpcore.models.attention import make_attention

    rng = np.random.default_rng(0)
    layer = make_attention(kind, units=5)
    query = rng.normal(size=(3, 4, 6)).astype("float32")
    memory = rng.normal(size=(3, 5, 7)).astype("float32")
    mask = SOURCE != PAD_ID
    context, weights = (np.asarray(t) for t in layer(query, memory, mask))
    assert context.shape == (3, 4, 7) and weights.shape == (3, 4, 5)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    assert np.all(weights[~np.broadcast_to(mask[:, None, :], weights.shape)] == 0.0)
    # Context only mixes valid positions: padded memory rows do not matter.
    noisy = memory.copy()
    noisy[~mask] = 1e3
    np.testing.assert_allclose(np.asarray(layer(query, noisy, mask)[0]), context, atol=1e-5)


@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[2]], ids=[IDS[0], IDS[2]])
def test_extra_source_padding_changes_nothing(config):
    model = randomized(config)
    padded = np.concatenate([SOURCE, np.zeros((3, 6), np.int32)], axis=1)
    a = np.asarray(model({"source": SOURCE, "target_in": TARGET_IN}))
    b = np.asarray(model({"source": padded, "target_in": TARGET_IN}))
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("config", [CONFIGS[1], CONFIGS[2]], ids=[IDS[1], IDS[2]])
def test_package_round_trip(tmp_path, tiny_tokenizer, config):
    from nlpcore.packages import ModelCard, load_package, write_package

    model = randomized(config)
    card = ModelCard(name="translate-xx-yy", task="translation", languages=("xx", "yy"))
    package = write_package(tmp_path / "pkg", card, config, {"model": model},
                            {"source": tiny_tokenizer, "target": tiny_tokenizer})
    loaded = load_package(package.path)
    assert loaded.config(Seq2SeqConfig) == config
    again = loaded.load_model()
    inputs = {"source": SOURCE, "target_in": TARGET_IN}
    np.testing.assert_allclose(np.asarray(again(inputs)), np.asarray(model(inputs)), atol=1e-6)


def test_smoothed_cross_entropy():
    import keras

    from nlpcore.models.seq2seq import SmoothedCrossEntropy

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 6)).astype("float32")
    labels = np.array([[1, 2, 0], [4, 0, 0]])
    weights = (labels != 0).astype("float32")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    expected = (nll * weights).sum() / weights.sum()  # a mean over real tokens only
    plain = SmoothedCrossEntropy(0.0)(labels, logits, sample_weight=weights)
    assert float(plain) == pytest.approx(expected, rel=1e-5)
    reference = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")(labels, logits)
    np.testing.assert_allclose(np.asarray(SmoothedCrossEntropy(0.0, reduction="none")(labels, logits)),
                               np.asarray(reference), rtol=1e-5)
    smooth = -log_probs.mean(-1)
    expected = ((0.9 * nll + 0.1 * smooth) * weights).sum() / weights.sum()
    assert float(SmoothedCrossEntropy(0.1)(labels, logits, sample_weight=weights)) == pytest.approx(expected, rel=1e-5)


def test_token_accuracy_counts_tokens_across_batches_of_different_widths():
    import keras

    from nlpcore.models.seq2seq import TokenAccuracy

    def logits_for(ids):
        return np.eye(6, dtype="float32")[np.asarray(ids)]  # the highest score on each given id

    # a narrow batch of short sentences, all right, and a wide one, mostly wrong
    narrow = (np.array([[1, 2], [3, 0]]), logits_for([[1, 2], [3, 0]]))
    wide = (np.array([[1, 2, 3, 4, 5, 1], [2, 3, 4, 5, 0, 0]]), logits_for([[1, 2, 3, 4, 4, 4], [5, 5, 5, 5, 0, 0]]))
    metric, builtin = TokenAccuracy(), keras.metrics.SparseCategoricalAccuracy()
    hits = tokens = 0
    for labels, logits in (narrow, wide):
        weights = (labels != 0).astype("float32")
        metric.update_state(labels, logits, sample_weight=weights)
        builtin.update_state(labels, logits, sample_weight=weights)
        hits += ((logits.argmax(-1) == labels) * weights).sum()
        tokens += weights.sum()
    assert float(metric.result()) == pytest.approx(hits / tokens) == pytest.approx(8 / 13)
    # Keras's own weighs the narrow batch's sentences more than their tokens
    assert float(builtin.result()) > hits / tokens + 0.05
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_parallel_batches():
    from nlpcore.train.common import ParallelBatches

    sources = [[5] * n for n in [1, 9, 2, 8, 3, 7, 30, 4]]
    targets = [[6] * n for n in [2, 8, 1, 9, 3, 6, 25, 5]]
    data = ParallelBatches(sources, targets, batch_size=3, max_source_length=20, max_target_length=12,
                           max_tokens=40, seed=1)
    seen = 0
    for i in range(len(data)):
        x, y, w = data[i]
        src, tin = x["source"], x["target_in"]
        assert src.dtype == tin.dtype == y.dtype == np.int32 and tin.shape == y.shape == w.shape
        assert src.shape[1] <= 20 and tin.shape[1] <= 12
        assert len(src) <= 3 and (len(src) == 1 or len(src) * max(src.shape[1], tin.shape[1]) <= 40)
        assert (tin[:, 0] == BOS_ID).all()
        lengths = (y != PAD_ID).sum(1)
        assert (y[np.arange(len(y)), lengths - 1] == EOS_ID).all()
        np.testing.assert_array_equal(tin[:, 1:][y[:, :-1] != EOS_ID], y[:, :-1][y[:, :-1] != EOS_ID])
        np.testing.assert_array_equal(w, (y != PAD_ID).astype(np.float32))
        seen += len(src)
    assert seen == len(sources)
    padded = ParallelBatches(sources, targets, batch_size=4, max_source_length=40, max_target_length=40,
                             pad_multiple=8, shuffle=False)
    assert all(padded[i][0]["source"].shape[1] % 8 == 0 for i in range(len(padded)))


def test_parallel_batches_segment_the_pairs_anew_each_epoch():
    """With ``segment``, every epoch takes that epoch's ids (longer ones too), in
    as many batches as the first (Keras counts them once)."""
    from nlpcore.train.common import ParallelBatches

    sources = [[5] * n for n in [1, 9, 2, 8, 3, 7, 12, 4]]
    targets = [[6] * n for n in [2, 8, 1, 9, 3, 6, 10, 5]]
    calls = []

    def segment(epoch):
        calls.append(epoch)
        return [[7] * (len(s) + epoch) for s in sources], [[8] * (len(t) + 2 * epoch) for t in targets]

    data = ParallelBatches(sources, targets, batch_size=3, max_source_length=20, max_target_length=16,
                           max_tokens=40, seed=1, segment=segment)

    def epoch_ids():
        rows = [data[i] for i in range(len(data))]
        return (sorted(int((x["source"] != PAD_ID).sum()) for x, _, _ in rows),
                {int(v) for x, _, _ in rows for v in np.unique(x["source"])} - {PAD_ID})

    first = len(data)
    assert calls == [0] and epoch_ids()[1] == {7}
    assert sum(epoch_ids()[0]) == sum(min(len(s), 20) for s in sources)
    for epoch in (1, 2, 3):
        data.on_epoch_end()
        assert calls[-1] == epoch and len(data) == first
        assert epoch_ids()[1] == {7}
        assert sum(epoch_ids()[0]) == sum(min(len(s) + epoch, 20) for s in sources)
        assert max(data[i][1].shape[1] for i in range(len(data))) <= 16
        # TensorFlow's adapter takes the axes' shapes from the first two batches: both widths must differ
        (a, _, _), (b, _, _) = data[0], data[1]
        assert a["source"].shape[1] != b["source"].shape[1] and a["target_in"].shape[1] != b["target_in"].shape[1]
    with pytest.raises(ValueError, match="pairs"):
        ParallelBatches(sources, targets, 3, 20, 16, segment=lambda e: (sources[:2], targets[:2])).on_epoch_end()
    with pytest.raises(ValueError, match="two batches"):
        ParallelBatches(sources, targets, 8, 20, 16, segment=segment)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="attention"):
        Seq2SeqConfig(attention="dot")
    with pytest.raises(ValueError, match="layers"):
        Seq2SeqConfig(decoder_layers=0)
    with pytest.raises(ValueError, match="activation"):
        Seq2SeqConfig(attention_activation="gelu")


# ------------------------------------------------------------ both backends
_BACKEND_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, keras
    from nlpcore.models.seq2seq import Seq2SeqConfig, build_seq2seq, compile_seq2seq
    from nlpcore.train.common import ParallelBatches
    config = Seq2SeqConfig(**json.loads(sys.argv[1]))
    model = build_seq2seq(config)
    model.load_weights(sys.argv[2])
    compile_seq2seq(model, 3e-3, 5.0, 0.1)
    rng = np.random.default_rng(0)
    sources = [list(rng.integers(4, 30, rng.integers(2, 7))) for _ in range(48)]
    targets = [list(reversed(s)) for s in sources]
    data = ParallelBatches(sources, targets, 16, 20, 20, shuffle=False)
    losses = [float(model.train_on_batch(*data[i % len(data)], return_dict=True)["loss"]) for i in range(6)]
    print(json.dumps({"backend": keras.backend.backend(), "losses": losses}))
    """
)


def test_jax_keeps_compiled_steps_on_disk(tmp_path):
    script = textwrap.dedent(
        """
        import jax, jax.numpy as jnp
        from nlpcore.train.common import use_compilation_cache
        folder = use_compilation_cache(min_compile_seconds=0)
        jax.jit(lambda x: jnp.tanh(x) * 2.0)(jnp.ones(3)).block_until_ready()
        print(folder)
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "MALBEOT_HOME": str(tmp_path)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    folder = tmp_path / "cache" / "jax-cache"
    assert out.stdout.strip().splitlines()[-1] == str(folder)
    assert any(folder.iterdir())  # the compiled function, for the next run
    env["KERAS_BACKEND"] = "tensorflow"
    out = subprocess.run([sys.executable, "-c", "from nlpcore.train.common import use_compilation_cache; "
                          "print(use_compilation_cache())"], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "None"


@pytest.mark.slow
@pytest.mark.parametrize("variant", [dict(attention="luong"), dict(attention="bahdanau", input_feeding=True)],
                         ids=["luong", "bahdanau-if"])
def test_tensorflow_and_jax_train_alike(tmp_path, variant):
    """Same weights, same batches, no dropout: the two backends' losses agree step by step."""
    import dataclasses

    from nlpcore.models.seq2seq import build_seq2seq

    config = Seq2SeqConfig(src_vocab_size=30, tgt_vocab_size=30, embedding_dim=16, encoder_units=16,
                           decoder_units=24, attention_units=16, dropout=0.0, **variant)
    weights = tmp_path / "start.weights.h5"
    build_seq2seq(config).save_weights(weights)
    results = {}
    for backend in ("tensorflow", "jax"):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        out = subprocess.run([sys.executable, "-c", _BACKEND_SCRIPT, json.dumps(dataclasses.asdict(config)),
                              str(weights)], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        record = json.loads(out.stdout.strip().splitlines()[-1])
        assert record["backend"] == backend
        results[backend] = record["losses"]
    np.testing.assert_allclose(results["jax"], results["tensorflow"], rtol=2e-3)
    assert results["tensorflow"][-1] < results["tensorflow"][0]  # it learns


_JAX_PACKAGE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, keras
    from nlpcore.models.seq2seq import Seq2SeqConfig, build_seq2seq
    from nlpcore.packages import ModelCard, write_package
    from nlpcore.tokenizer import Tokenizer
    config = Seq2SeqConfig(**json.loads(sys.argv[1]))
    keras.utils.set_random_seed(3)
    model = build_seq2seq(config)
    inputs = {"source": np.array(json.loads(sys.argv[3]), np.int32), "target_in": np.array(json.loads(sys.argv[4]), np.int32)}
    tokenizer = Tokenizer.load(sys.argv[5])
    write_package(sys.argv[2], ModelCard(name="translate-xx-yy", task="translation", languages=("xx", "yy")),
                  config, {"model": model}, {"source": tokenizer, "target": tokenizer})
    np.save(sys.argv[2] + ".npy", np.asarray(model(inputs)))
    print(keras.backend.backend())
    """
)


@pytest.mark.slow
def test_package_saved_under_jax_loads_under_tensorflow(tmp_path, tiny_tokenizer):
    import dataclasses

    from nlpcore.packages import load_package

    config = CONFIGS[3]  # Bahdanau, input feeding: the scan path
    tokenizer = tiny_tokenizer.save(tmp_path / "tok.model")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", _JAX_PACKAGE_SCRIPT, json.dumps(dataclasses.asdict(config)),
                          str(tmp_path / "pkg"), json.dumps(SOURCE.tolist()), json.dumps(TARGET_IN.tolist()),
                          str(tokenizer)], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("jax"), out.stderr[-3000:]
    package = load_package(tmp_path / "pkg")
    assert package.card.backend == "jax"
    logits = np.asarray(package.load_model()({"source": SOURCE, "target_in": TARGET_IN}))
    np.testing.assert_allclose(logits, np.load(tmp_path / "pkg.npy"), atol=1e-5)


_CUDNN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import keras
    from nlpcore.models.classifier import ClassifierConfig, build_classifier
    from nlpcore.models.language_model import LanguageModelConfig, build_language_model
    from nlpcore.models.seq2seq import Seq2SeqConfig, build_seq2seq
    models = {
        "classifier": build_classifier(ClassifierConfig(vocab_size=50, embedding_dim=8, units=6)),
        "language_model": build_language_model(LanguageModelConfig(vocab_size=50, embedding_dim=8, units=6)),
        "carried_language_model": build_language_model(LanguageModelConfig(vocab_size=50, embedding_dim=8, units=6),
                                                       carry_state_batch=2),
        "seq2seq": build_seq2seq(Seq2SeqConfig(**json.loads(sys.argv[1]))),
    }
    print(json.dumps({name: [layer.use_cudnn for layer in model._flatten_layers()
                             if isinstance(layer, keras.layers.LSTM)] for name, model in models.items()}))
    """
)


@pytest.mark.slow
def test_lstms_stay_off_the_jax_cudnn_path():
    """Under JAX every LSTM of the three model kinds runs on the lax.scan path
    (models trained on JAX's cuDNN path stalled on a GPU); TensorFlow keeps its choice."""
    import dataclasses

    for backend, expected in (("jax", False), ("tensorflow", "auto")):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        out = subprocess.run([sys.executable, "-c", _CUDNN_SCRIPT,
                              json.dumps(dataclasses.asdict(CONFIGS[1]))],
                             env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        flags = json.loads(out.stdout.strip().splitlines()[-1])
        assert set(flags) == {"classifier", "language_model", "carried_language_model", "seq2seq"}
        assert all(flags.values()), flags  # every model has its LSTMs
        assert len(flags["seq2seq"]) == 2 * CONFIGS[1].encoder_layers + CONFIGS[1].decoder_layers
        assert {flag for found in flags.values() for flag in found} == {expected}, (backend, flags)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_teacher_forced_log_prob_matches_keras_and_the_step(config):
    """``NumpySeq2Seq.log_prob`` (time steps batched, or step by step with input feeding)
    equals the Keras training model's log-softmax summed over the target and ``</s>``."""
    from nlpcore.inference import NumpySeq2Seq
    from nlpcore.translation import keras_log_prob

    model = randomized(config)
    twin = NumpySeq2Seq(model, config)
    sources = [[5, 6, 7], [8, 9, 10, 11, 12], [13], [14, 15]]
    targets = [[5, 6, 7], [7], [9, 9, 9, 9, 9], []]
    expected = keras_log_prob(model, sources, targets)
    got = twin.log_prob(sources, targets, batch_size=3)  # two batches, rows regrouped by length
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert (got < 0).all() and got[1] > got[2]  # longer targets collect more negative terms here
    by_steps = twin._forced_by_steps(np.array([[5, 6, 7, EOS_ID], [7, EOS_ID, -1, -1]]),
                                     twin.encode(np.array([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]])))
    np.testing.assert_allclose(by_steps, expected[:2], atol=1e-4)
    with pytest.raises(ValueError, match="targets for"):
        twin.log_prob(sources, targets[:2])
