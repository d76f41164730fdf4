import io
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nlpcore import packages
from nlpcore.packages import DataSource, ModelCard, PackageError


@dataclass(frozen=True)
class TinyConfig:
    vocab_size: int = 360
    units: int = 8


def tiny_model(config: TinyConfig):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(config.vocab_size, 8, mask_zero=True)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(config.units))(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs)


CARD = ModelCard(
    name="tiny-test",
    task="test",
    languages=("ko", "en"),
    description="a tiny model for tests",
    data=(DataSource("fixture", rows=300, license="CC0"),),
    license="CC0-1.0",
    metrics={"validation (fixture)": {"accuracy": 0.5}},
)


@pytest.fixture
def package(tmp_path, tiny_tokenizer):
    config = TinyConfig(vocab_size=tiny_tokenizer.vocab_size)
    return packages.write_package(
        tmp_path / "tiny-test", CARD, config, {"model": tiny_model(config)}, {"tokenizer": tiny_tokenizer},
        files={"notes.txt": b"hello"},
    )


def test_round_trip(package, tiny_tokenizer):
    card = package.card
    assert set(card.files) == {"config.yaml", "model.keras", "tokenizer.model", "notes.txt"}
    assert card.backend == "tensorflow" and card.keras_version and card.created
    assert card.data[0].license == "CC0" and card.size_bytes == sum(e.size for e in card.files.values())
    on_disk = json.loads((package.path / "card.json").read_text())
    assert on_disk["size_bytes"] == card.size_bytes and on_disk["languages"] == ["ko", "en"]

    reopened = packages.load_package(package.path)
    assert reopened.card == card
    assert reopened.config(TinyConfig) == TinyConfig(vocab_size=tiny_tokenizer.vocab_size)
    assert reopened.tokenizer().encode("나는 너를 사랑해.") == tiny_tokenizer.encode("나는 너를 사랑해.")
    ids = np.array([tiny_tokenizer.encode("I love you.") + [0, 0]], dtype="int32")
    original = tiny_model(reopened.config(TinyConfig))
    loaded = reopened.load_model()
    assert not loaded.compiled
    np.testing.assert_allclose(np.asarray(loaded(ids)), np.asarray(original(ids)), atol=1e-6)


def test_float16_weights_halve_the_file_and_keep_outputs(package, tmp_path, tiny_tokenizer, monkeypatch):
    monkeypatch.setattr(packages, "COMPRESSED_SIZE", 2048)  # the tiny model's embedding (2,880 values) counts as large
    config = package.config(TinyConfig)
    model = tiny_model(config)
    small = packages.write_package(tmp_path / "f16", CARD, config, {"model": model}, weights_dtype="float16")
    assert small.card.extra["weights_dtype"] == "float16"
    assert small.card.files["model.keras"].size < package.card.files["model.keras"].size
    import zipfile

    import h5py

    with zipfile.ZipFile(small.file("model.keras")) as archive, \
            h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
        arrays = []
        weights.visititems(lambda name, obj: arrays.append(obj) if isinstance(obj, h5py.Dataset) else None)
        large = [a for a in arrays if a.size >= packages.COMPRESSED_SIZE]
        assert large and all(a.compression == "gzip" and a.shuffle for a in large)  # lossless, smaller
        assert all(a.compression is None for a in arrays if a.size < packages.COMPRESSED_SIZE)
    loaded = small.load_model()
    assert all(w.dtype == "float32" for w in loaded.weights)
    for stored, original in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(stored, original.astype(np.float16).astype(np.float32))
    with pytest.raises(ValueError, match="weights_dtype"):
        packages.write_package(tmp_path / "bad", CARD, config, {"model": model}, weights_dtype="int8")


def test_round_mantissa_keeps_the_top_bits_and_rounds_to_nearest():
    values = np.random.default_rng(0).normal(0, 0.1, 10_000).astype(np.float16)
    np.testing.assert_array_equal(packages.round_mantissa(values, 10), values)
    for bits in (9, 7):
        rounded = packages.round_mantissa(values, bits)
        assert rounded.dtype == np.float16
        assert not np.any(rounded.view(np.uint16) & ((1 << (10 - bits)) - 1))  # the dropped bits are zero
        normal = np.abs(values) >= np.finfo(np.float16).tiny
        error = np.abs(rounded[normal].astype(np.float64) / values[normal] - 1)
        assert error.max() <= 2.0 ** -(bits + 1)  # to nearest: half a unit of the last kept bit
        assert error.max() > 2.0 ** -(bits + 2)  # and bits really went
    # 1.999 (all mantissa bits set) rounds up into the next binade: 2.0.
    assert packages.round_mantissa(np.array([1.999], np.float16), 9)[0] == 2.0
    with pytest.raises(ValueError, match="mantissa"):
        packages.round_mantissa(values, 0)


