"""The classifier model, its NumPy twin and the sentiment training pipeline on fixture data."""

import dataclasses
import gzip
import json

import numpy as np
import pytest

from nlpcore.inference import NumpyClassifier, masked_pool
from nlpcore.models.classifier import ClassifierConfig, build_classifier
from nlpcore.train.common import BucketedBatches, pad_batch


def random_ids(rng, lengths, vocab=50):
    return pad_batch([list(rng.integers(4, vocab, n)) for n in lengths])


@pytest.mark.parametrize(
    "config",
    [
        ClassifierConfig(vocab_size=50, embedding_dim=8, units=6, encoder="bilstm", pooling="max_mean"),
        ClassifierConfig(vocab_size=50, embedding_dim=8, units=6, encoder="bilstm", layers=2, pooling="last"),
        ClassifierConfig(vocab_size=50, embedding_dim=8, units=6, encoder="lstm", pooling="mean", dense_units=5),
        ClassifierConfig(vocab_size=50, embedding_dim=8, units=6, encoder="lstm", pooling="max"),
    ],
)
def test_numpy_twin_matches_keras(config):
    import keras

    keras.utils.set_random_seed(1)
    model = build_classifier(config)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # non-zero biases so every term is exercised
        if layer.weights:
            layer.set_weights([w + rng.normal(0, 0.1, w.shape).astype("float32") for w in layer.get_weights()])
    ids = random_ids(rng, [7, 3, 1, 5])
    np.testing.assert_allclose(NumpyClassifier(model, config)(ids), np.asarray(model(ids)), atol=1e-5)


@pytest.mark.parametrize("encoder", ["bilstm", "lstm", "conv_lstm"])
def test_padding_does_not_change_predictions(encoder):
    config = ClassifierConfig(vocab_size=50, embedding_dim=8, units=6, encoder=encoder, conv_filters=8, conv_pool=1)
    model = build_classifier(config)
    rng = np.random.default_rng(2)
    ids = random_ids(rng, [6])
    padded = np.concatenate([ids, np.zeros((1, 9), dtype=np.int32)], axis=1)
    np.testing.assert_allclose(np.asarray(model(padded)), np.asarray(model(ids)), atol=1e-6)


