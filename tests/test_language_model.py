"""The language model, its NumPy twin, scoring and the training pipeline on a fixture text."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from nlpcore.config import ConfigError, from_dict, to_dict
from nlpcore.inference import NumpyLanguageModel
from nlpcore.models.language_model import (
    CarriedStateLSTM,
    LanguageModelConfig,
    TiedEmbedding,
    build_language_model,
    build_step_model,
    copy_weights,
    reset_states,
)
from nlpcore.packages import ModelCard, load_package, write_package
from nlpcore.tokenizer import BOS_ID
from nlpcore.train.lm import (
    LMTrainConfig,
    LaneBatches,
    line_blocks,
    load_segments,
    score_text,
    split_document,
)

CONFIGS = [
    LanguageModelConfig(vocab_size=40, embedding_dim=8, units=6, layers=2),  # tied, with projection
    LanguageModelConfig(vocab_size=40, embedding_dim=6, units=6, layers=3),  # tied, no projection
    LanguageModelConfig(vocab_size=40, embedding_dim=8, units=6, layers=1, tie_embeddings=False),
]


def perturbed(model, seed=0, scale=0.3):
    """Non-trivial weights (non-zero biases) so every term of the NumPy twin is exercised."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([w + rng.normal(0, scale, w.shape).astype("float32") for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("config", CONFIGS)
def test_numpy_twin_matches_keras(config):
    import keras

    keras.utils.set_random_seed(1)
    model = perturbed(build_language_model(config))
    ids = np.random.default_rng(3).integers(0, config.vocab_size, (3, 9)).astype("int32")
    expected = np.asarray(model(ids))
    assert expected.shape == (3, 9, config.vocab_size) and expected.dtype == np.float32
    twin = NumpyLanguageModel(model, config)

    logits, _ = twin.forward(ids)
    np.testing.assert_allclose(logits, expected, atol=1e-5)

    state, steps = twin.initial_state(3), []
    for t in range(ids.shape[1]):
        step_logits, state, attention = twin.step(ids[:, t], state)
        assert attention is None and step_logits.dtype == np.float32
        steps.append(step_logits)
    np.testing.assert_allclose(np.stack(steps, 1), expected, atol=1e-5)

    # A prompt read in one pass, then steps, equals the whole sequence at once.
    last, state = twin.forward(ids[:, :5], last_only=True)
    np.testing.assert_allclose(last, expected[:, 4], atol=1e-5)
    for t in range(5, 9):
        step_logits, state, _ = twin.step(ids[:, t], state)
    np.testing.assert_allclose(step_logits, expected[:, 8], atol=1e-5)


@pytest.mark.parametrize("config", CONFIGS[:2])
def test_step_model_carries_state_like_one_pass(config):
    model = perturbed(build_language_model(config))
    step_model = build_step_model(model, config)
    ids = np.random.default_rng(4).integers(0, config.vocab_size, (2, 8)).astype("int32")
    zeros = [np.zeros((2, config.units), np.float32)] * (2 * config.layers)
    first = step_model([ids[:, :3], *zeros])
    second = step_model([ids[:, 3:], *[np.asarray(s) for s in first[1:]]])
    joined = np.concatenate([np.asarray(first[0]), np.asarray(second[0])], axis=1)
    np.testing.assert_allclose(joined, np.asarray(model(ids)), atol=1e-5)


def test_tied_embedding_shares_one_matrix():
    config = CONFIGS[1]
    model = build_language_model(config)
    names = [w.path for w in model.weights]
    assert sum("embeddings" in n for n in names) == 1
    assert not any(layer.name == "logits" for layer in model.layers)
    untied = build_language_model(CONFIGS[2])
    assert any(layer.name == "logits" for layer in untied.layers)
    assert isinstance(model.get_layer("embedding"), TiedEmbedding)


def test_dropout_only_while_training():
    config = LanguageModelConfig(vocab_size=30, embedding_dim=8, units=8, layers=2, embedding_dropout=0.5, dropout=0.5)
    model = build_language_model(config)
    ids = np.arange(4, 14, dtype="int32")[None]
    np.testing.assert_array_equal(np.asarray(model(ids)), np.asarray(model(ids)))
    assert not np.allclose(np.asarray(model(ids, training=True)), np.asarray(model(ids)))