def test_fewer_mantissa_bits_give_a_smaller_file_that_loads_what_was_scored(package, tmp_path, monkeypatch):
    monkeypatch.setattr(packages, "COMPRESSED_SIZE", 2048)  # the embedding is compressed, as in a real model
    config = package.config(TinyConfig)
    model = tiny_model(config)
    full = packages.write_package(tmp_path / "full", CARD, config, {"model": model}, weights_dtype="float16")
    trimmed = packages.write_package(tmp_path / "trim", CARD, config, {"model": model}, weights_dtype="float16",
                                     mantissa_bits=6)
    assert trimmed.card.extra["weights_mantissa_bits"] == 6
    assert "weights_mantissa_bits" not in full.card.extra
    assert trimmed.card.files["model.keras"].size < full.card.files["model.keras"].size
    stored = packages.as_stored(model.get_weights(), "float16", 6)
    for loaded, expected in zip(trimmed.load_model().get_weights(), stored):
        np.testing.assert_array_equal(loaded, expected)
    assert any(not np.array_equal(a, b) for a, b in zip(stored, packages.as_stored(model.get_weights(), "float16")))


def test_average_of_packages_averages_weights_and_keeps_the_rest(package, tmp_path, tiny_tokenizer):
    import dataclasses

    from nlpcore import cli

    config = package.config(TinyConfig)
    other_model = tiny_model(config)
    other_model.set_weights([w + 1.0 for w in other_model.get_weights()])  # a "fine-tune" of the same shapes
    other_card = dataclasses.replace(CARD, version="1.1.0", data=CARD.data + (DataSource("more", rows=5, license="CC0"),))
    other = packages.write_package(tmp_path / "other", other_card, config, {"model": other_model},
                                   {"tokenizer": tiny_tokenizer}, files={"notes.txt": b"hello"})

    averaged = packages.average_packages([package.path, other.path], tmp_path / "avg", weights=[3, 1])
    first, second = package.load_model().get_weights(), other.load_model().get_weights()
    for got, a, b in zip(averaged.load_model().get_weights(), first, second):
        np.testing.assert_allclose(got, 0.75 * a + 0.25 * b, rtol=1e-6, atol=1e-6)
    assert averaged.card.extra["weight_average"]["packages"] == [
        {"name": "tiny-test", "version": "1.0.0", "weight": 0.75}, {"name": "tiny-test", "version": "1.1.0", "weight": 0.25}]
    assert [d.name for d in averaged.card.data] == ["fixture", "more"]  # each source once
    assert averaged.file("notes.txt").read_bytes() == b"hello"
    assert averaged.config(TinyConfig) == config and averaged.card.metrics == package.card.metrics
    packages.verify_package(averaged.path)

    # through the CLI, equal weights; packages of other tokenizers are refused
    assert cli.main(["models", "average", str(package.path), str(other.path), "--output", str(tmp_path / "half")]) == 0
    half = packages.load_package(tmp_path / "half").load_model().get_weights()
    np.testing.assert_allclose(half[0], (first[0] + second[0]) / 2, rtol=1e-6, atol=1e-6)
    from nlpcore.tokenizer import Tokenizer, TokenizerConfig

    from tests.conftest import sample_corpus

    retrained = Tokenizer.train(sample_corpus(), TokenizerConfig(vocab_size=380, character_coverage=1.0))
    foreign = packages.write_package(tmp_path / "foreign", other_card, config, {"model": other_model},
                                     {"tokenizer": retrained}, files={"notes.txt": b"hello"})
    with pytest.raises(PackageError, match="tokenizer.model differs"):
        packages.average_packages([package.path, foreign.path], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    assert cli.main(["models", "average", str(package.path), "--output", str(tmp_path / "one")]) == 2
    assert cli.main(["models", "average", str(package.path), str(other.path), "--output", str(tmp_path / "w"),
                     "--weights", "1,x"]) == 2


def test_update_card_keeps_files(package):
    card = packages.update_card(package.path, extra={"comparison": [{"model": "a", "accuracy": 0.9}]},
                                description="better words")
    reopened = packages.load_package(package.path).card
    assert reopened == card and reopened.extra["comparison"][0]["accuracy"] == 0.9
    assert reopened.files == package.card.files
    with pytest.raises(PackageError, match="cannot be changed"):
        packages.update_card(package.path, name="other")


def test_flipped_byte_is_refused_naming_the_file(package):
    weights = package.path / "model.keras"
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(PackageError, match=r"model\.keras: corrupted \(SHA-256"):
        packages.load_package(package.path)


def test_incomplete_packages_are_refused(package):
    (package.path / "notes.txt").write_bytes(b"hell")
    with pytest.raises(PackageError, match=r"notes\.txt: corrupted or incomplete \(4 bytes, the card says 5\)"):
        packages.load_package(package.path)
    (package.path / "notes.txt").write_bytes(b"hello")
    packages.load_package(package.path)
    (package.path / "tokenizer.model").unlink()
    with pytest.raises(PackageError, match=r"tokenizer\.model: missing from the package"):
        packages.verify_package(package.path)
    (package.path / "card.json").unlink()
    with pytest.raises(PackageError, match=r"card\.json: missing"):
        packages.load_package(package.path)
    with pytest.raises(PackageError, match="not found"):
        packages.load_package(package.path / "nowhere")


def _edit_card(package, **changes):
    path = package.path / "card.json"
    body = json.loads(path.read_text())
    body.update(changes)
    path.write_text(json.dumps(body))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format_version": 99}, "newer than this app supports"),
        ({"task": "poetry"}, "unknown task"),
        ({"languages": 5}, "languages"),
        ({"files": {"../outside.txt": {"size": 1, "sha256": "0"}, "config.yaml": {"size": 1, "sha256": "0"}}},
         "points outside the package"),
    ],
)
def test_bad_cards_are_refused(package, changes, message):
    _edit_card(package, **changes)
    with pytest.raises(PackageError, match=message):
        packages.load_package(package.path)