def test_masked_pool_ignores_padding():
    values = np.array([[[1.0, -5.0], [3.0, -1.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[True, True, False]])
    np.testing.assert_allclose(masked_pool(values, mask, "max"), [[3.0, -1.0]])
    np.testing.assert_allclose(masked_pool(values, mask, "mean"), [[2.0, -3.0]])
    np.testing.assert_allclose(masked_pool(values, mask, "last"), [[3.0, -1.0]])
    np.testing.assert_allclose(masked_pool(values, np.zeros_like(mask), "max_mean"), [[0, 0, 0, 0]])


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="encoder"):
        ClassifierConfig(encoder="transformer")
    with pytest.raises(ValueError, match="pooling"):
        ClassifierConfig(pooling="median")


def test_bucketed_batches_pad_per_batch_and_cover_everything():
    sequences = [[5] * n for n in [1, 9, 2, 8, 3, 7, 30]]
    data = BucketedBatches(sequences, list(range(7)), batch_size=2, max_length=10, seed=3)
    seen = []
    for i in range(len(data)):
        x, y = data[i]
        assert x.shape[1] <= 10 and x.dtype == np.int32
        assert (x[:, -1] != 0).any()  # padded to the batch's own longest row
        seen += list(y)
    assert sorted(seen) == list(range(7))


# ------------------------------------------------------------ training on a fixture corpus
POSITIVE = ["정말 재미있어요 최고", "배우 연기가 훌륭하다", "감동적인 영화 추천", "또 보고 싶다 최고", "너무 좋았어요"]
NEGATIVE = ["정말 지루하고 최악", "시간 아깝다 별로", "연기가 어색하다 최악", "돈 아까운 영화", "너무 재미없어요"]


@pytest.fixture
def fixture_corpus(tmp_path, monkeypatch):
    rows = ["id\ttext\tlabel"]
    rng = np.random.default_rng(0)
    for i in range(1200):
        label = i % 2
        words = (POSITIVE if label else NEGATIVE)[rng.integers(5)].split()
        rows.append(f"{i}\t{' '.join(rng.permutation(words))} {rng.integers(100)}\t{label}")
    folder = tmp_path / "data" / "sentiment"
    folder.mkdir(parents=True)
    with gzip.open(folder / "nsmc_train.tsv.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    monkeypatch.setenv("MALBEOT_DATA", str(tmp_path / "data"))
    return tmp_path


@pytest.mark.slow
def test_train_writes_a_complete_package_and_resumes(fixture_corpus):
    from nlpcore.config import from_dict
    from nlpcore.packages import load_package
    from nlpcore.train.sentiment import SentimentTrainConfig, train

    config = from_dict(SentimentTrainConfig, {
        "name": "sentiment-ko", "corpora": ["nsmc"], "epochs": 3, "batch_size": 32, "learning_rate": 0.01,
        "tokenizer": {"vocab_size": 400, "hard_vocab_limit": False}, "model": {"embedding_dim": 16, "units": 8, "max_length": 16},
        "run_dir": str(fixture_corpus / "run"), "output": str(fixture_corpus / "pkg"), "patience": 3,
        "ensemble": 2,
    })
    package = train(config, verbose=0)
    card = load_package(package.path).card
    (split, metrics), = card.metrics.items()
    assert "validation" in split and metrics["accuracy"] > 0.9  # the fixture is easy
    assert {"model.keras", "model_1.keras", "tokenizer.model", "config.yaml", "evaluation.json",
            "confusion_matrix.png"} <= set(card.files)
    assert len(card.extra["member_accuracy"]) == 2
    evaluation = json.loads((package.path / "evaluation.json").read_text())
    assert sum(map(sum, evaluation["confusion_matrix"])) == evaluation["examples"]
    assert 0 <= evaluation["calibration"]["ece"] <= 1
    assert (package.path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert package.config(SentimentTrainConfig).model.vocab_size == package.tokenizer().vocab_size

    history = (fixture_corpus / "run" / "member_1" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 3
    longer = from_dict(SentimentTrainConfig, {**json.loads(json.dumps(_plain(config))), "epochs": 4})
    train(longer, resume=True, verbose=0)  # continues at epoch 4 instead of starting over
    history = (fixture_corpus / "run" / "member_1" / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1", "2", "3"]


@pytest.mark.slow
def test_service_averages_ensemble_members(fixture_corpus):
    from nlpcore.config import from_dict
    from nlpcore.packages import load_package
    from nlpcore.services import Sentiment, _ClassifierRunner
    from nlpcore.train.sentiment import SentimentTrainConfig, train

    config = from_dict(SentimentTrainConfig, {
        "corpora": ["nsmc"], "epochs": 2, "batch_size": 32, "learning_rate": 0.01, "ensemble": 2,
        "tokenizer": {"vocab_size": 400, "hard_vocab_limit": False},
        "model": {"embedding_dim": 8, "units": 4, "max_length": 16},
        "run_dir": str(fixture_corpus / "run2"), "output": str(fixture_corpus / "pkg2"),
    })
    package = load_package(train(config, verbose=0).path)
    runner = _ClassifierRunner(package)
    ids = pad_batch(runner.encode(["정말 재미있어요 최고", "시간 아깝다 별로"]))
    members = [np.asarray(m(ids)) for m in runner.keras_models]
    np.testing.assert_allclose(runner.probabilities([list(r[r > 0]) for r in ids]), np.mean(members, 0), atol=1e-5)
    result = Sentiment([runner]).predict(["정말 재미있어요 최고"])[0]
    assert result.label == "positive" and len(result.contributions) == 3


def _plain(config):
    from nlpcore.config import to_dict

    return to_dict(config)


# ------------------------------------------------------------ language-model pretraining of the encoder
def test_encoder_lm_directions_never_see_the_piece_they_predict():
    import keras

    from nlpcore.models.classifier import build_encoder_lm, copy_encoder

    keras.utils.set_random_seed(3)
    config = ClassifierConfig(vocab_size=60, embedding_dim=8, units=6, max_length=20)
    lm = build_encoder_lm(config, output_vocab=30)
    ids = np.array([[5, 6, 7, 8, 9, 10]], np.int32)
    changed = ids.copy()
    changed[0, 3] = 40
    before, after = lm(ids), lm(changed)
    # Forward step t predicts piece t+1 from pieces ≤ t; backward step t predicts t-1 from pieces ≥ t.
    np.testing.assert_allclose(before["next_piece"][0, :3], after["next_piece"][0, :3], atol=1e-6)
    assert not np.allclose(before["next_piece"][0, 3], after["next_piece"][0, 3])
    np.testing.assert_allclose(before["previous_piece"][0, 4:], after["previous_piece"][0, 4:], atol=1e-6)
    assert not np.allclose(before["previous_piece"][0, 3], after["previous_piece"][0, 3])
    padded = np.array([[5, 6, 7, 8, 9, 10, 0, 0]], np.int32)
    np.testing.assert_allclose(lm(padded)["previous_piece"][0, :6], before["previous_piece"][0], atol=1e-5)

    classifier = build_classifier(config)
    copy_encoder(lm, classifier)
    for name in ("embedding", "bilstm_0"):
        for a, b in zip(lm.get_layer(name).get_weights(), classifier.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="one-layer"):
        build_encoder_lm(ClassifierConfig(vocab_size=60, layers=2), 30)


def test_encoder_lm_batches_shift_targets_both_ways():
    from nlpcore.train.common import EncoderLMBatches

    data = EncoderLMBatches([[4, 5, 9], [7, 8]], batch_size=2, max_length=8, output_vocab=8, shuffle=False)
    x, targets, weights = data[0]
    rows = {tuple(r[r > 0]): i for i, r in enumerate(x)}
    first, second = rows[(4, 5, 9)], rows[(7, 8)]
    assert targets["next_piece"][first].tolist() == [5, 7, 0]  # piece 9 ≥ output_vocab: the last class
    assert targets["previous_piece"][first].tolist() == [0, 4, 5]
    assert weights["next_piece"][first].tolist() == [1, 1, 0] and weights["previous_piece"][first].tolist() == [0, 1, 1]
    assert targets["next_piece"][second].tolist() == [7, 0, 0] and weights["next_piece"][second].tolist() == [1, 0, 0]


def test_encoder_lm_batches_resume_the_sequence_of_shuffles():
    from nlpcore.train.common import EncoderLMBatches

    sequences = [[4 + i % 7] * (1 + i % 5) for i in range(60)]
    running = EncoderLMBatches(sequences, batch_size=4, max_length=8, output_vocab=8, seed=3)
    first_epoch = [list(b) for b in running.batches]
    running.on_epoch_end()
    running.on_epoch_end()
    resumed = EncoderLMBatches(sequences, batch_size=4, max_length=8, output_vocab=8, seed=3, start_epoch=2)
    assert [list(b) for b in resumed.batches] == [list(b) for b in running.batches] != first_epoch


@pytest.mark.slow
def test_pretraining_starts_the_classifier_from_the_encoder_lm(fixture_corpus):
    from nlpcore import data as corpora
    from nlpcore.config import from_dict
    from nlpcore.packages import load_package
    from nlpcore.train.sentiment import SentimentTrainConfig, pretraining_texts, train

    rows = ["id\tmovie_id\trating\ttext"]  # a raw crawl with unlabelled (5–8) ratings as well
    for i in range(300):
        words = (POSITIVE + NEGATIVE)[i % 10].split()
        rows.append(f"r{i}\tm1\t{[1, 6, 7, 10][i % 4]}\t{' '.join(words)} 평점 {i}")
    with gzip.open(fixture_corpus / "data" / "sentiment" / "nsmc_raw_ratings.tsv.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    config = from_dict(SentimentTrainConfig, {
        "corpora": ["nsmc"], "epochs": 1, "batch_size": 32, "learning_rate": 1e-9, "weights_dtype": "float32",
        "tokenizer": {"vocab_size": 400, "hard_vocab_limit": False},
        "model": {"embedding_dim": 8, "units": 6, "max_length": 16},
        "pretrain_corpora": ["nsmc", "nsmc_raw"], "pretrain_epochs": 3, "pretrain_vocab": 64,
        "pretrain_batch_size": 64, "pretrain_learning_rate": 0.01,
        "run_dir": str(fixture_corpus / "run3"), "output": str(fixture_corpus / "pkg3"),
    })
    texts, used = pretraining_texts(config)
    assert used["nsmc_raw"] > 0 and not any(
        corpora.is_validation(" ".join(t.split()), config.validation_fraction, config.split_salt) for t in texts)
    assert any(t.endswith("평점 1") for t in texts)  # a rating-6 review: unlabelled text counts here

    package = load_package(train(config, verbose=0).path)
    pretraining = package.card.extra["pretraining"]
    losses = pretraining["history"]["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert pretraining["texts"] == len(texts)
    assert [d.name for d in package.card.data] == ["nsmc", "nsmc", "nsmc_raw"]
    # With a learning rate of 1e-9 the classifier's encoder is still the pretrained one.
    from nlpcore.models.classifier import build_encoder_lm

    lm = build_encoder_lm(package.config(SentimentTrainConfig).model, 64)
    lm.load_weights(fixture_corpus / "run3" / "pretrained.weights.h5")
    shipped = package.load_model()
    for name in ("embedding", "bilstm_0"):
        for a, b in zip(lm.get_layer(name).get_weights(), shipped.get_layer(name).get_weights()):
            np.testing.assert_allclose(a, b, atol=1e-5)

    # Resumed with more pretraining epochs, only the missing one runs, after the earlier three.
    longer = dataclasses.replace(config, pretrain_epochs=4)
    again = load_package(train(longer, resume=True, verbose=0).path).card.extra["pretraining"]
    assert again["history"]["loss"][:3] == losses and len(again["history"]["loss"]) == 4
    assert again["seconds"] > pretraining["seconds"]