def test_config_round_trip_and_checks():
    config = LanguageModelConfig(vocab_size=100, layers=3, tie_embeddings=False)
    assert from_dict(LanguageModelConfig, to_dict(config)) == config
    with pytest.raises(ValueError, match="layers"):
        LanguageModelConfig(layers=0)
    with pytest.raises(ValueError, match="dropout"):
        LanguageModelConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="split"):
        from_dict(LMTrainConfig, {"split": "random_lines"})
    with pytest.raises(ConfigError, match="weights_dtype"):
        from_dict(LMTrainConfig, {"weights_dtype": "int8"})


def test_package_round_trip(tmp_path, tiny_tokenizer):
    config = LMTrainConfig(model=LanguageModelConfig(vocab_size=tiny_tokenizer.vocab_size, embedding_dim=8, units=12))
    model = perturbed(build_language_model(config.model), scale=0.1)
    card = ModelCard(name="generate-test", task="generation", languages=("en",))
    package = write_package(tmp_path / "pkg", card, config, {"model": model}, {"tokenizer": tiny_tokenizer})
    loaded = load_package(package.path)
    assert loaded.config(LMTrainConfig) == config
    ids = np.asarray([[BOS_ID, 10, 20, 30]], dtype=np.int32)
    np.testing.assert_allclose(np.asarray(loaded.load_model()(ids)), np.asarray(model(ids)), atol=1e-6)


# ------------------------------------------------------------------ splits and batches
def test_tail_split_is_contiguous_and_cut_at_a_line_end():
    text = "".join(f"line {i}\n" for i in range(100)).rstrip("\n")
    config = LMTrainConfig(split="tail", validation_fraction=0.1)
    (train,), (held,) = split_document(config, "c", "doc", text)
    assert train.text + held.text == text
    assert train.text.endswith("\n") and held.text.startswith("line 9")
    assert not train.ends_document and held.ends_document
    assert abs(len(held.text) - 0.1 * len(text)) < 10


def test_block_split_keeps_blocks_whole_and_is_deterministic():
    text = "".join(f"paragraph {i} " * 5 + "\n" for i in range(400))
    blocks = line_blocks(text, 300)
    assert "".join(blocks) == text and all(b.endswith("\n") for b in blocks)
    config = LMTrainConfig(split="blocks", validation_fraction=0.2, block_chars=300)
    train, held = split_document(config, "c", "doc", text)
    assert train and held
    assert split_document(config, "c", "doc", text) == (train, held)
    pieces = sorted(train + held, key=lambda s: text.index(s.text))
    assert "".join(s.text for s in pieces) == text  # nothing lost, nothing doubled
    assert sum(s.ends_document for s in train + held) == 1
    assert 0.05 < sum(len(s.text) for s in held) / len(text) < 0.4


def test_lane_batches_continue_each_row_from_the_last_batch():
    stream = np.arange(10, 1010, dtype=np.int32)
    data = LaneBatches(stream, sequence_length=10, batch_size=4, seed=1)
    batches = [data[k] for k in range(len(data))]
    for k, (x, y) in enumerate(batches):
        ids, restart = x["ids"], x["restart"]
        assert ids.shape == (4, 10) and ids.dtype == np.int32 and restart.shape == (4,)
        np.testing.assert_array_equal(y, stream[y[:, :1] - 10 + np.arange(10)])  # contiguous targets
        np.testing.assert_array_equal(ids[:, 1:], y[:, :-1])
        assert restart.tolist() == ([1.0] * 4 if k == 0 else [0.0] * 4)  # restart_rate 0: only lane starts
        np.testing.assert_array_equal(ids[:, 0], BOS_ID if k == 0 else y[:, 0] - 1)  # a lane starts after <s>
    for (_, y), (after, _) in zip(batches, batches[1:]):
        np.testing.assert_array_equal(after["ids"][:, 0], y[:, -1])  # every lane goes on where it stopped
    targets = np.concatenate([y for _, y in batches], axis=1)
    assert len(np.unique(targets)) == targets.size > 900  # one pass, nothing twice
    offsets = set()
    for _ in range(5):
        offsets.add(data.offset())
        data.on_epoch_end()
    assert len(offsets) > 1  # a new offset every epoch
    np.testing.assert_array_equal(LaneBatches(stream, 10, 4, seed=1)[0][0]["ids"], batches[0][0]["ids"])  # seeded
    held = LaneBatches(np.arange(10, 60), 10, 8, shuffle=False)  # too short for full rows: one shorter batch
    assert len(held) == 1 and held[0][0]["ids"].shape == (8, 5) and held[0][1][0, 0] == 11
    with pytest.raises(ValueError, match="too few"):
        LaneBatches(np.arange(5), 10, 8)


