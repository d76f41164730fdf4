"""The classifier model, its NumPy twin and the sentiment training pipeline on fixture data."""

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