def test_unsafe_lambda_layer_is_refused(tmp_path, tiny_tokenizer):
    import keras

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    with pytest.raises(PackageError, match=r"model\.keras: cannot load"):
        packages.write_package(tmp_path / "unsafe", CARD, TinyConfig(), {"model": model}).load_model()


def test_install_find_and_list(package, _user_home):
    target = packages.install_package(package.path)
    assert target == _user_home / "models" / "tiny-test"
    assert packages.find_package("tiny-test") == target
    listed = dict((p.name, c) for p, c in packages.iter_packages())
    assert listed["tiny-test"].name == "tiny-test"
    (target / "model.keras").write_bytes(b"broken")
    with pytest.raises(PackageError, match="model.keras"):
        packages.install_package(target)
    with pytest.raises(PackageError, match="no model package named 'nothing'"):
        packages.find_package("nothing")


SAVE_UNDER_JAX = textwrap.dedent(
    """
    import sys, numpy as np
    sys.path.insert(0, {tests!r})
    from conftest import sample_corpus
    from test_packages import CARD, TinyConfig, tiny_model
    from nlpcore import packages
    from nlpcore.tokenizer import Tokenizer, TokenizerConfig
    import keras
    assert keras.backend.backend() == "jax"
    tok = Tokenizer.train(sample_corpus(), TokenizerConfig(vocab_size=360, character_coverage=1.0))
    config = TinyConfig(vocab_size=tok.vocab_size)
    pkg = packages.write_package({out!r}, CARD, config, {{"model": tiny_model(config)}}, {{"tokenizer": tok}})
    ids = np.array([tok.encode("나는 너를 사랑해.") + [0, 0, 0]], dtype="int32")
    np.save({ids!r}, ids)
    np.save({probs!r}, np.asarray(pkg.load_model()(ids)))
    """
)


def test_package_saved_under_jax_loads_under_tensorflow(tmp_path):
    pytest.importorskip("jax")
    out, ids, probs = tmp_path / "jax-pkg", tmp_path / "ids.npy", tmp_path / "probs.npy"
    script = SAVE_UNDER_JAX.format(tests=str(Path(__file__).parent), out=str(out), ids=str(ids), probs=str(probs))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path, timeout=300)

    import keras

    assert keras.backend.backend() == "tensorflow"
    package = packages.load_package(out)
    assert package.card.backend == "jax"
    got = np.asarray(package.load_model()(np.load(ids)))
    np.testing.assert_allclose(got, np.load(probs), atol=1e-5)