def test_lanes_restart_at_random_with_bos():
    stream = np.arange(10, 100010, dtype=np.int32)
    data = LaneBatches(stream, 10, 8, seed=2, restart_rate=0.25)
    restarts = np.stack([data[k][0]["restart"] for k in range(len(data))])
    assert restarts[0].all() and 0.2 < restarts[1:].mean() < 0.3
    for k in range(1, 20):
        x, y = data[k]
        flagged = x["restart"] == 1
        assert (x["ids"][flagged, 0] == BOS_ID).all() and (x["ids"][~flagged, 0] == y[~flagged, 0] - 1).all()


@pytest.mark.parametrize("layers", [1, 2])
def test_training_carries_the_state_across_batches(layers):
    """fit's loss over consecutive lane batches equals the shipped model's loss over whole lanes,
    and a restarted row equals a fresh start after <s>."""
    import keras

    config = LanguageModelConfig(vocab_size=30, embedding_dim=8, units=6, layers=layers,
                                 embedding_dropout=0.0, dropout=0.0)
    model = build_language_model(config, carry_state_batch=3)
    for layer in model.layers:
        if isinstance(layer, CarriedStateLSTM):
            layer.lstm.set_weights([w + np.random.default_rng(1).normal(0, 0.8, w.shape).astype("float32")
                                    for w in layer.lstm.get_weights()])
    perturbed(model, scale=0.8)
    assert isinstance(model.get_layer("lstm_0"), CarriedStateLSTM)
    model.compile(keras.optimizers.Adam(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    stream = np.random.default_rng(0).integers(4, 30, 3 * 21).astype(np.int32)
    data = LaneBatches(stream, 5, 3, shuffle=False)
    assert len(data) == 4
    losses = []

    class BatchLosses(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(logs["loss"] * (batch + 1) - sum(losses))

    model.fit(data, epochs=1, shuffle=False, verbose=0, callbacks=[BatchLosses()])
    shipped = copy_weights(model, build_language_model(config))

    def mean_nll(ids, targets):
        logits = np.asarray(shipped(np.asarray(ids, np.int32)), np.float64)
        log_probs = logits - logits.max(-1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
        return -np.take_along_axis(log_probs, np.asarray(targets)[..., None], -1).mean()

    lanes = np.stack([stream[i * 21 : i * 21 + 21] for i in range(3)])
    whole = np.concatenate([[[BOS_ID]] * 3, lanes[:, 1:20]], axis=1)
    assert sum(losses) / 4 == pytest.approx(mean_nll(whole, lanes[:, 1:21]), rel=1e-4)
    assert not np.allclose(losses[1], mean_nll(np.concatenate([[[BOS_ID]] * 3, lanes[:, 6:10]], 1), lanes[:, 6:11]))

    # A restarted row forgets its state: same logits as a fresh <s> start.
    x = {"ids": np.asarray([[BOS_ID, 5, 6], [BOS_ID, 5, 6], [7, 8, 9]], np.int32),
         "restart": np.asarray([1.0, 1.0, 0.0], np.float32)}
    out = np.asarray(model(x))
    fresh = np.asarray(shipped(x["ids"][:2]))
    np.testing.assert_allclose(out[:2], fresh, atol=1e-5)
    reset_states(model)
    assert not np.asarray(model.get_layer("lstm_0").h).any()


# ------------------------------------------------------------------ scoring
def test_score_counts_every_piece_after_bos(tmp_path, tiny_tokenizer):
    from nlpcore.generation import encode_exact

    config = LMTrainConfig(model=LanguageModelConfig(vocab_size=tiny_tokenizer.vocab_size, embedding_dim=8, units=12))
    model = perturbed(build_language_model(config.model), scale=0.2)
    card = ModelCard(name="generate-test", task="generation", languages=("en",))
    package = write_package(tmp_path / "pkg", card, config, {"model": model}, {"tokenizer": tiny_tokenizer})
    text = "  I love you.  This movie was great!\n오늘 날씨가 좋네요 😀 "
    result = score_text(package, text)
    assert set(result) == {"nats_per_char", "chars", "tokens"}
    ids = encode_exact(tiny_tokenizer, text)
    assert tiny_tokenizer.decode(ids) == text
    assert result["chars"] == len(text) and result["tokens"] == len(ids)

    logits = np.asarray(model(np.asarray([[BOS_ID, *ids]], np.int32)), np.float64)[0, :-1]
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    expected = -log_probs[np.arange(len(ids)), ids].sum() / len(text)
    assert result["nats_per_char"] == pytest.approx(expected, rel=1e-5)
    assert score_text(package.path, text) == result  # a folder works too
    # Long texts are read in chunks, carrying the state: same figure as one pass.
    from nlpcore.generation import LanguageModelRunner

    runner = LanguageModelRunner(NumpyLanguageModel(model, config.model), tiny_tokenizer)
    assert runner.score(text, chunk=3)["nats"] == pytest.approx(runner.score(text)["nats"], rel=1e-6)
    with pytest.raises(ValueError, match="empty"):
        runner.score("")


# ------------------------------------------------------------------ training on a fixture text
VERSES = [
    "ROMEO:\nBut soft, what light through yonder window breaks?",
    "JULIET:\nO Romeo, Romeo, wherefore art thou Romeo?",
    "ROMEO:\nIt is the east, and Juliet is the sun.",
    "JULIET:\nWhat's in a name? That which we call a rose",
    "ROMEO:\nShe speaks, yet she says nothing: what of that?",
    "JULIET:\nGood night, good night! Parting is such sweet sorrow.",
]


def fixture_text(repeats=40, seed=0):
    rng = np.random.default_rng(seed)
    return "\n\n".join(VERSES[i] for i in rng.integers(0, len(VERSES), repeats * len(VERSES)))


def tiny_train_config(tmp_path, **changes):
    corpus = tmp_path / "plays.txt"
    corpus.write_text(fixture_text(), encoding="utf-8")
    values = dict(
        name="generate-fixture", corpora=(str(corpus),), split="tail", validation_fraction=0.1,
        tokenizer={"vocab_size": 340, "character_coverage": 1.0, "hard_vocab_limit": False},
        model={"embedding_dim": 32, "units": 64, "layers": 2, "embedding_dropout": 0.0, "dropout": 0.0},
        sequence_length=32, batch_size=8, epochs=4, learning_rate=0.01, patience=3,
        samples=[{"prompt": "ROMEO:", "max_new_tokens": 20}],
        run_dir=str(tmp_path / "run"), output=str(tmp_path / "run" / "package"),
    )
    values.update(changes)
    return from_dict(LMTrainConfig, values)


@pytest.mark.slow
def test_training_learns_the_fixture_and_writes_a_complete_package(tmp_path):
    from nlpcore.train.lm import train

    config = tiny_train_config(tmp_path)
    package = train(config, verbose=0)
    card = package.card
    assert card.task == "generation" and card.name == "generate-fixture"
    assert {"config.yaml", "model.keras", "tokenizer.model", "evaluation.json"} <= set(card.files)
    (split, metrics), = card.metrics.items()
    assert split.startswith("validation (last 10%")
    vocab = package.tokenizer().vocab_size
    uniform = math.log(vocab) * metrics["tokens"] / metrics["chars"]  # nats/char of guessing uniformly
    assert metrics["nats_per_char"] < 0.35 * uniform
    assert card.extra["samples"][0]["prompt"] == "ROMEO:" and card.extra["samples"][0]["continuation"]
    evaluation = json.loads((package.path / "evaluation.json").read_text())
    assert len(evaluation["history"]["val_loss"]) == card.extra["epochs_run"] >= 1
    assert evaluation["history"]["val_nats_per_char"][-1] > 0
    # The card's figure is exactly what `score` gives on the held-out text.
    held = load_segments(config)[1]
    assert score_text(package, held[0].text)["nats_per_char"] == pytest.approx(metrics["nats_per_char"], abs=1e-4)
    # Resuming a finished run reuses its tokenizer and still writes the package.
    resumed = train(dataclasses_replace(config, epochs=4), resume=True, verbose=0)
    assert resumed.tokenizer().to_bytes() == package.tokenizer().to_bytes()


def dataclasses_replace(config, **changes):
    import dataclasses

    return dataclasses.replace(config, **changes)


@pytest.mark.slow
def test_fine_tuning_starts_from_the_pretrained_package(tmp_path):
    from nlpcore.train.lm import train
    from tests.helpers import stored_weight_dtypes

    for folder in ("pre", "tuned"):
        (tmp_path / folder).mkdir()
    pretrained = train(tiny_train_config(tmp_path / "pre", epochs=2), verbose=0)
    (_, before), = pretrained.card.metrics.items()
    # A learning rate too small to move anything: the fine-tuned model is the pretrained one
    # (a fresh one would score near uniform), in its architecture and with its tokenizer,
    # whatever this config's model says.
    tuned = train(tiny_train_config(tmp_path / "tuned", name="generate-tuned", init_from=str(pretrained.path),
                                    learning_rate=1e-9, epochs=1, model={"embedding_dim": 16, "units": 24},
                                    weights_dtype="float16"),
                  verbose=0)
    (_, after), = tuned.card.metrics.items()
    assert tuned.tokenizer().to_bytes() == pretrained.tokenizer().to_bytes()
    assert tuned.config(LMTrainConfig).model.units == 64
    assert after["nats_per_char"] == pytest.approx(before["nats_per_char"], abs=1e-3)
    # Stored as float16, and the card's figure is what the stored weights score.
    assert stored_weight_dtypes(tuned.path / "model.keras") == {np.dtype("float16")}
    held = load_segments(tuned.config(LMTrainConfig))[1]
    assert score_text(tuned, held[0].text)["nats_per_char"] == pytest.approx(after["nats_per_char"], abs=1e-4)
    # The card names the pretraining data and the package it started from.
    assert [d.notes.startswith("pretraining (generate-fixture)") for d in tuned.card.data] == [True, False]
    assert tuned.card.extra["initialized_from"]["package"] == "generate-fixture"


@pytest.mark.slow
def test_vocab_search_picks_the_best_held_out_size(tmp_path):
    from nlpcore.train.lm import search_vocab_size

    config = tiny_train_config(tmp_path, vocab_search={"sizes": [310, 340], "steps": 3, "batch_size": 4,
                                                       "validation_chars": 500,
                                                       "model": {"embedding_dim": 8, "units": 8, "layers": 1}})
    train, held, _ = load_segments(config)
    results = search_vocab_size(config, train, held, verbose=0)
    assert len(results) == 2
    assert all(0 < r["nats_per_char"] < 20 and r["chars"] <= 500 for r in results.values())


@pytest.mark.slow
def test_trains_on_jax_and_loads_on_tensorflow(tmp_path):
    """Packages written under JAX load under TensorFlow with the same outputs."""
    script = f"""
import dataclasses, json, sys
sys.path.insert(0, {os.getcwd()!r})
from tests.test_language_model import tiny_train_config
from nlpcore.train.lm import train
import pathlib
config = tiny_train_config(pathlib.Path({str(tmp_path)!r}), epochs=1)
package = train(config, verbose=0)
print(json.dumps({{"path": str(package.path), "backend": package.card.backend,
                  "nats": list(package.card.metrics.values())[0]["nats_per_char"]}}))
"""
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert record["backend"] == "jax"
    package = load_package(record["path"])
    held = load_segments(package.config(LMTrainConfig))[1]
    assert score_text(package, held[0].text)["nats_per_char"] == pytest.approx(record["nats"], abs=1e-4)
